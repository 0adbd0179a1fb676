// Starts `trainyard serve` as its own process, the way an operator would, and waits until
// it listens. Used by the end-to-end tests and bench/webhooks.ts.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../../app/devserver.js';

export { freePort };

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServeProcess {
  url: string;
  port: number;
  /** Process id of the server (for /proc/<pid>/status). */
  pid: number;
  /** Everything the process wrote, stdout and stderr interleaved. */
  output(): string;
  /**
   * Resolves once every delivery this server recorded has been handled: each delivery workflow
   * it logged ('delivery recorded') has completed, and Temporal's visibility lists no running
   * delivery workflow on its control queue. After that, a delivery that was going to do
   * something has done it. Needs TEMPORAL_ADDRESS in the server's environment.
   */
  idle(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startServe(env: Record<string, string>, port?: number): Promise<ServeProcess> {
  const p = port ?? (await freePort());
  const child = spawn(process.execPath, ['bin/trainyard.js', 'serve'], {
    cwd: REPO_ROOT,
    env: { ...process.env, TRAINYARD_BIND: '127.0.0.1', TRAINYARD_PORT: String(p), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-2_000_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let client: Client | undefined;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 90_000;
  while (!/listening on http/.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`trainyard serve did not start (exit ${child.exitCode}):\n${out.slice(-5000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${p}`,
    port: p,
    pid: child.pid!,
    output: () => out,
    async idle(ms = 90_000) {
      const address = env.TEMPORAL_ADDRESS;
      if (!address) throw new Error('idle() needs TEMPORAL_ADDRESS in the server environment');
      client ??= new Client({
        connection: await Connection.connect({ address }),
        namespace: env.TEMPORAL_NAMESPACE ?? 'default',
      });
      const c = client;
      const recorded = [...out.matchAll(/"workflowId":"(delivery:[^"]+)"[^\n]*"msg":"delivery recorded"/g)].map(
        (m) => m[1]!,
      );
      const until = Date.now() + ms;
      const bounded = <T>(p: Promise<T>) =>
        Promise.race([
          p,
          new Promise<never>((_, rej) =>
            setTimeout(
              () =>
                rej(new Error(`trainyard serve's deliveries not handled within ${ms / 1000}s:\n${out.slice(-5000)}`)),
              Math.max(1, until - Date.now()),
            ),
          ),
        ]);
      await bounded(
        Promise.all(
          recorded.map((id) =>
            c.workflow
              .getHandle(id)
              .result()
              .catch(() => undefined),
          ),
        ),
      );
      const queue = env.TRAINYARD_CONTROL_QUEUE ?? 'trainyard';
      for (;;) {
        const { count } = await c.workflow.count(
          `WorkflowType = 'intakeDelivery' AND TaskQueue = '${queue}' AND ExecutionStatus = 'Running'`,
        );
        if (count === 0) return;
        if (Date.now() > until)
          throw new Error(
            `trainyard serve still has ${count} delivery workflow(s) running after ${ms / 1000}s:\n${out.slice(-5000)}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async stop() {
      await client?.connection.close();
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
