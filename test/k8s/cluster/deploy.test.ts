// The kustomize base in deploy/k8s/ on the test run's real local Kubernetes: every object it
// makes passes the API server's own validation (server-side dry-run), and with the image built
// here (localhost/trainyard:local, loaded into the cluster by test/setup/k8s.ts) its serve
// replicas and control worker start and answer /healthz. The cluster has no DNS or Services
// routing, so the pods reach a Temporal dev server on the pod bridge's address, and this test
// reaches the pods by their IPs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TRAINYARD_IMAGE } from '../../setup/k8s.js';

const run = promisify(execFile);
const base = fileURLToPath(new URL('../../../deploy/k8s', import.meta.url));
const clusterSh = fileURLToPath(new URL('./cluster.sh', import.meta.url));
const namespace = `ty-deploy-${randomBytes(3).toString('hex')}`;
let kubeEnv: NodeJS.ProcessEnv;
let overlay: string;
let temporal: ChildProcess | undefined;

const kubectl = async (...args: string[]): Promise<string> =>
  (await run('kubectl', args, { env: kubeEnv, maxBuffer: 16 << 20, timeout: 300_000 })).stdout;

async function freePortOn(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what} within ${ms / 1000}s${last ? `: ${(last as Error).message}` : ''}`);
}

beforeAll(async () => {
  kubeEnv = { ...process.env, KUBECONFIG: inject('kubeconfig') };
  const bridge = (await run('bash', [clusterSh, 'bridge-ip'])).stdout.trim();
  const port = await freePortOn(bridge);
  temporal = spawn(
    'temporal',
    [
      'server',
      'start-dev',
      '--headless',
      '--ip',
      bridge,
      '--port',
      String(port),
      '--http-port',
      String(await freePortOn(bridge)),
      '--metrics-port',
      String(await freePortOn(bridge)),
      '--log-level',
      'error',
    ],
    { stdio: 'ignore' },
  );
  const address = `${bridge}:${port}`;
  await until('the Temporal dev server on the bridge', 60_000, async () => {
    const c = await Connection.connect({ address, connectTimeout: 1000 });
    await c.close();
    return true;
  });

  // An overlay as a platform engineer writes one: the namespace, the image, the settings, the Secret.
  overlay = mkdtempSync(join(tmpdir(), 'trainyard-k8s-overlay-'));
  const pem = generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs1', format: 'pem' })
    .toString();
  writeFileSync(join(overlay, 'github-app.pem'), pem);
  writeFileSync(
    join(overlay, 'kustomization.yaml'),
    stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: [relative(overlay, base)],
      namespace,
      images: [
        {
          name: 'ghcr.io/trainyard/trainyard',
          newName: TRAINYARD_IMAGE.split(':')[0],
          newTag: TRAINYARD_IMAGE.split(':')[1],
        },
      ],
      configMapGenerator: [
        {
          name: 'trainyard',
          namespace: 'trainyard',
          behavior: 'merge',
          literals: [
            `TEMPORAL_ADDRESS=${address}`,
            'TRAINYARD_STORE=/var/lib/trainyard/store',
            'TRAINYARD_PUBLIC_URL=http://trainyard.test',
          ],
        },
      ],
      secretGenerator: [
        {
          name: 'trainyard',
          namespace: 'trainyard',
          literals: [
            'GITHUB_APP_ID=12345',
            `GITHUB_WEBHOOK_SECRET=${randomBytes(16).toString('hex')}`,
            `TRAINYARD_LINK_SECRET=${randomBytes(32).toString('hex')}`,
          ],
          files: ['GITHUB_PRIVATE_KEY=github-app.pem'],
        },
      ],
      // Here: one control worker, no agent (its Docker engine sidecar needs a privileged pod).
      patches: [
        {
          target: { kind: 'Deployment', name: 'trainyard-worker' },
          patch: '- { op: replace, path: /spec/replicas, value: 1 }',
        },
        {
          target: { kind: 'Deployment', name: 'trainyard-agent' },
          patch: '- { op: replace, path: /spec/replicas, value: 0 }',
        },
      ],
    }),
  );
  await kubectl('create', 'namespace', namespace);
}, 180_000);

afterAll(async () => {
  await kubectl('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
  if (temporal && temporal.exitCode === null) {
    const exited = new Promise((r) => temporal!.once('exit', r));
    temporal.kill('SIGTERM');
    await exited;
  }
  if (overlay) rmSync(overlay, { recursive: true, force: true });
});

describe('deploy/k8s (kustomize base)', () => {
  it('passes the API server’s validation: server-side dry-run of every object', async () => {
    const out = await kubectl('apply', '--dry-run=server', '-k', overlay);
    for (const obj of [
      'serviceaccount/trainyard',
      'serviceaccount/trainyard-worker',
      'role.rbac.authorization.k8s.io/trainyard-runner',
      'rolebinding.rbac.authorization.k8s.io/trainyard-runner',
      'deployment.apps/trainyard-serve',
      'deployment.apps/trainyard-worker',
      'deployment.apps/trainyard-agent',
      'service/trainyard-serve',
      'poddisruptionbudget.policy/trainyard-serve',
    ])
      expect(out).toMatch(new RegExp(`^${obj.replace(/[./]/g, '\\$&')} created \\(server dry run\\)$`, 'm'));
    expect(out).toMatch(/^configmap\/trainyard-[a-z0-9]+ created \(server dry run\)$/m);
    expect(out).toMatch(/^secret\/trainyard-[a-z0-9]+ created \(server dry run\)$/m);
    // Nothing was created.
    expect(await kubectl('get', 'deployments', '-n', namespace, '-o', 'name')).toBe('');
  });

  it('starts two serve replicas and a control worker that answer /healthz', async () => {
    await kubectl('apply', '-k', overlay);
    const ready = async (component: string, want: number) =>
      until(`${want} ready ${component} pod(s)`, 240_000, async () => {
        const pods = JSON.parse(
          await kubectl('get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/component=${component}`, '-o', 'json'),
        ) as {
          items: { status: { podIP?: string; conditions?: { type: string; status: string }[] } }[];
        };
        const up = pods.items.filter(
          (p) => p.status.podIP && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return up.length >= want ? up.map((p) => p.status.podIP!) : undefined;
      }).catch(async (e: Error) => {
        const logs = await kubectl(
          'logs',
          '-n',
          namespace,
          '-l',
          `app.kubernetes.io/component=${component}`,
          '--tail=30',
          '--all-containers',
        ).catch((x: Error) => x.message);
        throw new Error(`${e.message}\n${await kubectl('get', 'pods', '-n', namespace, '-o', 'wide')}\n${logs}`);
      });
    const [serveIps, workerIps] = await Promise.all([ready('serve', 2), ready('worker', 1)]);
    expect(serveIps).toHaveLength(2);
    for (const ip of serveIps) {
      const r = await fetch(`http://${ip}:3000/healthz`);
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ ok: true, github: true });
    }
    const w = await fetch(`http://${workerIps[0]}:3001/healthz`);
    expect(w.status).toBe(200);
    expect(await w.json()).toMatchObject({ ok: true, role: 'worker' });
    // The worker polls the control queue on the Temporal server it was pointed at.
    const deploy = JSON.parse(
      await kubectl('get', 'deployment', 'trainyard-worker', '-n', namespace, '-o', 'json'),
    ) as { spec: { template: { spec: { containers: { image: string; args: string[] }[] } } } };
    expect(deploy.spec.template.spec.containers[0]).toMatchObject({
      image: TRAINYARD_IMAGE,
      args: ['worker', '--no-host'],
    });
  });
});
