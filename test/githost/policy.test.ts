import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../pipeline/parse.js';
import type { Pipeline } from '../../pipeline/types.js';
import { ConfigError, loadPolicy, loadServeConfig } from '../../app/intake/config.js';
import { gitHostWorkerPartsFromEnv } from '../../app/intake/githostparts.js';
import { defaultRunOptions } from '../../app/engine.js';
import { createStore } from '../../activities/store/factory.js';
import { pino } from 'pino';
import { policyViolations } from '../../app/intake/policy.js';

function pipeline(machines: string, timeout = '2h'): Pipeline {
  const text = `name: p
machines:
${machines}
steps:
  prep:
    image: busybox
    run: echo hi
  train:
    image: busybox
    machine: gpu
    run: echo train
    timeout: ${timeout}
`;
  const r = parsePipeline(text, '.trainyard/p.yaml');
  if (!r.pipeline) throw new Error(JSON.stringify(r.errors));
  return r.pipeline;
}

describe('server policy', () => {
  const gpu = pipeline('  gpu: { instance: [g5.xlarge, p3.2xlarge], gpus: 2 }');
  const ec2 = {
    TRAINYARD_EC2_SUBNETS: 'subnet-0123456789abcdef0',
    TRAINYARD_EC2_REGION: 'us-east-1',
    TRAINYARD_AGENT_STORE: 's3://bucket/store',
    TEMPORAL_ADDRESS: 'temporal.internal:7233',
  };

  it('lets a repository run only when it matches an allowed glob', () => {
    const policy = loadPolicy({ ...ec2, TRAINYARD_ALLOWED_REPOS: 'acme/*, solo/one' });
    expect(policyViolations(policy, 'acme/models', gpu)).toEqual([]);
    expect(policyViolations(policy, 'solo/one', gpu)).toEqual([]);
    const v = policyViolations(policy, 'evil/models', gpu);
    expect(v.map((e) => e.message)).toEqual([expect.stringContaining('evil/models is not in this server')]);
  });

  it('applies the compute limits (GPUs, instance types, cost) at the lines of the file', () => {
    const text = `name: p
machines:
  gpu: { instance: [g5.xlarge, p3.2xlarge], gpus: 2 }
steps:
  train: { image: busybox, machine: gpu, run: echo, timeout: 10h }
`;
    const p = parsePipeline(text, '.trainyard/p.yaml').pipeline!;
    const policy = loadPolicy({ ...ec2, TRAINYARD_MAX_GPUS: '1', TRAINYARD_ALLOWED_INSTANCE_TYPES: 'g5.*' });
    const v = policyViolations(policy, 'a/b', p, text);
    expect(v.some((e) => /p3\.2xlarge/.test(e.message) && e.line === 3)).toBe(true);
    expect(v.some((e) => /2 GPUs/.test(e.message) && e.line === 3)).toBe(true);
    const cheap = loadPolicy({ ...ec2, TRAINYARD_MAX_COST_USD: '1' });
    expect(
      policyViolations(cheap, 'a/b', p, text)
        .map((e) => e.message)
        .join(),
    ).toMatch(/cost/);
  });

  it('refuses machine steps when the server has no EC2', () => {
    expect(
      policyViolations(loadPolicy({}), 'a/b', gpu)
        .map((e) => e.message)
        .join(),
    ).toMatch(/no EC2 configured/);
  });
});

describe('serve configuration', () => {
  const key = '-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n';
  const github = { GITHUB_APP_ID: '12', GITHUB_PRIVATE_KEY: key, GITHUB_WEBHOOK_SECRET: 's' };

  function failure(env: Record<string, string>): string {
    try {
      loadServeConfig(env);
    } catch (e) {
      if (e instanceof ConfigError) return e.variable;
      throw e;
    }
    return 'no error';
  }

  it('names the variable at fault', () => {
    expect(failure({})).toBe('GITHUB_APP_ID');
    expect(failure({ ...github, GITHUB_APP_ID: 'twelve' })).toBe('GITHUB_APP_ID');
    expect(failure({ ...github, GITHUB_PRIVATE_KEY: 'not a key' })).toBe('GITHUB_PRIVATE_KEY');
    expect(
      failure({ GITHUB_APP_ID: '1', GITHUB_PRIVATE_KEY_FILE: '/nonexistent/key.pem', GITHUB_WEBHOOK_SECRET: 's' }),
    ).toBe('GITHUB_PRIVATE_KEY_FILE');
    expect(failure({ ...github, GITHUB_WEBHOOK_SECRET: '' })).toBe('GITHUB_WEBHOOK_SECRET');
    expect(failure({ ...github, GITHUB_API_URL: 'ftp://x' })).toBe('GITHUB_API_URL');
    expect(failure({ ...github, TRAINYARD_PORT: '99999' })).toBe('TRAINYARD_PORT');
    expect(failure({ ...github, TRAINYARD_MAX_GPUS: 'lots' })).toBe('TRAINYARD_MAX_GPUS');
    expect(failure({ ...github, TRAINYARD_WORKERS: 'some' })).toBe('TRAINYARD_WORKERS');
    expect(failure({ ...github, TRAINYARD_TRUSTED_TEAMS: 'acme/ml, just-an-org' })).toBe('TRAINYARD_TRUSTED_TEAMS');
    expect(failure({ ...github, TRAINYARD_TRUSTED_TEAMS: 'acme/ml/extra' })).toBe('TRAINYARD_TRUSTED_TEAMS');
    expect(failure({ GITLAB_TOKEN: 't' })).toBe('GITLAB_WEBHOOK_SECRET');
    // Too small for one delivery of GitHub's largest size (25 MB).
    expect(failure({ ...github, TRAINYARD_UNVERIFIED_BODY_MB: '10' })).toBe('TRAINYARD_UNVERIFIED_BODY_MB');
    expect(loadServeConfig({ ...github, TRAINYARD_UNVERIFIED_BODY_MB: '128' }).unverifiedBodyBytes).toBe(
      128 * 1024 * 1024,
    );
    expect(loadServeConfig(github).unverifiedBodyBytes).toBe(64 * 1024 * 1024);
  });

  it('reads a GitHub + GitLab setup', () => {
    const cfg = loadServeConfig({
      ...github,
      GITHUB_API_URL: 'https://ghe.example.com/api/v3/',
      GITLAB_TOKEN: 't',
      GITLAB_WEBHOOK_SECRET: 'w',
      GITLAB_URL: 'https://gitlab.example.com',
      TRAINYARD_ALLOWED_REPOS: 'acme/*',
      TRAINYARD_PORT: '0',
      TRAINYARD_STORE: '/tmp/store',
    });
    expect(cfg.github?.apiUrl).toBe('https://ghe.example.com/api/v3');
    expect(cfg.gitlab?.url).toBe('https://gitlab.example.com');
    expect(cfg.policy.allowedRepos).toEqual(['acme/*']);
    expect(loadPolicy({ TRAINYARD_TRUSTED_TEAMS: 'acme/ml-team, Octo-Org/infra' }).trustedTeams).toEqual([
      { org: 'acme', team: 'ml-team' },
      { org: 'Octo-Org', team: 'infra' },
    ]);
    expect(cfg.port).toBe(0);
    expect(cfg.store).toBe('/tmp/store');
  });
});

