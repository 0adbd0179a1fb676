// Starts the real services once per test run: a Temporal dev server and a moto server.
// When TEMPORAL_ADDRESS / TRAINYARD_TEST_S3_ENDPOINT are already set (a developer's
// long-running servers), those are used instead.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until `check` passes; fails at once when the service process cannot start or exits. */
async function waitFor(
  child: ChildProcess,
  check: () => Promise<boolean>,
  what: string,
  hint: string,
  ms = 60_000,
): Promise<void> {
  let failure: string | undefined;
  child.once(
    'error',
    (err: NodeJS.ErrnoException) =>
      (failure = err.code === 'ENOENT' ? `${what}: not installed. ${hint}` : `${what}: ${err.message}`),
  );
  child.once('exit', (code, signal) => (failure ??= `${what} exited (${code ?? signal}) before it answered`));
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (failure) throw new Error(`test setup: ${failure}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`test setup: ${what} did not come up within ${ms / 1000}s`);
}

/** `name` from PATH, else the link setup.sh leaves in node_modules/.bin when pip put it elsewhere. */
function tool(name: string): string {
  const onPath = (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, name)));
  const linked = fileURLToPath(new URL(`../../node_modules/.bin/${name}`, import.meta.url));
  return onPath || !existsSync(linked) ? name : linked;
}

const children: ChildProcess[] = [];
let scratch: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  scratch = mkdtempSync(join(tmpdir(), 'trainyard-test-'));
  if (!process.env.TEMPORAL_ADDRESS) {
    const port = await freePort();
    const httpPort = await freePort();
    // Found the way `trainyard run` finds it (not only on PATH), and with Temporal's default
    // dynamic config, so continue-as-new happens where it would on a real cluster.
    const { devServerArgs, temporalBinary } = await import('../../app/devserver.js');
    const child = spawn(
      temporalBinary(),
      // With the run search attributes `trainyard setup-temporal` registers on a real server.
      devServerArgs({ port, httpPort, metricsPort: await freePort() }),
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(child);
    process.env.TEMPORAL_ADDRESS = `127.0.0.1:${port}`;
    const { Connection } = await import('@temporalio/client');
    const { TEMPORAL_INSTALL_HINT } = await import('../../app/devserver.js');
    await waitFor(
      child,
      async () => {
        const c = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS!, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return true;
      },
      `temporal dev server on ${process.env.TEMPORAL_ADDRESS}`,
      TEMPORAL_INSTALL_HINT,
    );
  }
  if (!process.env.TRAINYARD_TEST_S3_ENDPOINT) {
    const port = await freePort();
    const child = spawn(tool('moto_server'), ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    children.push(child);
    process.env.TRAINYARD_TEST_S3_ENDPOINT = `http://127.0.0.1:${port}`;
    await waitFor(
      child,
      async () => (await fetch(`${process.env.TRAINYARD_TEST_S3_ENDPOINT}/moto-api/`)).ok,
      'moto server',
      "Install it with `pip install 'moto[server]'` (bash setup.sh does), or set TRAINYARD_TEST_S3_ENDPOINT to a running moto server.",
    );
  }
  process.env.TRAINYARD_TEST_SCRATCH = scratch;
  project.provide('temporalAddress', process.env.TEMPORAL_ADDRESS);
  project.provide('s3Endpoint', process.env.TRAINYARD_TEST_S3_ENDPOINT);
}

export async function teardown(): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  if (scratch) rmSync(scratch, { recursive: true, force: true });
}

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    s3Endpoint: string;
  }
}
