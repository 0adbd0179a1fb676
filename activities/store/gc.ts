// Retention for the artifact store (`trainyard gc`): mark every blob reachable from the
// records that are kept, sweep the rest. Mark and sweep, like git gc: a blob is deleted only
// when nothing kept names it AND it is older than a grace period (a write in progress has not
// named it yet), AND no open run names it.
import { randomUUID } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import type { Digest } from '../../model/types.js';
import type { RunIndexEntry } from '../lineage/storage.js';
import {
  CACHE_PREFIX,
  DIGEST_PREFIX_INDEX_PREFIX,
  INDEX_PREFIX,
  RUN_INDEX_PREFIX,
  lineageKeyOf,
  runIdOfKey,
  runIdOfLineageKey,
} from './keys.js';
import { LocalStore } from './local.js';
import { parseManifest } from './manifest.js';
import { S3Store, USED_TAG } from './s3.js';
import type { ArtifactStore } from './types.js';

const DIGEST = /sha256:[0-9a-f]{64}/g;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface GcOptions {
  /** A run is expired once it finished longer ago than this (ms). Default 90 days. */
  olderThanMs?: number;
  /** The newest N runs of each pipeline are kept whatever their age. Default 5. */
  keepLast?: number;
  /** A blob modified (or reused, see BlobStoreBase.freshen) more recently than this is never deleted (ms). Default 24 h. */
  graceMs?: number;
  /** Delete; without it nothing changes (a dry run). */
  apply?: boolean;
  /** "Now" for the age rules (tests). */
  now?: number;
  /**
   * What the runs still open reference: their live status (RunStatus JSON), scanned for
   * digests. Called after expired records are deleted, so a run cannot start using a record
   * gc is about to drop between the two. Throwing aborts the sweep (nothing is deleted).
   */
  openReferences?: () => Promise<unknown[]>;
}

export interface GcSummary {
  store: string;
  applied: boolean;
  runs: { total: number; kept: number; expired: number; open: number };
  cacheRecords: { total: number; kept: number; expired: number };
  /** Records deleted (dry run: that would be): expired runs' documents and index entries, expired cache records. */
  records: { deleted: number };
  blobs: {
    total: number;
    totalBytes: number;
    reachable: number;
    reachableBytes: number;
    /** Unreachable but younger than the grace period. */
    young: number;
    youngBytes: number;
    deleted: number;
    deletedBytes: number;
  };
}

interface BlobInfo {
  digest: Digest;
  size: number;
  modifiedMs: number;
}

/** The operations gc needs beyond ArtifactStore: listing and deleting. */
interface Sweepable {
  listBlobs(): AsyncIterable<BlobInfo>;
  /**
   * Deletes the blob unless it was modified or reused at or after `cutoffMs`; true when it
   * was deleted. Checks the age again at the moment of deletion (a writer may have just
   * reused it).
   */
  deleteIfOlder(digest: Digest, cutoffMs: number): Promise<boolean>;
  deleteRecord(key: string): Promise<void>;
}

/**
 * Runs one collection over `store` (a local folder or S3). What is kept:
 * - runs (their lineage document, report and index entries) that finished within
 *   `olderThanMs`, or are among the newest `keepLast` of their pipeline, or have no index
 *   entry yet (being saved);
 * - cache records whose execution finished within `olderThanMs` or that a kept run used;
 * - every other record (latest-execution records, ingest records, agent packages, git-host
 *   state);
 * - every blob a kept record or an open run names (directory manifests: their files too),
 *   and every blob younger than `graceMs`.
 * Throws when `openReferences` throws (before any blob is deleted) or the store is neither
 * local nor S3.
 */
