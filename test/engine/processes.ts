// `trainyard` as its own process, the way a user or an operator runs it: watch what it
// prints, signal it (also through a pseudo-terminal, where Ctrl-C reaches the whole
// foreground process group), and find every process it left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers } from '../../activities/container/run.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(REPO_ROOT, 'bin', 'trainyard.js');

/** Runs argv under a new pseudo-terminal (python3's pty module) and exits with its exit code; its stdin goes to the terminal. */
const PTY_WRAPPER = 'import os, pty, sys\nsys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))';

export interface TrainyardProcess {
  child: ChildProcess;
  /** stdout and stderr as received so far (one stream under a terminal). */
  output(): string;
  /** Resolves with the first match of `re` in the output; throws with the output after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Types Ctrl-C on the terminal (pty only). */
  ctrlC(): void;
}

/**
 * Starts `node bin/trainyard.js ARGS` with `env` added to this process's environment. With
 * `pty`, it runs as the foreground process of a new terminal session.
 */
export function startTrainyard(
  args: string[],
  env: Record<string, string>,
  opts: { pty?: boolean; stdout?: 'pipe' | 'closed' } = {},
): TrainyardProcess {
  const argv = [process.execPath, BIN, ...args];
  const child = opts.pty
    ? spawn('python3', ['-c', PTY_WRAPPER, ...argv], {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : spawn(argv[0]!, argv.slice(1), {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-1_000_000));
  if (opts.stdout === 'closed') child.stdout!.destroy();
  else child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  return {
    child,
    output: () => out,
    async waitFor(re, ms = 120_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const m = re.exec(out);
        if (m) return m;
        if (done || Date.now() > deadline)
          throw new Error(
            `${done ? 'exited' : `no ${re} within ${ms / 1000} s`} before printing ${re}; output:\n${out.slice(-6000)}`,
          );
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    exited,
    ctrlC() {
      if (!opts.pty) throw new Error('ctrlC needs a pty');
      child.stdin!.write('\x03');
    },
  };
}

/** Polls `check` every 200 ms until it returns a truthy value; throws `what` after `ms`. */
export async function waitUntil<T>(what: string, check: () => T | Promise<T>, ms = 120_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`waited ${ms / 1000} s for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Every live process whose environment has `NAME=value` — a marker a test gives the command
 * it starts, which everything that command starts inherits (the embedded Temporal server,
 * its watchdog, the container CLI and its monitor): pid and command line.
 */
export function processesWithEnv(name: string, value: string): Array<{ pid: number; cmd: string }> {
  const want = `${name}=${value}`;
  const found: Array<{ pid: number; cmd: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(want)) continue;
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      // A zombie (exited, not yet reaped by its parent) is no longer running.
      const state = /^\S+ \(.*\) (\S)/.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'))?.[1];
      if (state !== 'Z') found.push({ pid: Number(entry), cmd });
    } catch {
      // Gone while we looked, or not ours to read.
    }
  }
  return found;
}

/** Names of the containers (running or not) with this label value. */
export async function containersLabelled(label: string, value: string): Promise<string[]> {
  return (await listContainers(await resolveContainerCli(process.env), { [label]: value })).map((c) => c.name);
}
