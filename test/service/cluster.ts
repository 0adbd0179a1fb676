// The service topology as separate processes, the way an operator runs it: a Temporal dev
// server on a db file, `trainyard serve` replicas, control workers and runner agents, each
// `node bin/trainyard.js …` of its own. Every process can be SIGKILLed and started again on
// the same port / queue; every one carries a tag in its environment so a test can prove
// afterwards that none of them (nor anything they spawned) is left.
//
// Each process runs in a process group of its own, followed by the watchdog of the CLI's own
// dev server (app/guard.mjs): should the test runner die without stopping them — SIGKILLed,
// Ctrl-C'ed, out of memory — the watchdog's pipe closes and it ends every group (SIGTERM,
// then SIGKILL after the process's shutdown grace), so no Temporal server, replica, worker or
// agent outlives the test. A group of its own also keeps a terminal's Ctrl-C from reaching
// them before the runner has stopped them itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { devServerArgs, freePort, temporalBinary } from '../../app/devserver.js';
import { spawnGuard, type Guard } from '../../app/guard.js';
import { REPO_ROOT } from '../githost/serve-process.js';

export { freePort };

let guard: Guard | undefined;

/** The watchdog of this test process, started with the first Proc. */
function processGuard(): Guard {
  return (guard ??= spawnGuard());
}

/** Stops the watchdog once every Proc has stopped (it ends any group still there first); the next Proc starts a new one. */
export async function closeProcessGuard(): Promise<void> {
  const g = guard;
  guard = undefined;
  await g?.close();
}

/** Whether any process of group `pgid` is left. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** One supervised process: started, killed, restarted with the same command and environment. */
export class Proc {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private tail = '';
  private readonly log: WriteStream;
  starts = 0;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    logDir: string,
  ) {
    this.log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last ~200 kB of output. */
  output(): string {
    return this.tail;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is running already`);
    this.starts++;
    this.tail = '';
    // detached: a process group (and session) of its own, which the watchdog ends should this process die.
    const child = spawn(this.command, this.args, {
      cwd: REPO_ROOT,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const pgid = child.pid;
    if (pgid !== undefined) {
      // The process's own shutdown grace (TRAINYARD_SHUTDOWN_GRACE_SECONDS, default 20 s) and 5 s to exit.
      const graceMs = (Number(this.env.TRAINYARD_SHUTDOWN_GRACE_SECONDS) || 20) * 1000 + 5000;
      const g = processGuard();
      g.followGroup(pgid, graceMs);
      child.once('exit', () => {
        if (!groupAlive(pgid)) g.unfollowGroup(pgid);
      });
    }
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-200_000);
      this.log.write(d);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.log.write(`--- start ${this.starts} (pid ${child.pid}) at ${new Date().toISOString()}\n`);
    this.exited = new Promise((r) => child.once('exit', () => r()));
    this.child = child;
  }

  /** Waits until the output matches (the process says it is ready), or throws with its output. */
  async ready(pattern: RegExp, ms = 300_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.tail)) {
      if (!this.running) throw new Error(`${this.name} exited before it was ready:\n${this.tail.slice(-4000)}`);
      if (Date.now() > deadline)
        throw new Error(`${this.name} not ready within ${ms / 1000} s:\n${this.tail.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return;
    this.log.write(`--- ${signal} at ${new Date().toISOString()}\n`);
    this.child!.kill(signal);
    await this.exited;
  }

  /** SIGTERM, then SIGKILL after graceMs; true when it stopped on SIGTERM alone. */
  async stop(graceMs = 30_000): Promise<boolean> {
    if (!this.running) return true;
    this.child!.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const stoppedWell = await Promise.race([
      this.exited!.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!stoppedWell) await this.kill('SIGKILL');
    return stoppedWell;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.log.end(() => r()));
  }
}

/** `temporal server start-dev` on fixed ports and a db file, so a restart finds everything again. */
export class TemporalServer {
  readonly proc: Proc;
  readonly address: string;

  private constructor(
    port: number,
    httpPort: number,
    metricsPort: number,
    dbFile: string,
    env: Record<string, string>,
    logDir: string,
  ) {
    this.address = `127.0.0.1:${port}`;
    this.proc = new Proc(
      'temporal',
      temporalBinary(),
      devServerArgs({ port, httpPort, metricsPort, dbFile, searchAttributes: false }),
      env,
      logDir,
    );
  }

  static async create(dbFile: string, env: Record<string, string>, logDir: string): Promise<TemporalServer> {
    return new TemporalServer(await freePort(), await freePort(), await freePort(), dbFile, env, logDir);
  }

  async start(): Promise<void> {
    this.proc.start();
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        const c = await Connection.connect({ address: this.address, connectTimeout: 1000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (!this.proc.running) throw new Error(`temporal exited:\n${this.proc.output().slice(-4000)}`);
        if (Date.now() > deadline)
          throw new Error(`temporal did not answer on ${this.address}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/** A node process of ours: `node bin/trainyard.js <args>`. */
export function trainyard(name: string, args: string[], env: Record<string, string>, logDir: string): Proc {
  return new Proc(name, process.execPath, ['bin/trainyard.js', ...args], env, logDir);
}

/** Pids of live processes whose environment holds `marker` (e.g. `TAG=value`), with their command lines. */
export function processesWith(marker: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
      if (!environ.split('\0').includes(marker)) continue;
      // A zombie has no command line; it is gone as soon as its parent reaps it.
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${entry}/status`, 'latin1'))?.[1];
      if (state === 'Z') continue;
      out.push({
        pid: Number(entry),
        cmdline: readFileSync(`/proc/${entry}/cmdline`, 'latin1').split('\0').join(' ').trim(),
      });
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return out;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same plan and fault schedule. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
