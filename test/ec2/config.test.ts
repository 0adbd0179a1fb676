// Server-side compute configuration and the policy a pipeline's machine classes must meet.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ComputeConfigError, DEFAULT_AMI_PARAMETER, loadComputeConfig } from '../../app/compute/config.js';
import { checkComputePolicy, estimateWorstCaseCost } from '../../app/compute/policy.js';
import { renderIamPolicy } from '../../app/compute/iam.js';
import { parsePipeline } from '../../pipeline/parse.js';
import type { Pipeline } from '../../pipeline/types.js';

const dir = mkdtempSync(join(tmpdir(), 'trainyard-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  TRAINYARD_EC2_REGION: 'eu-west-1',
  TRAINYARD_EC2_SUBNETS: 'subnet-0a1b2c3d4e5f60718,subnet-0a1b2c3d4e5f60719',
  TRAINYARD_AGENT_TEMPORAL_ADDRESS: 'temporal.internal:7233',
  TRAINYARD_AGENT_STORE: 's3://ml-artifacts/trainyard',
};

function problems(env: Record<string, string>): string[] {
  try {
    loadComputeConfig(env);
  } catch (e) {
    if (e instanceof ComputeConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('compute configuration', () => {
  it('leaves EC2 off without subnets, and fills defaults when on', () => {
    expect(loadComputeConfig({}).ec2).toBeNull();
    const cfg = loadComputeConfig(base);
    expect(cfg.ec2).toMatchObject({
      region: 'eu-west-1',
      subnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0a1b2c3d4e5f60719'],
      defaultAmi: DEFAULT_AMI_PARAMETER,
      deployment: 'default',
      maxInstances: 8,
      idleSeconds: 600,
    });
    // No package named: the control worker publishes its own to the store (activities/ec2/agentpackage.ts).
    expect(cfg.ec2!.agent).toMatchObject({
      temporalAddress: 'temporal.internal:7233',
      storeLocation: 's3://ml-artifacts/trainyard',
      agentPackage: '',
    });
    expect(cfg.ec2!.agent.agentPackageSha256).toBeUndefined();
    expect(cfg.policy.maxCostPerRunUsd).toBeNull();
  });

  it('names every wrong variable at once', () => {
    const p = problems({
      ...base,
      TRAINYARD_EC2_SUBNETS: 'subnet-0a1b2c3d4e5f60718,vpc-123',
      TRAINYARD_EC2_SECURITY_GROUPS: 'default',
      TRAINYARD_EC2_MAX_INSTANCES: 'lots',
      TRAINYARD_AGENT_STORE: '/var/lib/trainyard/store',
      TRAINYARD_EC2_AMI: 'ubuntu-latest',
      TRAINYARD_EC2_MAX_PER_CLASS: 'gpu=0',
      TRAINYARD_MAX_COST_USD: 'ten',
    });
    expect(p).toEqual(
      [
        'TRAINYARD_MAX_COST_USD: must be a non-negative number (USD), got "ten"',
        'TRAINYARD_EC2_MAX_PER_CLASS: "gpu=0" must be class=N (N ≥ 1), e.g. gpu=2,*=3',
        'TRAINYARD_EC2_SUBNETS: must be a comma-separated list of subnet ids (subnet-…), got "subnet-0a1b2c3d4e5f60718,vpc-123"',
        'TRAINYARD_EC2_AMI: "ubuntu-latest" is neither an AMI id (ami-…) nor an SSM parameter name (/aws/service/…)',
        'TRAINYARD_AGENT_STORE: "/var/lib/trainyard/store" must be an s3://bucket/prefix store: a host cannot read a folder on this machine',
        'TRAINYARD_EC2_SECURITY_GROUPS: must be a comma-separated list of security group ids (sg-…), got "default"',
        'TRAINYARD_EC2_MAX_INSTANCES: must be a whole number from 1 to 100000, got "lots"',
      ].sort((a, b) => p.indexOf(a) - p.indexOf(b)),
    );
    expect(p).toHaveLength(7);
  });

  it('requires the host-side settings EC2 needs, and keeps the last-resort poweroff after the run’s idle timeout', () => {
    expect(problems({ TRAINYARD_EC2_SUBNETS: base.TRAINYARD_EC2_SUBNETS })).toEqual([
      'TRAINYARD_EC2_REGION: not set (nor AWS_REGION); EC2 needs a region',
      'TRAINYARD_AGENT_TEMPORAL_ADDRESS: not set (nor TEMPORAL_ADDRESS); hosts need the Temporal frontend address they can reach',
      'TRAINYARD_AGENT_STORE: not set (nor TRAINYARD_STORE); EC2 hosts need the S3 artifact store (s3://bucket/prefix)',
    ]);
    expect(
      problems({ ...base, TRAINYARD_EC2_IDLE_SECONDS: '1200', TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS: '1300' })[0],
    ).toMatch(/^TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS: 1300 must be at least TRAINYARD_EC2_IDLE_SECONDS \+ 300/);
  });

  it("hands the hosts the server's SSM secret source, in its region (else the EC2 region)", () => {
    expect(loadComputeConfig(base).ec2!.agent.secretsSsm).toBeUndefined();
    expect(
      loadComputeConfig({ ...base, TRAINYARD_SECRETS_SSM_PREFIX: '/trainyard/secrets/' }).ec2!.agent.secretsSsm,
    ).toEqual({ prefix: '/trainyard/secrets/', region: 'eu-west-1' });
    expect(
      loadComputeConfig({
        ...base,
        TRAINYARD_SECRETS_SSM_PREFIX: '/trainyard/secrets/',
        TRAINYARD_SECRETS_SSM_REGION: 'us-east-2',
        TRAINYARD_SECRETS_SSM_ENDPOINT: 'http://127.0.0.1:5000',
      }).ec2!.agent.secretsSsm,
    ).toEqual({ prefix: '/trainyard/secrets/', region: 'us-east-2', endpoint: 'http://127.0.0.1:5000' });
    expect(problems({ ...base, TRAINYARD_SECRETS_SSM_PREFIX: 'secrets' })[0]).toMatch(
      /^TRAINYARD_SECRETS_SSM_PREFIX: /,
    );
  });

  it('takes a named agent package only with its SHA-256, as an s3:// or https:// URL', () => {
    const sha = 'ab'.repeat(32);
    const cfg = loadComputeConfig({
      ...base,
      TRAINYARD_AGENT_PACKAGE: 's3://ml-artifacts/agent/trainyard-agent.tar.gz',
      TRAINYARD_AGENT_PACKAGE_SHA256: sha.toUpperCase(),
    });
    expect(cfg.ec2!.agent).toMatchObject({
      agentPackage: 's3://ml-artifacts/agent/trainyard-agent.tar.gz',
      agentPackageSha256: sha,
    });
    expect(
      problems({ ...base, TRAINYARD_AGENT_PACKAGE: 'trainyard@0.1.0', TRAINYARD_AGENT_PACKAGE_SHA256: sha }),
    ).toEqual([
      'TRAINYARD_AGENT_PACKAGE: "trainyard@0.1.0" must be an s3:// or https:// URL of a trainyard agent package (.tar.gz), or unset to publish this version\'s package to the store',
    ]);
    expect(problems({ ...base, TRAINYARD_AGENT_PACKAGE: 'https://example.com/a.tar.gz' })).toEqual([
      "TRAINYARD_AGENT_PACKAGE_SHA256: not set; with TRAINYARD_AGENT_PACKAGE it must give the package's SHA-256 (64 hex), which the host checks",
    ]);
    expect(
      problems({
        ...base,
        TRAINYARD_AGENT_PACKAGE: 'https://example.com/a.tar.gz',
        TRAINYARD_AGENT_PACKAGE_SHA256: 'abc',
      }),
    ).toEqual(['TRAINYARD_AGENT_PACKAGE_SHA256: "abc" is not a SHA-256 (64 hex digits)']);
    expect(problems({ ...base, TRAINYARD_AGENT_PACKAGE_FILE: 'dist/agent.tar.gz' })).toEqual([
      'TRAINYARD_AGENT_PACKAGE_FILE: "dist/agent.tar.gz" must be an absolute path',
    ]);
  });

  it('reads a price file and reports its bad entries by JSON path', () => {
    const good = join(dir, 'prices.json');
    writeFileSync(
      good,
      JSON.stringify({ region: 'eu-west-1', prices: { 'g5.xlarge': { onDemand: 1.123, spot: 0.5 } } }),
    );
    expect(loadComputeConfig({ ...base, TRAINYARD_EC2_PRICES: good }).prices.prices['g5.xlarge']).toEqual({
      onDemand: 1.123,
      spot: 0.5,
    });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ region: 'eu-west-1', prices: { 'g5.xlarge': { onDemand: -1 } } }));
    expect(problems({ ...base, TRAINYARD_EC2_PRICES: bad })).toEqual([
      `TRAINYARD_EC2_PRICES: ${bad}: prices."g5.xlarge".onDemand must be a non-negative number (USD per hour)`,
    ]);
  });
});

const PIPELINE = `name: mnist
machines:
  gpu:
    instance: [g5.xlarge, p4d.24xlarge]
    gpus: 1
    spot: true
  big:
    instance: g5.12xlarge
    gpus: 4
    disk_gb: 500
steps:
  prepare:
    image: busybox
    run: echo hi
  train:
    image: busybox
    machine: gpu
    run: echo train
    timeout: 2h
    retries: 2
  sweep:
    image: busybox
    machine: big
    run: echo sweep
    timeout: 1h
`;

function pipeline(text = PIPELINE): Pipeline {
  const r = parsePipeline(text, '.trainyard/mnist.yaml');
  if (!r.pipeline) throw new Error(JSON.stringify(r.errors));
  return r.pipeline;
}

describe('compute policy', () => {
  it('accepts a pipeline inside the limits', () => {
    expect(
      checkComputePolicy(
        pipeline(),
        loadComputeConfig({ ...base, TRAINYARD_MAX_GPUS: '4', TRAINYARD_MAX_COST_USD: '500' }),
        PIPELINE,
      ),
    ).toEqual([]);
  });

  it('refuses machine classes that break the policy, pointing at their lines', () => {
    const cfg = loadComputeConfig({
      ...base,
      TRAINYARD_ALLOWED_INSTANCE_TYPES: 'g5.*',
      TRAINYARD_MAX_GPUS: '2',
      TRAINYARD_MAX_DISK_GB: '200',
      TRAINYARD_ALLOWED_MACHINE_CLASSES: 'gpu',
    });
    const errors = checkComputePolicy(pipeline(), cfg, PIPELINE);
    expect(errors.map((e) => `${e.line}:${e.column} ${e.message}`)).toEqual([
      '4:27 instance type p4d.24xlarge in machine class "gpu" is not allowed on this server (allowed: g5.*)',
      '7:3 machine class "big" is not allowed on this server (allowed: gpu)',
      '9:11 machine class "big" asks for 4 GPUs; this server allows at most 2 per machine',
      '10:14 machine class "big" asks for 500 GB of disk; this server allows at most 200',
    ]);
  });

  it('bounds the GPUs a run can hold at once', () => {
    const cfg = loadComputeConfig({ ...base, TRAINYARD_MAX_GPUS_PER_RUN: '4' });
    const errors = checkComputePolicy(pipeline(), cfg, PIPELINE);
    expect(errors.map((e) => e.message)).toEqual([
      "the run could hold 5 GPUs at once; this server allows at most 4 per run (lower the classes' gpus or the steps that use them)",
    ]);
  });

  it('bounds the worst-case cost: every machine step to its timeout, every retry, at the dearest candidate', () => {
    const cfg = loadComputeConfig({ ...base, TRAINYARD_MAX_COST_USD: '50' });
    const est = estimateWorstCaseCost(pipeline(), cfg, 900);
    // train: (7200 + 900) s × 3 tries × p4d.24xlarge on-demand $21.958/h; sweep: (3600 + 900) s × 1 × $5.672/h
    expect(est.perStep).toEqual({ train: 148.22, sweep: 7.09 });
    const errors = checkComputePolicy(pipeline(), cfg, PIPELINE);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(
      /^worst-case compute cost of a run is \$155\.31 .* over this server's limit of \$50\.00; largest: train \$148\.22, sweep \$7\.09/,
    );
  });

  it('refuses machine steps when the server has no EC2', () => {
    const errors = checkComputePolicy(pipeline(), loadComputeConfig({}), PIPELINE);
    expect(errors).toEqual([
      {
        file: '.trainyard/mnist.yaml',
        line: 17,
        column: 14,
        message: expect.stringMatching(
          /^step "train" needs machine class "gpu", but this server has no EC2 configured \(TRAINYARD_EC2_SUBNETS is not set\)/,
        ),
      },
    ]);
  });
});

describe('IAM policies', () => {
  const vars = {
    AWS_REGION: 'eu-west-1',
    ACCOUNT_ID: '123456789012',
    DEPLOYMENT: 'prod',
    STORE_BUCKET: 'ml-artifacts',
    STORE_PREFIX: 'trainyard',
    INSTANCE_ROLE_NAME: 'trainyard-host',
  };
  type Stmt = {
    Sid?: string;
    Action: string | string[];
    Resource: string | string[];
    Condition?: Record<string, Record<string, unknown>>;
  };
  const actions = (s: Stmt): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
  const resources = (s: Stmt): string[] => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

  it('the orchestrator may launch only tagged instances and terminate only its managed ones', () => {
    const doc = renderIamPolicy('orchestrator', vars);
    const st = doc.Statement as unknown as Stmt[];
    expect(st.flatMap(actions).every((a) => !a.includes('*'))).toBe(true);
    const terminate = st.filter((s) => actions(s).includes('ec2:TerminateInstances'));
    expect(terminate).toHaveLength(1);
    expect(terminate[0]!.Condition!.StringEquals).toEqual({
      'ec2:ResourceTag/trainyard:managed': 'true',
      'ec2:ResourceTag/trainyard:deployment': 'prod',
    });
    const launchInstance = st.find(
      (s) => actions(s).includes('ec2:RunInstances') && resources(s).some((r) => r.includes(':instance/')),
    )!;
    expect(launchInstance.Condition!.StringEquals).toMatchObject({ 'aws:RequestTag/trainyard:managed': 'true' });
    const pass = st.find((s) => actions(s).includes('iam:PassRole'))!;
    expect(pass.Resource).toBe('arn:aws:iam::123456789012:role/trainyard-host');
    expect(
      st.filter((s) => actions(s).some((a) => a.startsWith('s3:Get') || a.startsWith('s3:Put'))).flatMap(resources),
    ).toEqual(['arn:aws:s3:::ml-artifacts/trainyard/*']);
    // Resource "*" only where EC2 has no resource-level permissions.
    expect(
      st
        .filter((s) => resources(s).includes('*'))
        .flatMap(actions)
        .sort(),
    ).toEqual(['ec2:DescribeImages', 'ec2:DescribeInstances']);
  });

  it('the instance profile reaches only its S3 prefix, and the API key statement exists only when a key is named', () => {
    const without = renderIamPolicy('instance', vars).Statement as unknown as Stmt[];
    expect(without.map((s) => s.Sid)).toEqual([
      'ArtifactStoreObjects',
      'ArtifactStoreListing',
      'ReportSpotInterruption',
    ]);
    expect(without[0]!.Resource).toBe('arn:aws:s3:::ml-artifacts/trainyard/*');
    expect(without[1]!.Condition).toEqual({ StringLike: { 's3:prefix': ['trainyard/*'] } });
    expect(without.flatMap(actions)).not.toContain('ec2:TerminateInstances');
    const withKey = renderIamPolicy('instance', { ...vars, TEMPORAL_API_KEY_PARAMETER: '/trainyard/temporal-api-key' })
      .Statement as unknown as Stmt[];
    expect(withKey.find((s) => s.Sid === 'ReadTemporalApiKey')!.Resource).toBe(
      'arn:aws:ssm:eu-west-1:123456789012:parameter/trainyard/temporal-api-key',
    );
    expect(() => renderIamPolicy('instance', { ...vars, STORE_PREFIX: '../other' })).toThrow(/STORE_PREFIX/);
    // Step secrets on hosts: GetParameters under the prefix only, when a prefix is named.
    const withSecrets = renderIamPolicy('instance', { ...vars, SECRETS_SSM_PREFIX: '/trainyard/secrets/' })
      .Statement as unknown as Stmt[];
    const read = withSecrets.find((s) => s.Sid === 'ReadStepSecrets')!;
    expect([actions(read), read.Resource]).toEqual([
      ['ssm:GetParameters'],
      'arn:aws:ssm:eu-west-1:123456789012:parameter/trainyard/secrets/*',
    ]);
    expect(() => renderIamPolicy('instance', { ...vars, SECRETS_SSM_PREFIX: '/trainyard/*' })).toThrow(
      /SECRETS_SSM_PREFIX/,
    );
  });
});
