// In-memory ArtifactStore for lineage/report tests. The real backends (folder, S3) are
// tested in test/store; this double keeps their key rules (same validators) and their
// JSON round trip, so what passes here is storable there.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import type { ArtifactRef, Digest } from '../../model/types.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { sha256Bytes } from '../../activities/store/digest.js';
import { assertRecordKey, assertRecordPrefix } from '../../activities/store/keys.js';

export class MemStore implements ArtifactStore {
  readonly location = 'mem://test';
  readonly blobs = new Map<Digest, Buffer>();
  readonly records = new Map<string, string>();
  /** Every prefix listed, so tests can check that an answer did not scan everything. */
  readonly listed: string[] = [];

  uriOf(digest: Digest): string {
    return `mem://test/${digest}`;
  }

  async has(digest: Digest): Promise<boolean> {
    return this.blobs.has(digest);
  }

  async putPath(path: string): Promise<ArtifactRef> {
    if (!(await stat(path)).isFile())
      throw new Error('MemStore stores single files only; directories are tested with the real stores');
    return this.putBytes(await readFile(path));
  }

  async putBytes(data: Uint8Array | string): Promise<ArtifactRef> {
    const buf = Buffer.from(data);
    const digest = sha256Bytes(buf);
    this.blobs.set(digest, buf);
    return { digest, size: buf.length, kind: 'file', uri: this.uriOf(digest) };
  }

  async materialize(ref: Pick<ArtifactRef, 'digest' | 'kind'>, dest: string): Promise<void> {
    if (ref.kind !== 'file') throw new Error('MemStore materializes files only');
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, await this.getBytes(ref.digest), { flag: 'wx' });
  }

  async openRead(digest: Digest): Promise<Readable> {
    return Readable.from([await this.getBytes(digest)]);
  }

  async getBytes(digest: Digest): Promise<Buffer> {
    const b = this.blobs.get(digest);
    if (!b) throw new Error(`no blob ${digest}`);
    return b;
  }

  async putRecord(key: string, value: unknown): Promise<void> {
    assertRecordKey(key);
    this.records.set(key, JSON.stringify(value));
  }

  async getRecord<T>(key: string): Promise<T | undefined> {
    assertRecordKey(key);
    const s = this.records.get(key);
    return s === undefined ? undefined : (JSON.parse(s) as T);
  }

  async listRecords(prefix: string): Promise<string[]> {
    assertRecordPrefix(prefix);
    this.listed.push(prefix);
    return [...this.records.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}
