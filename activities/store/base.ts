// What both backends share: files and directories in, directories (manifests) out,
// digest checks on every read. A backend supplies blob and record primitives.
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactRef, Digest } from '../../model/types.js';
import { assertDigest, HashingTap, sha256Bytes } from './digest.js';
import { manifestBytes, MODE_PLAIN, parseManifest, refuseEntry, walkDir } from './manifest.js';
import type { ArtifactStore, ManifestEntry } from './types.js';

/** Files stored or materialised at once within one directory (S3 round trips dominate). */
const DIR_CONCURRENCY = 4;

export abstract class BlobStoreBase implements ArtifactStore {
  abstract readonly location: string;
  abstract uriOf(digest: Digest): string;
  abstract has(digest: Digest): Promise<boolean>;
  abstract openRead(digest: Digest): Promise<Readable>;
  abstract putRecord(key: string, value: unknown): Promise<void>;
  abstract getRecord<T>(key: string): Promise<T | undefined>;
  abstract listRecords(prefix: string): Promise<string[]>;
  /** Store one regular file (opened without following symlinks); a stored digest is not written again. */
  protected abstract storeFile(path: string): Promise<{ digest: Digest; size: number }>;
  /** Store bytes whose digest is already known and not yet stored. */
  protected abstract storeBytes(data: Buffer, digest: Digest): Promise<void>;

  /**
   * Whether the blob is stored, marking it as just used when it is: a write that finds its
   * digest already stored relies on that blob from now on, so `trainyard gc` must see it as
   * new (its grace period) even when nothing referenced it before. Git freshens an object it
   * would have written the same way before `git gc --prune` may remove it.
   */
  protected freshen(digest: Digest): Promise<boolean> {
    return this.has(digest);
  }

  async putPath(path: string): Promise<ArtifactRef> {
    const abs = resolve(path);
    const st = await lstat(abs);
    if (st.isFile()) {
      const { digest, size } = await this.storeFile(abs);
      return { digest, size, kind: 'file', uri: this.uriOf(digest) };
    }
    if (!st.isDirectory()) throw refuseEntry(abs, st);
    const { files, emptyDirs } = await walkDir(abs);
    const entries = await mapLimit(files, DIR_CONCURRENCY, async (f): Promise<ManifestEntry> => {
      const { digest, size } = await this.storeFile(f.abs);
      return { path: f.path, digest, size, mode: f.mode };
    });
    const manifest = await this.putBytes(manifestBytes(entries, emptyDirs));
    // size of a directory artifact = total bytes of its files (what a reader cares about)
    const total = entries.reduce((n, e) => n + e.size, 0);
    return { digest: manifest.digest, size: total, kind: 'dir', uri: manifest.uri };
  }

  async putBytes(data: Uint8Array | string): Promise<ArtifactRef> {
    const buf =
      typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const digest = sha256Bytes(buf);
    if (!(await this.freshen(digest))) await this.storeBytes(buf, digest);
    return { digest, size: buf.length, kind: 'file', uri: this.uriOf(digest) };
  }

  async getBytes(digest: Digest): Promise<Buffer> {
    assertDigest(digest);
    const tap = new HashingTap({ digest, what: `artifact ${digest} in ${this.location}` });
    const chunks: Buffer[] = [];
    await pipeline(await this.openRead(digest), tap, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk);
    });
    return Buffer.concat(chunks);
  }

  async materialize(ref: Pick<ArtifactRef, 'digest' | 'kind'>, dest: string): Promise<void> {
    assertDigest(ref.digest);
    const root = resolve(dest);
    if (ref.kind === 'file') {
      await mkdir(dirname(root), { recursive: true });
      await this.writeBlobTo(ref.digest, root, MODE_PLAIN);
      return;
    }
    if (ref.kind !== 'dir') throw new Error(`cannot materialize artifact of kind ${JSON.stringify(ref.kind)}`);
    // The whole manifest is checked before the destination is even created.
    const manifest = parseManifest(await this.getBytes(ref.digest), ref.digest);
    await mkdir(dirname(root), { recursive: true });
    await mkdir(root); // fails when dest exists: never write into someone else's folder
    try {
      for (const d of manifest.dirs ?? []) await mkdir(join(root, ...d.split('/')), { recursive: true });
      await mapLimit(manifest.entries, DIR_CONCURRENCY, async (e) => {
        const target = join(root, ...e.path.split('/'));
        await mkdir(dirname(target), { recursive: true });
        await this.writeBlobTo(e.digest, target, e.mode, e.size);
      });
    } catch (err) {
      await rm(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** Copy a blob to a new file, checking its digest (a damaged store is an error, not a result). */
  private async writeBlobTo(digest: Digest, target: string, mode: number, size?: number): Promise<void> {
    const tap = new HashingTap({ digest, size, what: `artifact ${digest} in ${this.location}` });
    const source = await this.openRead(digest);
    try {
      await pipeline(source, tap, createWriteStream(target, { flags: 'wx', mode }));
      await chmod(target, mode); // the umask must not decide the executable bit
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await rm(target, { force: true });
      throw err;
    }
  }
}

/** Map with at most `limit` calls in flight; results in input order; first failure rejects. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const workers = Array.from({ length: Math.min(limit, items.length) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}
