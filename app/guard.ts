// Starting the watchdog of a `trainyard run` (app/guard.mjs): the embedded Temporal server
// runs under it, and it removes the step containers this process started should the process
// die without doing so itself (SIGKILL, the OOM killer).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { watchContainers } from '../activities/container/run.js';

const SCRIPT = fileURLToPath(new URL('./guard.mjs', import.meta.url));

export interface Guard {
  /** Resolves when the watchdog has exited: `expected` after close(), else with its exit status and last stderr. */
  exited: Promise<{ expected: boolean; detail: string }>;
  /** From now on, tells the watchdog about every container this process starts and removes. */
  followContainers(): void;
  /**
   * From now on, ends process group `pgid` (a child spawned `detached`) when this process
   * ends in any way: SIGTERM, then SIGKILL after `graceMs` (default 15 s) if any of it is left.
   */
  followGroup(pgid: number, graceMs?: number): void;
  /** Forgets that group (every process of it has exited). */
  unfollowGroup(pgid: number): void;
  /** Stops what it guards and waits until the watchdog is gone (10 s or the longest group grace + 6 s, then SIGKILL of its process group). */
  close(): Promise<void>;
}

/**
 * Spawns the watchdog in a process group of its own, connected by a pipe whose end-of-file
 * (close(), or this process dying in any way) makes it remove the containers it was told
 * of and stop `server` — a command it starts, with its stderr passed on to exited's detail.
 * An `ephemeral` server (one that keeps nothing: the dev server without a database file) is
 * stopped with SIGKILL, at once, rather than SIGTERM and its graceful shutdown (about a second).
 */
export function spawnGuard(server?: { binary: string; args: string[]; ephemeral?: boolean }): Guard {
  const child = spawn(process.execPath, [SCRIPT, ...(server ? [server.binary, ...server.args] : [])], {
    stdio: ['pipe', 'ignore', 'pipe'],
    detached: true,
    ...(server?.ephemeral ? { env: { ...process.env, TRAINYARD_GUARD_SERVER_STOP: 'SIGKILL' } } : {}),
  });
  // The pipe must not crash this process when the watchdog is gone.
  child.stdin?.on('error', () => undefined);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let closing = false;
  const exited = new Promise<{ expected: boolean; detail: string }>((resolve) => {
    child.once('exit', (code, signal) =>
      resolve({ expected: closing, detail: `exit ${code ?? signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}` }),
    );
    child.once('error', (err) => resolve({ expected: false, detail: err.message }));
  });
  let unwatch: (() => void) | undefined;
  // close() must not cut short a followed group's grace time (guard.mjs: grace, then up to 5 s).
  let closeWaitMs = 10_000;
  const send = (line: string[]): void => {
    if (line.some((f) => /[\t\n\r]/.test(f)) || !child.stdin?.writable) return;
    child.stdin.write(`${line.join('\t')}\n`);
  };
  return {
    exited,
    followContainers() {
      unwatch ??= watchContainers({
        started: (name, cli) => send(['started', cli.command, name]),
        removed: (name) => send(['removed', name]),
      });
    },
    followGroup(pgid, graceMs) {
      const grace = Math.max(0, Math.round(graceMs ?? 15_000));
      closeWaitMs = Math.max(closeWaitMs, grace + 6_000);
      send(['group', String(pgid), String(grace)]);
    },
    unfollowGroup(pgid) {
      send(['ungroup', String(pgid)]);
    },
    async close() {
      closing = true;
      unwatch?.();
      child.stdin?.end();
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, closeWaitMs);
      await exited;
      clearTimeout(t);
    },
  };
}
