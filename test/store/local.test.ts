// What only the local folder backend promises: atomic writes, crash leftovers cleaned up,
// and a damaged blob refused on read.
import { spawn } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStore } from '../../activities/store/local.js';
import { scratchDir } from './backends.js';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await visit(join(d, e.name));
      else out.push(join(d, e.name));
    }
  };
  await visit(dir);
  return out;
}

describe('local store', () => {
  let work: string;
  beforeAll(async () => {
    work = await scratchDir('localonly');
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('lays blobs out as blobs/sha256/<2 hex>/<64 hex> and records as records/<key>.json', async () => {
    const root = join(work, 'layout');
    const store = new LocalStore(root);
    const ref = await store.putBytes('layout check');
    const hex = ref.digest.slice('sha256:'.length);
    expect(await readFile(join(root, 'blobs', 'sha256', hex.slice(0, 2), hex), 'utf8')).toBe('layout check');
    expect(ref.uri).toBe(`file://${join(root, 'blobs', 'sha256', hex.slice(0, 2), hex)}`);
    await store.putRecord('cache/abc', { x: 1 });
    expect(JSON.parse(await readFile(join(root, 'records', 'cache', 'abc.json'), 'utf8'))).toEqual({ x: 1 });
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('a stream that fails midway leaves nothing under any digest, and a later put succeeds', async () => {
    const root = join(work, 'abort');
    const store = new LocalStore(root);
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent === 3) {
          this.destroy(new Error('source went away'));
          return;
        }
        sent += 1;
        this.push(chunk);
      },
    });
    await expect(store.writeBlob(failing)).rejects.toThrow('source went away');
    expect(await filesUnder(join(root, 'blobs'))).toEqual([]);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);

    const src = join(work, 'three-mib.bin');
    await writeFile(src, Buffer.concat([chunk, chunk, chunk]));
    const ref = await store.putPath(src);
    expect(await filesUnder(join(root, 'blobs'))).toEqual([store.blobPath(ref.digest)]);
    expect((await store.getBytes(ref.digest)).length).toBe(3 * 1024 * 1024);
  });

  it('a writer killed mid-write leaves only a tmp file, which a later open removes once stale', async () => {
    const root = join(work, 'crash');
    const script = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, root], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('writing')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`crash writer exited early (${code})`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    expect(await filesUnder(join(root, 'blobs'))).toEqual([]);
    const leftovers = await readdir(join(root, 'tmp'));
    expect(leftovers.length).toBe(1);

    // A fresh leftover may belong to a live writer in another process: it is kept.
    await new LocalStore(root).putBytes('after crash 1');
    expect(await readdir(join(root, 'tmp'))).toEqual(leftovers);

    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(join(root, 'tmp', leftovers[0]!), twoHoursAgo, twoHoursAgo);
    const reopened = new LocalStore(root);
    const ref = await reopened.putBytes('after crash 2');
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect((await reopened.getBytes(ref.digest)).toString()).toBe('after crash 2');
  });

  it('refuses to hand out a blob whose bytes no longer match its digest', async () => {
    const root = join(work, 'damaged');
    const store = new LocalStore(root);
    const ref = await store.putBytes('original content');
    const blob = store.blobPath(ref.digest);
    await chmod(blob, 0o644);
    await writeFile(blob, 'tampered content');
    await expect(store.getBytes(ref.digest)).rejects.toThrow(/does not match its digest/);
    const dest = join(work, 'damaged-out');
    await expect(store.materialize(ref, dest)).rejects.toThrow(/does not match its digest/);
    await expect(readdir(dest)).rejects.toThrow(/ENOENT|ENOTDIR/);
    await expect(readFile(dest)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a relative root', () => {
    expect(() => new LocalStore('relative/store')).toThrow(/absolute/);
  });

  it('materialize of a directory removes its partial output when a blob is missing', async () => {
    const root = join(work, 'partial');
    const store = new LocalStore(root);
    const dir = join(work, 'partial-src');
    await mkdir(dir);
    await writeFile(join(dir, 'a.txt'), 'a');
    await writeFile(join(dir, 'b.txt'), 'b');
    const ref = await store.putPath(dir);
    const bRef = await store.putBytes('b');
    await rm(store.blobPath(bRef.digest), { force: true });
    const dest = join(work, 'partial-dest');
    await expect(store.materialize(ref, dest)).rejects.toThrow(/not in store/);
    await expect(readdir(dest)).rejects.toThrow(/ENOENT/);
  });
});
