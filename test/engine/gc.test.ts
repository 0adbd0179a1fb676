// `trainyard gc --apply` while a run goes on: the run's outputs and cache entries survive and a
// rerun is fully cached, while what nothing names goes. Every blob in the store is made to look
// two days old first, so it is reachability (kept records, the open run's status) that keeps
// the run's artifacts, not the grace period.
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lookup } from '../../activities/cache.js';
import { collectGarbage } from '../../activities/store/gc.js';
import type { LocalStore } from '../../activities/store/local.js';
import { openRunReferences } from '../../app/gc.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine } from './harness.js';

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine();
});
afterAll(async () => {
  await engine?.stop();
});

const DAY = 86_400_000;

async function ageEveryBlob(store: LocalStore, days: number): Promise<void> {
  const root = join(store.root, 'blobs', 'sha256');
  const then = new Date(Date.now() - days * DAY);
  for (const shard of await readdir(root))
    for (const name of await readdir(join(root, shard))) await utimes(join(root, shard, name), then, then);
}

it('gc --apply during a run keeps its outputs and cache entries; the rerun is fully cached', async () => {
  const store = engine.store as LocalStore;
  const repo = engine.repo().write({
    '.trainyard/kept.yaml': `
name: kept
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: mkdir /outputs/data && echo rows-${engine.salt} > /outputs/data/rows
    code: []
    outputs: [data]
  train:
    image: ${BUSYBOX_IMAGE}
    run: sh src/train.sh
    code: [src/train.sh]
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]
`,
    'src/train.sh': 'cat /inputs/data/rows > /outputs/model; echo trained >> /outputs/model\n',
  });
  repo.commit();
  const first = await engine.run(repo, '.trainyard/kept.yaml');
  expect(first.state).toBe('succeeded');

  // An expired run of another pipeline, and a blob nothing names.
  const old = await store.putBytes(`output of a run long ago ${engine.salt}`);
  const stray = await store.putBytes(`stray ${engine.salt}`);
  const longAgo = new Date(Date.now() - 200 * DAY).toISOString();
  await store.putRecord('runs/ancient/lineage', {
    runId: 'ancient',
    finishedAt: longAgo,
    steps: [{ outputs: { o: old } }],
  });
  await store.putRecord('index/runs/ancient', { runId: 'ancient', pipeline: 'other', finishedAt: longAgo });
  await ageEveryBlob(store, 2);

  // The second run reuses prepare (its two-day-old output) and runs a slower train.
  repo
    .write({ 'src/train.sh': 'sleep 4; cat /inputs/data/rows > /outputs/model; echo again >> /outputs/model\n' })
    .commit('slower');
  const { workflowId } = await engine.start(repo, '.trainyard/kept.yaml');
  const deadline = Date.now() + 60_000;
  while ((await engine.containers()).length === 0) {
    if (Date.now() > deadline) throw new Error('train never started');
    await new Promise((r) => setTimeout(r, 200));
  }
  const summary = await collectGarbage(store, {
    keepLast: 0,
    apply: true, // This engine's runs only: other test files' runs on the shared Temporal server have
    // their own stores, and their workers may be gone.
    openReferences: () => openRunReferences(engine.client, Date.now(), 120_000, engine.options.controlQueue),
  });
  expect(summary.runs.open).toBeGreaterThanOrEqual(1);
  expect(summary.runs.expired).toBe(1);
  const second = await engine.result(workflowId);
  expect(second.state, JSON.stringify(second.steps.map((s) => [s.name, s.state, s.message]))).toBe('succeeded');
  expect(stepOf(second, 'prepare').state).toBe('cached');

  // What nothing names went; the expired run's documents too.
  expect(await store.has(old.digest)).toBe(false);
  expect(await store.has(stray.digest)).toBe(false);
  expect(await store.getRecord('runs/ancient/lineage')).toBeUndefined();
  // Both runs' outputs (a folder: its manifest and file), logs and cache entries survive.
  for (const s of [first, second]) {
    for (const st of s.steps) {
      for (const out of Object.values(st.outcome!.outputs)) {
        const dest = join(engine.root, `check-${s.runId}-${st.name}-${out.digest.slice(7, 15)}`);
        await store.materialize(out, dest);
      }
      expect(await store.has(st.outcome!.logDigest!), `${s.runId} ${st.name} log`).toBe(true);
      expect(await lookup(store, st.cache!.key), `${s.runId} ${st.name} cache entry`).toBeDefined();
    }
  }
  const third = await engine.run(repo, '.trainyard/kept.yaml');
  expect(third.steps.map((s) => s.state)).toEqual(['cached', 'cached']);
  expect((await store.getBytes(stepOf(third, 'train').outcome!.outputs.model!.digest)).toString()).toBe(
    `rows-${engine.salt}\nagain\n`,
  );
}, 240_000);