describe('split topology settings', () => {
  const key = '-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----\n';
  const github = {
    GITHUB_APP_ID: '12',
    GITHUB_PRIVATE_KEY: key,
    GITHUB_WEBHOOK_SECRET: 's',
    TRAINYARD_STORE: '/tmp/store',
  };
  const variableOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      if (e instanceof ConfigError) return e.variable;
      throw e;
    }
    return 'no error';
  };
  const worker = (env: Record<string, string>) =>
    gitHostWorkerPartsFromEnv(
      env,
      createStore('/tmp/trainyard-unused-store'),
      '/tmp/trainyard-unused-work',
      pino({ level: 'silent' }),
      () => defaultRunOptions(),
    );

  it('needs one link secret when replicas and workers are separate processes', () => {
    const split = { ...github, TRAINYARD_WORKERS: 'none', TRAINYARD_PUBLIC_URL: 'https://ty.example.com' };
    expect(variableOf(() => loadServeConfig(split))).toBe('TRAINYARD_LINK_SECRET');
    expect(variableOf(() => loadServeConfig({ ...split, TRAINYARD_LINK_SECRET: 'short' }))).toBe(
      'TRAINYARD_LINK_SECRET',
    );
    expect(loadServeConfig({ ...split, TRAINYARD_LINK_SECRET: 'a-long-enough-secret' }).linkSecret).toBe(
      'a-long-enough-secret',
    );
    // One process signs and checks its own links: the derived key will do.
    expect(loadServeConfig({ ...split, TRAINYARD_WORKERS: 'in-process' }).linkSecret).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses a worker that publishes to a git host without the public URL and link secret', () => {
    expect(variableOf(() => worker(github))).toBe('TRAINYARD_PUBLIC_URL');
    expect(variableOf(() => worker({ ...github, TRAINYARD_PUBLIC_URL: 'https://ty.example.com' }))).toBe(
      'TRAINYARD_LINK_SECRET',
    );
    expect(
      variableOf(() =>
        worker({
          ...github,
          TRAINYARD_PUBLIC_URL: 'https://ty.example.com',
          TRAINYARD_LINK_SECRET: 'a-long-enough-secret',
        }),
      ),
    ).toBe('no error');
    expect(variableOf(() => worker({ ...github, TRAINYARD_PUBLIC_URL: 'none' }))).toBe('no error');
    expect(variableOf(() => worker({ TRAINYARD_STORE: '/tmp/store' }))).toBe('no error');
  });

  it('reads Temporal TLS and the queues like the other commands', () => {
    const cfg = loadServeConfig({ ...github, TEMPORAL_API_KEY: 'key' });
    expect(cfg.temporalTls).toBe(true);
    expect(cfg.temporalApiKey).toBe('key');
    expect(cfg.controlQueue).toBe('trainyard');
    expect(cfg.localQueue).toBe('trainyard-local');
    expect(loadServeConfig({ ...github, TRAINYARD_HOST_QUEUE: 'older' }).localQueue).toBe('older');
    expect(variableOf(() => loadServeConfig({ ...github, TEMPORAL_TLS: 'maybe' }))).toBe('TEMPORAL_TLS');
    expect(
      variableOf(() => loadServeConfig({ ...github, TRAINYARD_LOCAL_QUEUE: 'a', TRAINYARD_HOST_QUEUE: 'b' })),
    ).toBe('TRAINYARD_HOST_QUEUE');
    expect(variableOf(() => loadServeConfig({ ...github, TRAINYARD_LOCAL_QUEUE: 'no spaces' }))).toBe(
      'TRAINYARD_LOCAL_QUEUE',
    );
  });
});

describe('trainyard serve start', () => {
  it('refuses to start on a bad setting, naming the variable', async () => {
    const { spawnSync } = await import('node:child_process');
    const { REPO_ROOT } = await import('./serve-process.js');
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      GITHUB_APP_ID: 'twelve',
      GITHUB_PRIVATE_KEY: 'x',
      GITHUB_WEBHOOK_SECRET: 's',
    };
    const r = spawnSync(process.execPath, ['bin/trainyard.js', 'serve'], {
      cwd: REPO_ROOT,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('serve: configuration error: GITHUB_APP_ID: must be the numeric id');
  });
});