export async function collectGarbage(store: ArtifactStore, opts: GcOptions = {}): Promise<GcSummary> {
  const sweep = sweepableOf(store);
  const now = opts.now ?? Date.now();
  const runCutoff = now - (opts.olderThanMs ?? 90 * DAY_MS);
  const blobCutoff = now - (opts.graceMs ?? DAY_MS);
  const keepLast = opts.keepLast ?? 5;
  const apply = opts.apply ?? false;

  // 1. Which runs are kept. A lineage document without an index entry is being saved now
  // (the entry is written last), or was left by an interrupted gc: its own finish time decides.
  const allKeys = await store.listRecords('');
  const runKeys = allKeys.filter((k) => k.startsWith(RUN_INDEX_PREFIX));
  const entries = (await mapConcurrent(runKeys, (k) => store.getRecord<RunIndexEntry>(k))).filter(
    (e): e is RunIndexEntry => !!e?.runId,
  );
  const indexed = new Set(entries.map((e) => e.runId));
  const byPipeline = new Map<string, RunIndexEntry[]>();
  for (const e of entries) (byPipeline.get(e.pipeline) ?? byPipeline.set(e.pipeline, []).get(e.pipeline)!).push(e);
  const expired = new Set<string>();
  for (const list of byPipeline.values()) {
    list.sort((a, b) => Date.parse(b.finishedAt) - Date.parse(a.finishedAt));
    list.forEach((e, i) => {
      if (i >= keepLast && Date.parse(e.finishedAt) < runCutoff) expired.add(e.runId);
    });
  }
  const unindexed = allKeys.flatMap((k) => runIdOfLineageKey(k) ?? []).filter((r) => !indexed.has(r));
  await mapConcurrent(unindexed, async (r) => {
    const doc = await store.getRecord<{ finishedAt?: string }>(lineageKeyOf(r));
    if (Date.parse(doc?.finishedAt ?? '') < runCutoff) expired.add(r);
  });

  // 2. Mark from every kept record. index/ entries are derived from lineage documents; they are no root.
  const marked = new Set<string>();
  const dirs = new Set<string>();
  const cacheKeys: string[] = [];
  const rootKeys: string[] = [];
  for (const k of allKeys) {
    if (k.startsWith(INDEX_PREFIX)) continue;
    if (k.startsWith(CACHE_PREFIX)) cacheKeys.push(k);
    else if (!expired.has(runIdOfKey(k) ?? '')) rootKeys.push(k);
  }
  await mapConcurrent(rootKeys, async (k) => scan(await store.getRecord(k), marked, dirs));
  // Cache records after the runs: one a kept run used is kept whatever its age.
  const expiredCache: string[] = [];
  await mapConcurrent(cacheKeys, async (k) => {
    const rec = await store.getRecord<{ key?: string; source?: { finishedAt?: string } }>(k);
    const finished = Date.parse(rec?.source?.finishedAt ?? '');
    const usedByKeptRun = rec?.key !== undefined && marked.has(rec.key);
    if (rec && (usedByKeptRun || !(finished < runCutoff))) scan(rec, marked, dirs);
    else expiredCache.push(k);
  });

  // 3. Expired records go first: from here on no new run can reuse what they named.
  const doomed: string[] = [...expiredCache];
  for (const k of allKeys) {
    const run = runIdOfKey(k);
    if (run && expired.has(run)) doomed.push(k);
    else if (k.startsWith(RUN_INDEX_PREFIX) && expired.has(k.slice(RUN_INDEX_PREFIX.length))) doomed.push(k);
    else if (/^index\/(produced|consumed)\//.test(k) && expired.has(k.slice(k.lastIndexOf('/') + 1))) doomed.push(k);
    else if (k.startsWith(DIGEST_PREFIX_INDEX_PREFIX) && !marked.has(k.slice(k.lastIndexOf('/') + 1))) doomed.push(k);
  }
  // A run's index entry before its documents: an entry never points at a missing document
  // (activities/lineage/storage.ts), and an interrupted gc finds the rest by the document.
  doomed.sort((a, b) => Number(!a.startsWith(RUN_INDEX_PREFIX)) - Number(!b.startsWith(RUN_INDEX_PREFIX)));
  if (apply) for (const k of doomed) await sweep.deleteRecord(k);

  // 4. What open runs still use.
  const open = opts.openReferences ? await opts.openReferences() : [];
  for (const status of open) scan(status, marked, dirs);
  await expandManifests(store, marked, dirs);

  // 5. Sweep.
  const blobs: GcSummary['blobs'] = {
    total: 0,
    totalBytes: 0,
    reachable: 0,
    reachableBytes: 0,
    young: 0,
    youngBytes: 0,
    deleted: 0,
    deletedBytes: 0,
  };
  for await (const b of sweep.listBlobs()) {
    blobs.total++;
    blobs.totalBytes += b.size;
    if (marked.has(b.digest)) {
      blobs.reachable++;
      blobs.reachableBytes += b.size;
    } else if (b.modifiedMs >= blobCutoff) {
      blobs.young++;
      blobs.youngBytes += b.size;
    } else if (!apply || (await sweep.deleteIfOlder(b.digest, blobCutoff))) {
      blobs.deleted++;
      blobs.deletedBytes += b.size;
    } else {
      blobs.young++;
      blobs.youngBytes += b.size;
    }
  }
  return {
    store: store.location,
    applied: apply,
    runs: {
      total: indexed.size + unindexed.length,
      kept: indexed.size + unindexed.length - expired.size,
      expired: expired.size,
      open: open.length,
    },
    cacheRecords: {
      total: cacheKeys.length,
      kept: cacheKeys.length - expiredCache.length,
      expired: expiredCache.length,
    },
    records: { deleted: doomed.length },
    blobs,
  };
}

/** Every digest in a JSON value; `{digest, kind: 'dir'}` objects also name a directory manifest. */
function scan(value: unknown, marked: Set<string>, dirs: Set<string>): void {
  if (typeof value === 'string') {
    for (const m of value.matchAll(DIGEST)) marked.add(m[0]);
  } else if (Array.isArray(value)) {
    for (const v of value) scan(v, marked, dirs);
  } else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.kind === 'dir' && typeof o.digest === 'string') dirs.add(o.digest);
    for (const v of Object.values(o)) scan(v, marked, dirs);
  }
}

