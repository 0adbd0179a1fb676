// Retention (`trainyard gc`) on both backends: what kept runs, kept cache records and other
// records name survives with everything a directory names; the rest goes, and only with
// --apply; young blobs and blobs reused by a write stay.
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectGarbage } from '../../activities/store/gc.js';
import { LocalStore } from '../../activities/store/local.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { formatGcSummary, parseDuration } from '../../app/gc.js';
import { localBackend, s3Backend, scratchDir, type Backend } from './backends.js';

const DAY = 86_400_000;
const ago = (days: number): string => new Date(Date.now() - days * DAY).toISOString();

/** A store with runs of two pipelines, cache records and blobs, as Trainyard writes them. */
async function populate(store: ArtifactStore) {
  const put = async (text: string) => (await store.putBytes(text)).digest;
  const src = await scratchDir('gc-src');
  await mkdir(join(src, 'model'), { recursive: true });
  await writeFile(join(src, 'model', 'weights'), 'kept weights');
  await writeFile(join(src, 'model', 'config'), 'kept config');
  const keptDir = await store.putPath(join(src, 'model'));
  await writeFile(join(src, 'model', 'weights'), 'old weights');
  await writeFile(join(src, 'model', 'config'), 'old config');
  const oldDir = await store.putPath(join(src, 'model'));
  const d = {
    keptDir,
    oldDir,
    keptLog: await put('log of the recent run'),
    oldLog: await put('log of the old run'),
    oldOutput: await put('output of the old run'),
    lastOfQ: await put('output of the only run of q'),
    hitByRecent: await put('output of an old execution a recent run reused'),
    expiredCacheOutput: await put('output of an old cache record nobody used'),
    listing: await put('code listing named by cache-latest'),
    stray: await put('a blob nothing names'),
  };
  const key = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
  const run = async (runId: string, pipeline: string, finishedAt: string, steps: unknown[]) => {
    await store.putRecord(`runs/${runId}/lineage`, { runId, finishedAt, steps });
    await store.putRecord(`runs/${runId}/report`, { markdown: `report of ${runId}` });
    await store.putRecord(`index/runs/${runId}`, { runId, pipeline, finishedAt });
  };
  await run('recent', 'p', ago(1), [
    { outputs: { model: { digest: d.keptDir.digest, kind: 'dir' } }, logDigest: d.keptLog, cache: { key: key(1) } },
  ]);
  await run('old', 'p', ago(200), [
    {
      outputs: { out: { digest: d.oldOutput, kind: 'file' }, model: { digest: d.oldDir.digest, kind: 'dir' } },
      logDigest: d.oldLog,
    },
  ]);
  await run('older', 'p', ago(300), []);
  await run('only-q', 'q', ago(400), [{ outputs: { out: { digest: d.lastOfQ, kind: 'file' } } }]);
  await store.putRecord(`index/produced/${d.oldOutput}/old`, { step: 's' });
  await store.putRecord(`index/produced/${d.keptDir.digest}/recent`, { step: 's' });
  await store.putRecord(`index/digest-prefix/${d.oldOutput.slice(7, 19)}/${d.oldOutput}`, { digest: d.oldOutput });
  // Old cache records: one the recent run reused (its key is in that run's lineage), one nobody did.
  await store.putRecord(`cache/${key(1).slice(7)}`, {
    key: key(1),
    outputs: { x: { digest: d.hitByRecent, kind: 'file' } },
    source: { finishedAt: ago(150) },
  });
  await store.putRecord(`cache/${key(2).slice(7)}`, {
    key: key(2),
    outputs: { x: { digest: d.expiredCacheOutput, kind: 'file' } },
    source: { finishedAt: ago(150) },
  });
  await store.putRecord('cache-latest/p/s', { key: key(1), parts: { code: d.listing } });
  return d;
}

const kinds = [localBackend, s3Backend];
let backend: Backend | undefined;
afterEach(async () => {
  await backend?.cleanup();
  backend = undefined;
});

