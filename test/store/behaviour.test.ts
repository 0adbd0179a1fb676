// One behavioural suite, run against the local folder backend and the S3 backend (moto).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Bytes, sha256File } from '../../activities/store/digest.js';
import type { DirManifest } from '../../activities/store/types.js';
import { localBackend, s3Backend, scratchDir, type Backend } from './backends.js';

const MiB = 1024 * 1024;

/** `f x path` (executable) or `f - path` per file and `d path` per folder, sorted: what a consumer of a tree sees. */
async function treeOf(root: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) {
        out.push(`d ${p}`);
        await visit(p);
      } else out.push(`f ${st.mode & 0o111 ? 'x' : '-'} ${p}`);
    }
  };
  await visit('');
  return out.sort((a, b) => (a.slice(a.lastIndexOf(' ')) < b.slice(b.lastIndexOf(' ')) ? -1 : 1));
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

describe.each([localBackend, s3Backend])('$name store', (kind) => {
  let backend: Backend;
  let work: string;

  beforeAll(async () => {
    backend = await kind.make();
    work = await scratchDir(`${kind.name}-work`);
  });
  afterAll(async () => {
    await backend?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('stores a file under its SHA-256 and gives the same bytes back', async () => {
    const { store } = backend;
    const src = join(work, 'hello.txt');
    const text = `hello from ${kind.name}\n`;
    await writeFile(src, text);
    const want = `sha256:${createHash('sha256').update(text).digest('hex')}`;

    expect(await store.has(want)).toBe(false);
    const ref = await store.putPath(src);
    expect(ref).toEqual({ digest: want, size: Buffer.byteLength(text), kind: 'file', uri: store.uriOf(want) });
    expect(await store.has(want)).toBe(true);
    expect((await store.getBytes(want)).toString()).toBe(text);

    const dest = join(work, 'out', 'hello-copy.txt');
    await store.materialize(ref, dest);
    expect(await readFile(dest, 'utf8')).toBe(text);
    await expect(store.materialize(ref, dest)).rejects.toThrow(/EEXIST|exist/);
  });

  it('putBytes and getBytes round-trip, and equal bytes share one digest', async () => {
    const { store } = backend;
    const a = await store.putBytes('{"report":1}');
    const b = await store.putBytes(new TextEncoder().encode('{"report":1}'));
    expect(a.digest).toBe(b.digest);
    expect(a.digest).toBe(sha256Bytes('{"report":1}'));
    expect((await store.getBytes(a.digest)).toString()).toBe('{"report":1}');
  });

  it('has() and reads refuse digest strings that are not sha256:<64 hex>', async () => {
    const { store } = backend;
    for (const bad of ['sha256:../../etc/passwd', `sha256:${'A'.repeat(64)}`, 'md5:abc', `sha256:${'0'.repeat(63)}/`]) {
      await expect(store.has(bad)).rejects.toThrow(/invalid digest/);
      await expect(store.openRead(bad)).rejects.toThrow(/invalid digest/);
      await expect(store.materialize({ digest: bad, kind: 'file' }, join(work, 'never'))).rejects.toThrow(
        /invalid digest/,
      );
    }
    expect(await exists(join(work, 'never'))).toBe(false);
    await expect(store.getBytes(`sha256:${'0'.repeat(64)}`)).rejects.toThrow(/not in store/);
  });

  it('streams a 64 MiB file in and out without holding it in memory', async () => {
    const { store } = backend;
    const src = join(work, 'big.bin');
    execFileSync('dd', ['if=/dev/urandom', `of=${src}`, 'bs=1M', 'count=64', 'status=none']);
    const expected = await sha256File(src);
    expect(expected.size).toBe(64 * MiB);

    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    let ref;
    const dest = join(work, 'big-copy.bin');
    try {
      ref = await store.putPath(src);
      await store.materialize(ref, dest);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(ref.digest).toBe(expected.digest);
    expect(ref.size).toBe(64 * MiB);
    expect(await sha256File(dest)).toEqual(expected);
    // The upload buffers at most a couple of parts; a whole-file buffer would add 64 MiB.
    expect(peak - before).toBeLessThan(40 * MiB);
    await rm(dest);
    await rm(src);
  });

  it('never stores a digest twice', async () => {
    const { store } = backend;
    const src = join(work, 'dedupe.bin');
    await writeFile(src, 'same bytes every time');
    const uploadsAtStart = backend.uploadCalls();
    const first = await store.putPath(src);
    const printed = await backend.fingerprint(first.digest);
    const uploadsBefore = backend.uploadCalls();
    if (uploadsAtStart !== undefined) expect(uploadsBefore).toBeGreaterThan(uploadsAtStart); // the counter sees uploads

    const again = join(work, 'dedupe-copy.bin');
    await writeFile(again, 'same bytes every time');
    const second = await store.putPath(again);
    await store.putBytes('same bytes every time');

    expect(second).toEqual(first);
    expect(await backend.fingerprint(first.digest)).toBe(printed);
    if (uploadsBefore !== undefined) expect(backend.uploadCalls()).toBe(uploadsBefore);
  });

  it('round-trips a directory through a sorted manifest, keeping only the executable bit', async () => {
    const { store } = backend;
    const dir = join(work, 'model');
    await mkdir(join(dir, 'weights', 'layer 1'), { recursive: true });
    await writeFile(join(dir, 'weights', 'layer 1', 'w.bin'), Buffer.from([0, 1, 2, 3, 255]));
    await writeFile(join(dir, 'config.json'), '{"lr":0.001}');
    await writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(dir, 'run.sh'), 0o750);
    await writeFile(join(dir, 'secret-ish'), 'x');
    await chmod(join(dir, 'secret-ish'), 0o600);
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'copy-of-config.json'), '{"lr":0.001}');

    const ref = await store.putPath(dir);
    expect(ref.kind).toBe('dir');
    expect(ref.size).toBe(5 + 12 + 18 + 1 + 0 + 12);
    const manifest = JSON.parse((await store.getBytes(ref.digest)).toString()) as DirManifest;
    expect(manifest.kind).toBe('trainyard.dir/v1');
    const paths = manifest.entries.map((e) => e.path);
    expect(paths).toEqual([
      'config.json',
      'copy-of-config.json',
      'empty',
      'run.sh',
      'secret-ish',
      'weights/layer 1/w.bin',
    ]);
    const byPath = Object.fromEntries(manifest.entries.map((e) => [e.path, e]));
    expect(byPath['config.json']!.digest).toBe(byPath['copy-of-config.json']!.digest);
    expect(byPath['run.sh']!.mode).toBe(0o755);
    expect(byPath['secret-ish']!.mode).toBe(0o644);
    for (const e of manifest.entries) expect(await store.has(e.digest)).toBe(true);

    // storing the same tree again gives the same manifest digest
    expect((await store.putPath(dir)).digest).toBe(ref.digest);

    const dest = join(work, 'restored', 'model');
    await store.materialize(ref, dest);
    expect(await readFile(join(dest, 'weights', 'layer 1', 'w.bin'))).toEqual(Buffer.from([0, 1, 2, 3, 255]));
    expect(await readFile(join(dest, 'run.sh'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    expect(await readFile(join(dest, 'empty'), 'utf8')).toBe('');
    expect((await stat(join(dest, 'run.sh'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(dest, 'secret-ish'))).mode & 0o777).toBe(0o644);
    await expect(store.materialize(ref, dest)).rejects.toThrow(/EEXIST/);
  });

  it('round-trips a folder exactly: every file, every folder (empty ones too), the executable bits', async () => {
    const { store } = backend;
    const dir = join(work, 'tree');
    await mkdir(join(dir, 'empty'), { recursive: true });
    await mkdir(join(dir, 'nested', 'empty', 'deeper'), { recursive: true });
    await mkdir(join(dir, 'bin'), { recursive: true });
    await writeFile(join(dir, 'bin', 'tool'), '#!/bin/sh\n');
    await chmod(join(dir, 'bin', 'tool'), 0o700);
    await writeFile(join(dir, 'nested', 'data.txt'), 'd');
    await writeFile(join(dir, '.hidden'), 'h');
    const ref = await store.putPath(dir);
    const dest = join(work, 'tree-restored');
    await store.materialize(ref, dest);
    expect(await treeOf(dest)).toEqual(await treeOf(dir));
    expect(await treeOf(dest)).toEqual([
      'f - .hidden',
      'd bin',
      'f x bin/tool',
      'd empty',
      'd nested',
      'f - nested/data.txt',
      'd nested/empty',
      'd nested/empty/deeper',
    ]);
    expect((await stat(join(dest, 'bin', 'tool'))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(dest, 'bin', 'tool'), 'utf8')).toBe('#!/bin/sh\n');
    // An empty folder is part of the content: removing it gives another digest.
    await rm(join(dir, 'empty'), { recursive: true });
    expect((await store.putPath(dir)).digest).not.toBe(ref.digest);
    // A folder without empty folders keeps the manifest form (and digest) it always had.
    const plain = join(work, 'plain');
    await mkdir(plain);
    await writeFile(join(plain, 'a'), 'a');
    const manifest = JSON.parse((await store.getBytes((await store.putPath(plain)).digest)).toString()) as Record<
      string,
      unknown
    >;
    expect(Object.keys(manifest).sort()).toEqual(['entries', 'kind']);
  });

  it('refuses a hostile manifest before writing anything', async () => {
    const { store } = backend;
    const blob = await store.putBytes('payload');
    const hostile = [
      [
        { path: 'ok.txt', digest: blob.digest, size: 7, mode: 420 },
        { path: '../escaped.txt', digest: blob.digest, size: 7, mode: 420 },
      ],
      [{ path: '/etc/x', digest: blob.digest, size: 7, mode: 420 }],
      [{ path: 'a/../../x', digest: blob.digest, size: 7, mode: 420 }],
      [{ path: 'ok.txt', digest: '../../../../etc/passwd', size: 7, mode: 420 }],
      [
        { path: 'a', digest: blob.digest, size: 7, mode: 420 },
        { path: 'a/b', digest: blob.digest, size: 7, mode: 420 },
      ],
    ].map((entries) => ({ entries }));
    const file = { path: 'a/f', digest: blob.digest, size: 7, mode: 420 };
    hostile.push(
      { entries: [file], dirs: ['../up'] } as never,
      { entries: [file], dirs: ['a'] } as never,
      { entries: [file], dirs: ['a/f/x'] } as never,
      { entries: [file], dirs: ['e', 'e'] } as never,
      { entries: [file], dirs: 'e' } as never,
    );
    const parent = join(work, 'hostile');
    await mkdir(parent);
    for (const body of hostile) {
      const manifest = await store.putBytes(JSON.stringify({ kind: 'trainyard.dir/v1', ...body }));
      const dest = join(parent, 'dest');
      await expect(store.materialize({ digest: manifest.digest, kind: 'dir' }, dest)).rejects.toThrow(
        /unsafe path|invalid digest|both a file|empty folder but holds|appears twice|dirs must be a list/,
      );
      expect(await readdir(parent)).toEqual([]);
    }
    expect(await exists(join(work, 'escaped.txt'))).toBe(false);
  });

  it('refuses symlinks and special files inside an output, naming the path', async () => {
    const { store } = backend;
    const dir = join(work, 'with-link');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'real.txt'), 'real');
    await symlink('/etc/passwd', join(dir, 'sub', 'link'));
    await expect(store.putPath(dir)).rejects.toThrow(`${join(dir, 'sub', 'link')}: it is a symbolic link`);
    // Callers name the entry in the user's terms: its path inside what was stored.
    await expect(store.putPath(dir)).rejects.toMatchObject({ path: 'sub/link', what: 'a symbolic link' });

    const relLink = join(work, 'rel-link');
    await symlink('with-link/real.txt', relLink);
    await expect(store.putPath(relLink)).rejects.toThrow(/symbolic link/);

    const fifoDir = join(work, 'with-fifo');
    await mkdir(fifoDir);
    execFileSync('mkfifo', [join(fifoDir, 'pipe')]);
    await expect(store.putPath(fifoDir)).rejects.toThrow(`${join(fifoDir, 'pipe')}: it is a named pipe`);
  });

  it('keeps records under validated keys and lists them by prefix', async () => {
    const { store } = backend;
    const d = `sha256:${'ab'.repeat(32)}`;
    await store.putRecord(`index/produced/${d}/run-1`, { run: 1 });
    await store.putRecord(`index/produced/${d}/run-2`, { run: 2 });
    await store.putRecord(`index/produced/sha256:${'cd'.repeat(32)}/run-3`, { run: 3 });
    await store.putRecord('cache/key-1', { hit: true, when: 'now' });
    await store.putRecord('cache/key-1', { hit: false });

    expect(await store.getRecord('cache/key-1')).toEqual({ hit: false });
    expect(await store.getRecord('cache/missing')).toBeUndefined();
    expect(await store.listRecords(`index/produced/${d}/`)).toEqual([
      `index/produced/${d}/run-1`,
      `index/produced/${d}/run-2`,
    ]);
    expect(await store.listRecords('index/produced/sha256:ab')).toEqual([
      `index/produced/${d}/run-1`,
      `index/produced/${d}/run-2`,
    ]);
    expect(await store.listRecords('index/')).toHaveLength(3);
    expect(await store.listRecords('nothing/here/')).toEqual([]);
    expect(await store.listRecords('')).toEqual(expect.arrayContaining(['cache/key-1', `index/produced/${d}/run-1`]));
  });

  it('names a damaged record and where it is, and says what to do', async () => {
    const { store } = backend;
    await store.putRecord('cache/damaged', { hit: true });
    const where = await backend.damageRecord('cache/damaged', '{"hit": tr');
    const err = await store.getRecord('cache/damaged').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(`the store's record cache/damaged (${where}) is not valid JSON`);
    expect(err?.message).toContain('delete it');
  });

  it('refuses record keys that could leave the records folder', async () => {
    const { store } = backend;
    for (const bad of ['../escape', 'a/../../b', '/abs', 'a//b', '', 'a/./b', 'sp ace', 'back\\slash', 'a/..']) {
      await expect(store.putRecord(bad, {})).rejects.toThrow(/invalid record key/);
      await expect(store.getRecord(bad)).rejects.toThrow(/invalid record key/);
    }
    for (const bad of ['../', 'a/../', '/abs'])
      await expect(store.listRecords(bad)).rejects.toThrow(/invalid record prefix/);
  });
});
