// `trainyard doctor` as a user runs it: its own process, against the real Temporal dev
// server, moto (S3 and EC2) and the OpenAPI-checked fake GitHub / fake GitLab. Every check
// says ok when things are right, and FAIL in plain words naming what to fix when not.
import { S3Client } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploymentName, motoClients, motoEnv, motoSubnets } from '../ec2/moto.js';
import { FakeGitHub } from '../githost/fake-github.js';
import { FakeGitLab } from '../githost/fake-gitlab.js';
import { s3ClientConfig, s3Endpoint, temporalAddress } from '../setup/services.js';
import { createTestBucket, deleteTestBucket } from '../store/backends.js';

const pair = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
const app = pair();
const gh = new FakeGitHub(77, app.publicKey, { id: 1001, owner: 'octo-org', name: 'models' }, 42);
const gl = new FakeGitLab('gl-token', 15);
const scratch = mkdtempSync(join(tmpdir(), 'trainyard-doctor-'));
const s3 = new S3Client(s3ClientConfig());
let bucket = '';
let env: Record<string, string> = {};

// Asynchronous: the fake git hosts answer from this process while the command runs.
async function doctor(over: Record<string, string | undefined>, flags: string[] = []) {
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(import.meta.dirname, '..', '..', 'bin', 'trainyard.js'), 'doctor', ...flags],
      {
        encoding: 'utf8',
        timeout: 120_000,
        cwd: scratch,
        env: { PATH: process.env.PATH, HOME: scratch, ...env, ...over },
      },
      (err, stdout, stderr) =>
        resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
  const lines = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => {
        const m = /^(ok|FAIL|skip)\s+([^:]+): (.*)$/.exec(l);
        return m ? [m[2]!, `${m[1]} ${m[3]}`] : [l, l];
      }),
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines };
}

beforeAll(async () => {
  await gh.start();
  await gl.start();
  bucket = await createTestBucket(s3, 'doctor');
  const clients = motoClients();
  const subnets = await motoSubnets(clients.ec2);
  clients.ec2.destroy();
  env = {
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_STORE: `s3://${bucket}/store`,
    AWS_ENDPOINT_URL_S3: s3Endpoint(),
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    GITHUB_APP_ID: '77',
    GITHUB_PRIVATE_KEY: app.privateKey,
    GITHUB_WEBHOOK_SECRET: 'hook',
    GITHUB_API_URL: gh.url,
    GITLAB_TOKEN: 'gl-token',
    GITLAB_WEBHOOK_SECRET: 'gl-hook',
    GITLAB_URL: gl.url,
    ...motoEnv(subnets, deploymentName()),
  };
});

afterAll(async () => {
  await gh.stop();
  await gl.stop();
  if (bucket) await deleteTestBucket(s3, bucket);
  s3.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

describe('trainyard doctor', () => {
  it('says ok for every check when everything answers, and exits 0', async () => {
    const r = await doctor({});
    expect(r.stdout).toMatch(/^ok\s+configuration: /m);
    expect(r.lines.Temporal).toBe(`ok ${temporalAddress()}, namespace default`);
    expect(r.lines.store).toBe(`ok s3://${bucket}/store: wrote and read back a record`);
    expect(r.lines['GitHub App']).toBe(`ok app trainyard-test (id 77) at ${gh.url}`);
    expect(r.lines.GitLab).toBe(`ok token of trainyard-bot at ${gl.url}`);
    expect(r.lines['AWS EC2']).toBe('ok region us-east-1, credentials accepted');
    expect(r.lines.Kubernetes).toBe('skip TRAINYARD_K8S_CONFIG is not set');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(gh.violations).toEqual([]);
  });

  it('says in plain words what is wrong, one line per check, and exits 1', async () => {
    const other = pair();
    const r = await doctor({
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      TRAINYARD_STORE: `s3://${bucket}-missing/store`,
      GITHUB_PRIVATE_KEY: other.privateKey,
      GITLAB_TOKEN: 'revoked',
    });
    expect(r.lines.Temporal).toMatch(/^FAIL cannot reach 127\.0\.0\.1:1 \(TEMPORAL_ADDRESS\): /);
    expect(r.lines.store).toMatch(new RegExp(`^FAIL s3://${bucket}-missing/store \\(TRAINYARD_STORE\\): `));
    expect(r.lines['GitHub App']).toBe(
      `FAIL ${gh.url} refused the App's token (401): GITHUB_APP_ID 77 and the private key do not belong together, or the machine clock is off`,
    );
    expect(r.lines.GitLab).toBe(`FAIL ${gl.url} refused GITLAB_TOKEN (401): the token is wrong, expired or revoked`);
    expect(r.lines['AWS EC2']).toMatch(/^ok /);
    expect(r.code).toBe(1);
  });

  it('a wrong setting fails the configuration check, naming it, and what depends on it is not checked', async () => {
    const r = await doctor({ TRAINYARD_PARALLELISM: 'lots', TRAINYARD_STORE: join(scratch, 'store') });
    expect(r.lines.configuration).toBe('FAIL TRAINYARD_PARALLELISM: must be a whole number from 1 to 1024, got "lots"');
    expect(r.lines.Temporal).toBe('skip not checked: its configuration is wrong (above)');
    expect(r.lines['GitHub App']).toMatch(/^ok /);
    expect(r.code).toBe(1);
  });

  it('--json prints every check with name, status, ok and message, and exits as the text does', async () => {
    const r = await doctor({ GITLAB_TOKEN: 'revoked' }, ['--json']);
    const parsed = JSON.parse(r.stdout) as {
      ok: boolean;
      checks: { name: string; status: string; ok: boolean; message: string }[];
    };
    expect(parsed.ok).toBe(false);
    expect(parsed.checks.map((c) => c.name)).toEqual([
      'configuration',
      'Temporal',
      'store',
      'GitHub App',
      'GitLab',
      'AWS EC2',
      'Kubernetes',
    ]);
    const by = Object.fromEntries(parsed.checks.map((c) => [c.name, c]));
    expect(by.GitLab).toEqual({
      name: 'GitLab',
      status: 'FAIL',
      ok: false,
      message: `${gl.url} refused GITLAB_TOKEN (401): the token is wrong, expired or revoked`,
    });
    expect(by.Temporal).toEqual({
      name: 'Temporal',
      status: 'ok',
      ok: true,
      message: `${temporalAddress()}, namespace default`,
    });
    expect(by.Kubernetes).toEqual({
      name: 'Kubernetes',
      status: 'skip',
      ok: true,
      message: 'TRAINYARD_K8S_CONFIG is not set',
    });
    expect(r.code).toBe(1);
  });

  it('checks a local store too', async () => {
    const r = await doctor({
      TRAINYARD_STORE: join(scratch, 'local-store'),
      GITHUB_APP_ID: '',
      GITHUB_PRIVATE_KEY: '',
      GITHUB_WEBHOOK_SECRET: '',
      GITLAB_TOKEN: '',
      GITLAB_WEBHOOK_SECRET: '',
      TRAINYARD_EC2_SUBNETS: '',
    });
    expect(r.lines.store).toBe(`ok file://${join(scratch, 'local-store')}: wrote and read back a record`);
    expect(r.lines['GitHub App']).toBe('skip not configured (GITHUB_APP_ID unset)');
    expect(r.lines['AWS EC2']).toBe('skip EC2 is not configured (TRAINYARD_EC2_SUBNETS unset)');
    expect(r.code, r.stdout).toBe(0);
  });
});