describe.each(kinds)('gc on the $name store', (kind) => {
  it('a dry run deletes nothing and says what an --apply run then deletes', async () => {
    backend = await kind.make();
    const { store } = backend;
    const d = await populate(store);
    // Every blob looks two days old: past the grace period, only what is named survives.
    const later = Date.now() + 2 * DAY;
    const dry = await collectGarbage(store, { keepLast: 1, now: later });
    expect(dry).toMatchObject({
      applied: false,
      runs: { total: 4, kept: 2, expired: 2 },
      cacheRecords: { total: 2, kept: 1, expired: 1 },
    });
    for (const digest of [d.oldOutput, d.stray]) expect(await store.has(digest)).toBe(true);

    const done = await collectGarbage(store, { keepLast: 1, now: later, apply: true });
    expect(done.blobs).toEqual({ ...dry.blobs });
    expect(done.records.deleted).toBe(dry.records.deleted);
    const gone = [d.oldOutput, d.oldLog, d.oldDir.digest, d.expiredCacheOutput, d.stray];
    const kept = [d.keptDir.digest, d.keptLog, d.lastOfQ, d.hitByRecent, d.listing];
    expect(Object.fromEntries(await Promise.all(gone.map(async (x) => [x, await store.has(x)])))).toEqual(
      Object.fromEntries(gone.map((x) => [x, false])),
    );
    expect(Object.fromEntries(await Promise.all(kept.map(async (x) => [x, await store.has(x)])))).toEqual(
      Object.fromEntries(kept.map((x) => [x, true])),
    );
    // The kept directory is whole: its manifest and both files.
    const out = join(await scratchDir('gc-out'), 'model');
    await store.materialize(d.keptDir, out);
    // The old directory's files went with it (the manifest named them, nothing else did).
    expect(done.blobs.deleted).toBe(gone.length + 2);
    expect(dry.blobs.deletedBytes).toBe(done.blobs.deletedBytes);
    // Expired runs' documents and index entries, the expired cache record, the orphaned prefix entry.
    expect(await store.listRecords('runs/')).toEqual([
      'runs/only-q/lineage',
      'runs/only-q/report',
      'runs/recent/lineage',
      'runs/recent/report',
    ]);
    expect(await store.listRecords('index/')).toEqual([
      'index/produced/' + d.keptDir.digest + '/recent',
      'index/runs/only-q',
      'index/runs/recent',
    ]);
    expect(await store.listRecords('cache/')).toEqual([`cache/${'1'.repeat(64)}`]);
    // A second pass finds nothing more.
    expect((await collectGarbage(store, { keepLast: 1, now: later, apply: true })).blobs.deleted).toBe(0);
  });

  it('what an open run uses survives though nothing stored names it', async () => {
    backend = await kind.make();
    const { store } = backend;
    const used = (await store.putBytes('an output only the open run knows of (cache: false)')).digest;
    const r = await collectGarbage(store, {
      now: Date.now() + 2 * DAY,
      apply: true,
      openReferences: async () => [{ steps: [{ outcome: { outputs: { o: { digest: used, kind: 'file' } } } }] }],
    });
    expect(r.runs.open).toBe(1);
    expect(await store.has(used)).toBe(true);
    await expect(
      collectGarbage(store, {
        apply: true,
        now: Date.now() + 2 * DAY,
        openReferences: async () => {
          throw new Error('no worker');
        },
      }),
    ).rejects.toThrow('no worker');
    expect(await store.has(used)).toBe(true);
  });
});

describe('gc on a local store: the grace period', () => {
  it('keeps unnamed blobs younger than the grace period, and a blob a write just reused', async () => {
    backend = await localBackend.make();
    const store = backend.store as LocalStore;
    const young = (await store.putBytes('written a minute ago, not yet named')).digest;
    const reused = (await store.putBytes('old, then written again')).digest;
    const old = (await store.putBytes('old and unnamed')).digest;
    const twoDaysAgo = new Date(Date.now() - 2 * DAY);
    for (const x of [reused, old]) await utimes(store.blobPath(x), twoDaysAgo, twoDaysAgo);
    // A step writing the same bytes again finds the blob stored: it now counts as new.
    await store.putBytes('old, then written again');
    const r = await collectGarbage(store, { apply: true });
    expect(r.blobs).toMatchObject({ total: 3, young: 2, deleted: 1 });
    expect([await store.has(young), await store.has(reused), await store.has(old)]).toEqual([true, true, false]);
  });
});

it('the CLI reads durations and prints a summary', () => {
  expect(parseDuration('--older-than', '90d')).toBe(90 * DAY);
  expect(parseDuration('--grace', '36h')).toBe(36 * 3_600_000);
  expect(() => parseDuration('--older-than', '90 days')).toThrow('--older-than must be a whole number and a unit');
  const text = formatGcSummary(
    {
      store: 'file:///s',
      applied: false,
      runs: { total: 3, kept: 2, expired: 1, open: 1 },
      cacheRecords: { total: 4, kept: 3, expired: 1 },
      records: { deleted: 5 },
      blobs: {
        total: 10,
        totalBytes: 4096,
        reachable: 6,
        reachableBytes: 2048,
        young: 1,
        youngBytes: 10,
        deleted: 3,
        deletedBytes: 2038,
      },
    },
    '24h',
  );
  expect(text).toContain('trainyard gc (dry run): file:///s');
  expect(text).toContain('to delete:     3 objects, 2.0 KiB');
  expect(text).toContain('run again with --apply');
});
