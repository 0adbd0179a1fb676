// The embedded store: a folder. Blobs at blobs/sha256/<2 hex>/<64 hex>, records at
// records/<key>.json, writes staged in tmp/ (same file system, so rename is atomic).
import { randomUUID } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import type { Digest } from '../../model/types.js';
import { artifactBytesStored, artifactsStored } from '../metrics.js';
import { BlobStoreBase } from './base.js';
import { digestHex, HashingTap, readNoFollow } from './digest.js';
import { assertRecordKey, assertRecordPrefix, parseRecord } from './keys.js';

/** A tmp file this old belongs to a writer that crashed (live writers touch theirs constantly). */
const STALE_TMP_MS = 60 * 60 * 1000;

function isErrno(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as NodeJS.ErrnoException)?.code ?? '');
}

export class LocalStore extends BlobStoreBase {
  readonly root: string;
  readonly location: string;
  private ready: Promise<void> | undefined;

  constructor(root: string) {
    super();
    if (!isAbsolute(root)) throw new Error(`local store path must be absolute, got ${JSON.stringify(root)}`);
    this.root = resolve(root);
    this.location = pathToFileURL(this.root).href;
  }

  private get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  /** Creates the layout and removes tmp files left by crashed writers; runs once per instance. */
  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.root, 'blobs', 'sha256'), { recursive: true });
      await mkdir(join(this.root, 'records'), { recursive: true });
      await mkdir(this.tmpDir, { recursive: true });
      const cutoff = Date.now() - STALE_TMP_MS;
      for (const name of await readdir(this.tmpDir)) {
        const p = join(this.tmpDir, name);
        const st = await lstat(p).catch(() => undefined);
        if (st && st.mtimeMs < cutoff) await rm(p, { recursive: true, force: true });
      }
    })();
    return this.ready;
  }

  blobPath(digest: Digest): string {
    const hex = digestHex(digest);
    return join(this.root, 'blobs', 'sha256', hex.slice(0, 2), hex);
  }

  uriOf(digest: Digest): string {
    return pathToFileURL(this.blobPath(digest)).href;
  }

  async has(digest: Digest): Promise<boolean> {
    const p = this.blobPath(digest);
    try {
      return (await stat(p)).isFile();
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
      throw err;
    }
  }

  /** Sets the blob's mtime to now (the age `trainyard gc` goes by); false when it is not stored. */
  protected override async freshen(digest: Digest): Promise<boolean> {
    const p = this.blobPath(digest);
    try {
      const now = new Date();
      await utimes(p, now, now);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false;
      // Another user's store file: present, though its age cannot be refreshed.
      if (isErrno(err, 'EPERM', 'EACCES')) return this.has(digest);
      throw err;
    }
  }

  async openRead(digest: Digest): Promise<Readable> {
    const p = this.blobPath(digest);
    let fh: FileHandle;
    try {
      fh = await open(p, 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new Error(`artifact ${digest} is not in store ${this.location}`);
      throw err;
    }
    return fh.createReadStream();
  }

  protected async storeFile(path: string): Promise<{ digest: Digest; size: number }> {
    return this.writeBlob(await readNoFollow(path));
  }

  protected async storeBytes(data: Buffer, digest: Digest): Promise<void> {
    const stored = await this.writeBlob(data);
    if (stored.digest !== digest) throw new Error(`internal: stored ${stored.digest}, expected ${digest}`);
  }

  /**
   * Store a stream: hashed while it is copied to tmp/, fsynced, then renamed onto its digest
   * path. If the source fails or the process dies midway, only a tmp file is left behind;
   * nothing ever appears under a digest that is not the complete content.
   */
  async writeBlob(source: Readable | Buffer): Promise<{ digest: Digest; size: number }> {
    const tmp = join(this.tmpDir, `${randomUUID()}.blob`);
    try {
      await this.init();
      const tap = new HashingTap();
      await pipeline(
        Buffer.isBuffer(source) ? [source] : source,
        tap,
        createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
      );
      // (a FileHandle's own write stream with autoClose:false makes close() hang on Node 20,
      // hence the separate handle: fsync on any descriptor flushes the file's data)
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
        await fh.chmod(0o444); // blobs are immutable
      } finally {
        await fh.close();
      }
      const result = tap.result();
      const final = this.blobPath(result.digest);
      if (await this.freshen(result.digest)) {
        await rm(tmp, { force: true });
        return result;
      }
      await mkdir(dirname(final), { recursive: true });
      await rename(tmp, final);
      await syncDir(dirname(final));
      artifactsStored.inc();
      artifactBytesStored.inc(result.size);
      return result;
    } catch (err) {
      if (!Buffer.isBuffer(source)) source.destroy();
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private recordPath(key: string): string {
    assertRecordKey(key);
    return `${join(this.root, 'records', ...key.split('/'))}.json`;
  }

  async putRecord(key: string, value: unknown): Promise<void> {
    const target = this.recordPath(key);
    const body = JSON.stringify(value);
    if (body === undefined) throw new Error(`record ${key}: value is not JSON-serialisable`);
    await this.init();
    const tmp = join(this.tmpDir, `${randomUUID()}.record`);
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(body, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await mkdir(dirname(target), { recursive: true });
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async getRecord<T>(key: string): Promise<T | undefined> {
    const p = this.recordPath(key);
    let text: string;
    try {
      // Read synchronously: a record is a small JSON file, and a cached re-run reads one per
      // step. fs/promises' readFile (a FileHandle, then open, fstat, read and close, each a
      // round trip through the thread pool) took about 5 times the CPU of readFileSync for
      // 1,000 records of ~1 KB, most of a 1,000-step cached re-run's lookups.
      text = readFileSync(p, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    }
    return parseRecord<T>(text, key, p);
  }

  async listRecords(prefix: string): Promise<string[]> {
    assertRecordPrefix(prefix);
    const base = prefix.slice(0, prefix.lastIndexOf('/') + 1); // whole segments only
    const dir = join(this.root, 'records', ...base.split('/').filter(Boolean));
    const keys: string[] = [];
    const visit = async (abs: string, rel: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(abs, { withFileTypes: true });
      } catch (err) {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) return;
        throw err;
      }
      for (const e of entries) {
        if (e.isDirectory()) await visit(join(abs, e.name), `${rel}${e.name}/`);
        else if (e.isFile() && e.name.endsWith('.json')) {
          const key = `${rel}${e.name.slice(0, -'.json'.length)}`;
          if (key.startsWith(prefix)) keys.push(key);
        }
      }
    };
    await visit(dir, base);
    return keys.sort();
  }
}

/** fsync a directory so a rename into it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
