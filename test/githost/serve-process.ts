// Starts `trainyard serve` as its own process, the way an operator would, and waits until
// it listens. Used by the end-to-end tests and bench/webhooks.ts.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
