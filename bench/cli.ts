// The CLI rows of bench/engine.ts: `trainyard --help` against a bare `node -e 0`, and a
// `trainyard run` of a pipeline whose steps are all cached, in a new process with its embedded
// Temporal server, with the wall time split into phases (app/local/phases.ts).
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PhaseFile } from '../app/local/phases.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface Spawned {
  wallMs: number;
  code: number | null;
  phases?: PhaseFile;
  stderr: string;
  /** When it was spawned, ms since the epoch (the phases' timeOrigin is on the same clock). */
  spawnedAt: number;
}

/**
 * Compiles the CLI (bin/build.js) unless its build is current, so the CLI rows measure what
 * `setup.sh` leaves a user rather than the TypeScript sources transpiled at every call.
 */
export async function ensureBuilt(): Promise<void> {
  // @ts-expect-error: plain JavaScript modules without declarations
  const { buildIsCurrent } = (await import('../bin/buildstamp.js')) as { buildIsCurrent(): boolean };
  // @ts-expect-error: plain JavaScript modules without declarations
  const { buildCompiled } = (await import('../bin/build.js')) as { buildCompiled(): Promise<number> };
  if (!buildIsCurrent()) await buildCompiled();
}

/** Runs `node ARGS` from the checkout and measures it; with `phases`, the CLI's phase marks. */
export async function timeNode(
  args: string[],
  env: Record<string, string | undefined> = {},
  phases = false,
): Promise<Spawned> {
  const dir = phases ? mkdtempSync(join(tmpdir(), 'trainyard-bench-phases-')) : undefined;
  const file = dir ? join(dir, 'phases.json') : undefined;
  try {
    const spawnedAt = Date.now();
    const t0 = performance.now();
    const childEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, ...env, ...(file ? { TRAINYARD_PHASES_FILE: file } : {}) }))
      if (v !== undefined) childEnv[k] = v;
    const child = spawn(process.execPath, args, { cwd: REPO, env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const wallMs = performance.now() - t0;
    const phasesRead = file ? (JSON.parse(readFileSync(file, 'utf8')) as PhaseFile) : undefined;
    return { wallMs, code, stderr, spawnedAt, ...(phasesRead ? { phases: phasesRead } : {}) };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Median of `n` runs by wall time. */
export async function median(n: number, f: () => Promise<Spawned>): Promise<Spawned> {
  const all: Spawned[] = [];
  for (let i = 0; i < n; i++) all.push(await f());
  all.sort((a, b) => a.wallMs - b.wallMs);
  return all[Math.floor(all.length / 2)]!;
}

export interface CachedRunFigures {
  wallMs: number;
  maxRssKb: number;
  /** Phase → ms, in order: process start, checks, server ready, bundle + workers, run, shutdown (workers, containers, server), exit. */
  breakdown: Array<[string, number]>;
}

/**
 * Runs `trainyard run -C <copy of dir>` once to fill the cache, then again and measures the
 * second (every step cached). `store` and `home` are the temporary store and TRAINYARD_HOME.
 */
export async function cachedExampleRun(dir: string, root: string): Promise<CachedRunFigures> {
  const project = mkdtempSync(join(root, 'example-'));
  cpSync(dir, project, { recursive: true });
  const git = (...a: string[]) =>
    new Promise<void>((res, rej) =>
      spawn('git', ['-C', project, ...a], { stdio: 'ignore' }).on('close', (c) =>
        c === 0 ? res() : rej(new Error(`git ${a.join(' ')}: ${c}`)),
      ),
    );
  await git('init', '-q', '-b', 'main');
  await git('-c', 'user.email=bench@example.com', '-c', 'user.name=bench', 'add', '-A');
  await git('-c', 'user.email=bench@example.com', '-c', 'user.name=bench', 'commit', '-q', '-m', 'bench');
  const env = {
    TRAINYARD_STORE: join(root, 'cli-store'),
    TRAINYARD_HOME: join(root, 'cli-home'),
    TRAINYARD_WORK_DIR: join(root, 'cli-work'),
    TEMPORAL_ADDRESS: undefined,
  };
  const args = ['bin/trainyard.js', 'run', '-C', project, '--quiet'];
  const first = await timeNode(args, env);
  if (first.code !== 0) throw new Error(`trainyard run (filling the cache) exited ${first.code}: ${first.stderr}`);
  const again = await timeNode(args, env, true);
  if (again.code !== 0 || !again.phases)
    throw new Error(`trainyard run (all cached) exited ${again.code}: ${again.stderr}`);
  if (!/succeeded/.test(again.stderr)) throw new Error(`trainyard run did not succeed: ${again.stderr}`);
  const p = again.phases;
  const at = (name: string): number => {
    const m = p.marks.find((x) => x.name === name);
    if (!m) throw new Error(`the CLI recorded no "${name}" phase`);
    return p.timeOrigin + m.ms - again.spawnedAt;
  };
  const points: Array<[string, number]> = [
    ['process start (node, imports)', at('loaded')],
    ['checks (snapshot, checkout, pipeline)', at('checked')],
    ['embedded Temporal server ready', at('server ready')],
    ['workflow bundle + workers', at('workers ready')],
    ['run (all cached) + report', at('run finished')],
    ['shutdown: workers, connections', at('workers stopped')],
    ['shutdown: leftover containers checked', at('containers checked')],
    ['shutdown: embedded server stopped', at('server stopped')],
    ['exit', again.wallMs],
  ];
  const breakdown: Array<[string, number]> = points.map(([name, t], i) => [
    name,
    t - (i === 0 ? 0 : points[i - 1]![1]),
  ]);
  return { wallMs: again.wallMs, maxRssKb: p.maxRssKb, breakdown };
}
