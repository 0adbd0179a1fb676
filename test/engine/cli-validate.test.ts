// `trainyard validate` with and without the server's compute policy in the environment: the
// command as a user runs it (its own process), on a checkout, with the settings the server has.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { POLICY_SETTINGS } from '../../app/local/validate.js';
import { GitRepo } from './harness.js';
import { REPO_ROOT } from './processes.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'cli-validate-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** None of the policy settings of the environment this test runs in reaches the command unless given. */
const NO_POLICY = Object.fromEntries(POLICY_SETTINGS.map((n) => [n, undefined]));

function validate(dir: string, env: Record<string, string | undefined>, flags: string[] = []) {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'trainyard.js'), 'validate', '-C', dir, ...flags], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, ...NO_POLICY, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// The server's EC2 settings (as in test/ec2/config.test.ts); nothing is called: validate only reads them.
const EC2 = {
  TRAINYARD_EC2_REGION: 'eu-west-1',
  TRAINYARD_EC2_SUBNETS: 'subnet-0a1b2c3d4e5f60718',
  TRAINYARD_AGENT_TEMPORAL_ADDRESS: 'temporal.internal:7233',
  TRAINYARD_AGENT_STORE: 's3://ml-artifacts/trainyard',
};

const MNIST = `name: mnist
machines:
  gpu:
    instance: [g5.xlarge]
    gpus: 1
  big:
    instance: g5.12xlarge
    gpus: 4
steps:
  train:
    image: busybox
    machine: gpu
    run: echo train
  sweep:
    image: busybox
    machine: big
    run: echo sweep
`;

const K8S = `name: kube
machines:
  a100x2: { kubernetes: a100, gpus: 2 }
  h100: { kubernetes: h100, gpus: 1 }
steps:
  fit:
    image: busybox
    machine: a100x2
    run: echo fit
  big:
    image: busybox
    machine: h100
    run: echo big
`;

describe('validate against the server policy', () => {
  it('without policy settings checks the file format only, and says so', () => {
    const repo = new GitRepo(root).write({ '.trainyard/mnist.yaml': MNIST });
    const r = validate(repo.path, {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('ok: 1 pipeline(s): mnist (2 steps)');
    expect(r.stdout).toMatch(
      /^no server policy configured here \(none of TRAINYARD_EC2_SUBNETS, TRAINYARD_K8S_CONFIG, .*\): only the file format was checked$/m,
    );
    expect(JSON.parse(validate(repo.path, {}, ['--json']).stdout)).toMatchObject({
      ok: true,
      policy: { configured: false },
    });
  });

  it("with the server's EC2 policy reports a class not allowed and too many GPUs at file:line:column, naming the policy", () => {
    const repo = new GitRepo(root).write({ '.trainyard/mnist.yaml': MNIST });
    const env = { ...EC2, TRAINYARD_ALLOWED_MACHINE_CLASSES: 'gpu', TRAINYARD_MAX_GPUS: '2' };
    const r = validate(repo.path, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '.trainyard/mnist.yaml:6:3: machine class "big" is not allowed on this server (allowed: gpu)',
    );
    expect(r.stderr).toContain(
      '.trainyard/mnist.yaml:8:11: machine class "big" asks for 4 GPUs; this server allows at most 2 per machine',
    );
    expect(r.stderr).toContain(
      'checked against the server policy of this environment: EC2 machines in eu-west-1, no Kubernetes machines (TRAINYARD_EC2_SUBNETS=subnet-0a1b2c3d4e5f60718 TRAINYARD_ALLOWED_MACHINE_CLASSES=gpu TRAINYARD_MAX_GPUS=2)',
    );
    const json = JSON.parse(validate(repo.path, env, ['--json']).stdout) as {
      ok: boolean;
      errors: { line: number; column: number; message: string }[];
      policy: unknown;
    };
    expect(json.ok).toBe(false);
    expect(json.errors.map((e) => `${e.line}:${e.column}`)).toEqual(['6:3', '8:11']);
    expect(json.policy).toMatchObject({ configured: true, ec2: { region: 'eu-west-1' }, kubernetes: null });
    // Inside the limits it passes.
    const ok = validate(repo.path, { ...EC2, TRAINYARD_MAX_GPUS: '4' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('checked against the server policy of this environment: EC2 machines in eu-west-1');
  });

  it('a policy without EC2 refuses machine steps as the server would', () => {
    const repo = new GitRepo(root).write({ '.trainyard/mnist.yaml': MNIST });
    const r = validate(repo.path, { TRAINYARD_MAX_GPUS: '8' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^\.trainyard\/mnist\.yaml:12:14: step "train" needs machine class "gpu", but this server has no EC2 configured/m,
    );
  });

  it("with the server's Kubernetes classes reports an unknown class and too many GPUs for a class", () => {
    const classes = join(root, 'k8s.yaml');
    writeFileSync(
      classes,
      'agentImage: ghcr.io/trainyard/trainyard:0.1.0\nstore: s3://ml-artifacts/trainyard\nclasses:\n  a100:\n    namespace: ml-jobs\n    gpu: { resource: nvidia.com/gpu, count: 1 }\n',
    );
    const repo = new GitRepo(root).write({ '.trainyard/kube.yaml': K8S });
    const r = validate(repo.path, { TRAINYARD_K8S_CONFIG: classes });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      '.trainyard/kube.yaml:3:37: machine "a100x2" asks for 2 GPUs; Kubernetes class "a100" allows at most 1 (nvidia.com/gpu)',
    );
    expect(r.stderr).toContain(
      '.trainyard/kube.yaml:4:23: Kubernetes machine class "h100" (machine "h100") is not defined on this server (its classes: a100)',
    );
    expect(r.stderr).toContain(
      `checked against the server policy of this environment: no EC2 machines, Kubernetes classes a100 of ${classes}`,
    );
  });

  it('a wrong policy setting is a setup error naming it, and nothing is reported valid', () => {
    const repo = new GitRepo(root).write({ '.trainyard/mnist.yaml': MNIST });
    const r = validate(repo.path, { TRAINYARD_MAX_GPUS: 'many' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^trainyard: TRAINYARD_MAX_GPUS: /m);
    expect(r.stdout).not.toContain('ok:');
  });
});
