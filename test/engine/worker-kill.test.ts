// A runner killed mid-step (kill -9) leaves its container running. The step's heartbeat times
// out, a new runner picks the attempt up, removes what the dead one left *before* it runs the
// step again, and the run completes with the output stored once.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers } from '../../activities/container/run.js';
import type { ContainerCliConfig } from '../../activities/container/types.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine } from './harness.js';

let engine: Engine;
let cli: ContainerCliConfig;
const agents: ChildProcess[] = [];
beforeAll(async () => {
  engine = await startEngine({ host: false });
  cli = await resolveContainerCli(process.env);
});
afterAll(async () => {
  for (const a of agents) a.kill('SIGKILL');
  await engine?.stop();
});

/** A runner agent process; `stall` makes its containers hang like a stuck job (an env var only it sets). */
function startAgent(stall: boolean): ChildProcess {
  const child = spawn(process.execPath, ['bin/trainyard.js', 'agent', '--queue', engine.hostQueue], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: engine.address,
      TRAINYARD_STORE: join(engine.root, 'store'),
      TRAINYARD_WORK_DIR: join(engine.root, 'agent-work'),
      TRAINYARD_LOG_LEVEL: 'warn',
      TRAINYARD_CONTAINER_RUN_FLAGS: stall ? '--env TRAINYARD_TEST_STALL=1' : '',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  agents.push(child);
  return child;
}

/** The running containers of this file's host queue, sampled until stopped. */
function watchContainers() {
  const snapshots: string[][] = [];
  let stop = false;
  const done = (async () => {
    while (!stop) {
      snapshots.push(
        (await listContainers(cli, { 'trainyard.queue': engine.hostQueue }))
          .filter((c) => c.state === 'running')
          .map((c) => c.name),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    snapshots,
    async until(what: string, seen: (running: string[]) => boolean, ms = 90_000): Promise<void> {
      const deadline = Date.now() + ms;
      while (!snapshots.some(seen)) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(snapshots.at(-1))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    /** Waits for a sample taken after this call. */
    async next(): Promise<string[]> {
      const n = snapshots.length;
      await this.until('a fresh sample', () => snapshots.length > n + 1);
      return snapshots.at(-1)!;
    },
    async stop(): Promise<void> {
      stop = true;
      await done;
    },
  };
}

it('a killed runner is replaced: the new one removes the container the dead one left before running the step again, and the step completes, its output stored once', async () => {
  const repo = engine.repo().write({
    '.trainyard/kill.yaml': `
name: kill
steps:
  work:
    image: ${BUSYBOX_IMAGE}
    run: 'echo started; if [ -n "$TRAINYARD_TEST_STALL" ]; then sleep 3600; fi; sleep 2; echo "result ${engine.salt}" > /outputs/model'
    outputs: [model]
`,
  });
  repo.commit();
  const watch = watchContainers();
  try {
    const first = startAgent(true);
    const { workflowId } = await engine.start(repo, '.trainyard/kill.yaml');
    // Container names end in -<step attempt>-<runner attempt>-<runner pid>: -1-1-… is the first runner's.
    const isFirst = (n: string) => /-1-1-\d+$/.test(n);
    const isRetry = (n: string) => /-1-2-\d+$/.test(n);
    await watch.until("the first runner's container", (running) => running.some(isFirst));
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // Its container outlives it (it would run for an hour): an orphan for the next runner.
    const afterDeath = watch.snapshots.length;
    expect((await watch.next()).filter(isFirst)).toHaveLength(1);

    startAgent(false);
    const s = await engine.result(workflowId);
    await watch.next();
    await watch.stop();

    expect(s.state).toBe('succeeded');
    expect(stepOf(s, 'work').outcome!.attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
    // The retry ran (it was seen), never beside another container, and only once the orphan was gone.
    const seen = watch.snapshots.slice(afterDeath);
    const firstRetry = seen.findIndex((running) => running.some(isRetry));
    expect(firstRetry, 'the retry container was never seen running').toBeGreaterThanOrEqual(0);
    expect(seen.slice(firstRetry).filter((running) => running.some(isFirst))).toEqual([]);
    expect(watch.snapshots.filter((running) => running.length > 1)).toEqual([]);

    const digest = stepOf(s, 'work').outcome!.outputs.model!.digest.replace('sha256:', '');
    // Content-addressed: exactly one blob under that digest, no leftover temp files.
    expect(readdirSync(join(engine.root, 'store', 'blobs', 'sha256', digest.slice(0, 2)))).toEqual([digest]);
    expect(await engine.containers()).toEqual([]);
  } finally {
    await watch.stop();
  }
}, 180_000);
