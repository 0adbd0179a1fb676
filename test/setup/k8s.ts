// Global setup of the `k8s` test project (vitest.config.ts): one real local Kubernetes for the
// test run (test/k8s/cluster/cluster.sh), the images its pods run (the test images and the
// Trainyard image, which is also the pod agent's), and a moto server the pods
// can reach. The cluster is held by test/k8s/cluster/guard.sh, a process of its own that tears
// it down when told to, or when this test runner is gone (killed, interrupted), whichever
// comes first. Binaries are built once per machine (cluster.sh build, also run by setup.sh).
// TRAINYARD_TEST_KUBECONFIG (with TRAINYARD_TEST_K8S_S3_ENDPOINT) uses a running cluster instead.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { ensureTestImages, BUSYBOX_IMAGE, PYTHON_IMAGE } from '../fixtures/images/images.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const clusterSh = join(here, '../k8s/cluster/cluster.sh');
const guardSh = join(here, '../k8s/cluster/guard.sh');
/** The one Trainyard image (deploy/image/build-local.sh): serve, worker, agent and the pod agent. */
export const TRAINYARD_IMAGE = 'localhost/trainyard:local';
export const POD_AGENT_IMAGE = TRAINYARD_IMAGE;
const dir = process.env.K8S_DIR ?? join(homedir(), '.cache', 'trainyard-k8s');

let guard: ChildProcess | undefined;
let moto: ChildProcess | undefined;

function sh(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`bash ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-4000)}`));
      else resolve(stdout);
    });
  });
}

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

async function until(check: () => boolean | Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`test setup: ${what} within ${ms / 1000}s`);
}

export async function setup(project: TestProject): Promise<void> {
  if (process.env.TRAINYARD_TEST_KUBECONFIG) {
    project.provide('kubeconfig', process.env.TRAINYARD_TEST_KUBECONFIG);
    project.provide('k8sS3Endpoint', process.env.TRAINYARD_TEST_K8S_S3_ENDPOINT ?? '');
    project.provide('podAgentImage', process.env.TRAINYARD_TEST_POD_AGENT_IMAGE ?? POD_AGENT_IMAGE);
    return;
  }
  if (!existsSync(join(dir, 'bin', 'kubelet'))) {
    process.stderr.write(
      `test setup: building the local Kubernetes into ${dir} (once per machine, several minutes; setup.sh does it too)\n`,
    );
    await sh([clusterSh, 'build'], 60 * 60_000);
  }
  const ready = join(dir, 'run', `guard-${process.pid}.ready`);
  rmSync(ready, { force: true });
  // Its own session: an interrupt of the test runner does not reach it, its own watch does.
  guard = spawn('bash', [guardSh, String(process.pid), ready], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, K8S_DIR: dir },
  });
  guard.unref();
  const images = (async () => {
    await ensureTestImages();
    await sh([join(here, '../../deploy/image/build-local.sh')], 600_000);
  })();
  await until(
    () => existsSync(ready) && readFileSync(ready, 'utf8').trim() !== '',
    'the local Kubernetes did not come up',
    10 * 60_000,
  );
  if (readFileSync(ready, 'utf8').trim() !== 'up')
    throw new Error(
      `test setup: the local Kubernetes failed to start:\n${readFileSync(`${ready}.log`, 'utf8').slice(-4000)}`,
    );
  await images;
  await sh([clusterSh, 'load', BUSYBOX_IMAGE, PYTHON_IMAGE, POD_AGENT_IMAGE], 300_000);
  // One (pretend) GPU on the node, as a device plugin would advertise it: enough to schedule a
  // 1-GPU step, too few for a 2-GPU one.
  await sh(
    [
      '-c',
      `KUBECONFIG=${join(dir, 'kubeconfig')} kubectl patch node localhost --subresource=status --type=json -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]'`,
    ],
    30_000,
  );
  const bridge = (await sh([clusterSh, 'bridge-ip'], 10_000)).trim();
  const port = await freePortOn(bridge);
  moto = spawn('moto_server', ['-H', bridge, '-p', String(port)], { stdio: 'ignore' });
  const endpoint = `http://${bridge}:${port}`;
  await until(async () => (await fetch(`${endpoint}/moto-api/`)).ok, `moto on ${endpoint} did not answer`, 60_000);
  project.provide('kubeconfig', join(dir, 'kubeconfig'));
  project.provide('k8sS3Endpoint', endpoint);
  project.provide('podAgentImage', POD_AGENT_IMAGE);
}

export async function teardown(): Promise<void> {
  moto?.kill('SIGTERM');
  const pid = guard?.pid;
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  // The guard exits once `cluster.sh down` has restored the host.
  await until(
    () => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    },
    'the local Kubernetes was not torn down',
    180_000,
  );
}

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    k8sS3Endpoint: string;
    podAgentImage: string;
  }
}