/** Marks the files of every reachable directory manifest. A manifest that is missing or damaged marks nothing more. */
async function expandManifests(store: ArtifactStore, marked: Set<string>, dirs: Set<string>): Promise<void> {
  await mapConcurrent([...dirs], async (d) => {
    marked.add(d);
    const bytes = await store.getBytes(d).catch(() => undefined);
    if (!bytes) return;
    try {
      for (const e of parseManifest(bytes, d).entries) marked.add(e.digest);
    } catch {
      // Not a manifest after all (a `kind: 'dir'` elsewhere): the digest itself is marked.
    }
  });
}

async function mapConcurrent<T, R>(items: readonly T[], fn: (item: T) => Promise<R>, limit = 8): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

function sweepableOf(store: ArtifactStore): Sweepable {
  if (store instanceof LocalStore) return localSweep(store);
  if (store instanceof S3Store) return s3Sweep(store);
  throw new Error(`gc: store ${store.location} is neither a local folder nor S3`);
}

function localSweep(store: LocalStore): Sweepable {
  const blobsDir = join(store.root, 'blobs', 'sha256');
  return {
    async *listBlobs() {
      const shards = await readdir(blobsDir).catch(() => [] as string[]);
      for (const shard of shards.sort()) {
        for (const name of (await readdir(join(blobsDir, shard)).catch(() => [] as string[])).sort()) {
          if (!/^[0-9a-f]{64}$/.test(name)) continue;
          const st = await lstat(join(blobsDir, shard, name)).catch(() => undefined);
          if (st?.isFile()) yield { digest: `sha256:${name}`, size: st.size, modifiedMs: st.mtimeMs };
        }
      }
    },
    async deleteIfOlder(digest, cutoffMs) {
      // Moved aside first, then its age read: a writer that freshened it before the move is
      // seen here (and it goes back); one that tries after the move finds it gone and writes it again.
      const path = store.blobPath(digest);
      const trash = join(store.root, 'tmp', `${randomUUID()}.gc`);
      await mkdir(join(store.root, 'tmp'), { recursive: true });
      try {
        await rename(path, trash);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw err;
      }
      const st = await lstat(trash);
      if (st.mtimeMs >= cutoffMs) {
        await rename(trash, path);
        return false;
      }
      await rm(trash, { force: true });
      return true;
    },
    async deleteRecord(key) {
      await rm(`${join(store.root, 'records', ...key.split('/'))}.json`, { force: true });
    },
  };
}

function s3Sweep(store: S3Store): Sweepable {
  const base = `${store.prefix ? `${store.prefix}/` : ''}`;
  const usedAt = async (key: string): Promise<number | undefined> => {
    try {
      const head = await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
      const tags = await store.client.send(new GetObjectTaggingCommand({ Bucket: store.bucket, Key: key }));
      const used = Number(tags.TagSet?.find((t) => t.Key === USED_TAG)?.Value ?? 0);
      return Math.max(head.LastModified?.getTime() ?? 0, Number.isFinite(used) ? used : 0);
    } catch (err) {
      if ((err as { name?: string }).name === 'NotFound' || (err as { name?: string }).name === 'NoSuchKey')
        return undefined;
      throw err;
    }
  };
  return {
    async *listBlobs() {
      const prefix = `${base}blobs/sha256/`;
      for await (const page of paginateListObjectsV2(
        { client: store.client },
        { Bucket: store.bucket, Prefix: prefix },
      )) {
        for (const o of page.Contents ?? []) {
          const hex = /([0-9a-f]{64})$/.exec(o.Key ?? '')?.[1];
          if (!hex || o.Key !== store.blobKey(`sha256:${hex}`)) continue;
          // LastModified alone; the reuse tag is read only for the candidates (deleteIfOlder).
          yield { digest: `sha256:${hex}`, size: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 };
        }
      }
    },
    async deleteIfOlder(digest, cutoffMs) {
      const key = store.blobKey(digest);
      const used = await usedAt(key);
      if (used === undefined || used >= cutoffMs) return false;
      await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
      return true;
    },
    async deleteRecord(key) {
      await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: `${base}records/${key}.json` }));
    },
  };
}
