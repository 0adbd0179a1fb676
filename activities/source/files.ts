// Digest of the part of a checkout that is a step's code (its `code:` paths, or the whole
// tree), so a change elsewhere in the repository does not invalidate the step.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import picomatch from 'picomatch';
import { sha256File } from '../store/digest.js';

export interface FileDigest {
  path: string;
  digest: string;
  executable: boolean;
}

/** Per-checkout file digests, computed once (checkouts are immutable). */
const treeCache = new Map<string, Promise<FileDigest[]>>();

export function treeDigests(root: string): Promise<FileDigest[]> {
  let p = treeCache.get(root);
  if (!p) {
    p = walk(root, '');
    treeCache.set(root, p);
    if (treeCache.size > 64) treeCache.delete(treeCache.keys().next().value!);
  }
  return p;
}

async function walk(root: string, rel: string): Promise<FileDigest[]> {
  const out: FileDigest[] = [];
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await walk(root, p)));
    else if (e.isFile()) {
      const st = await lstat(join(root, p));
      out.push({ path: p, digest: (await sha256File(join(root, p))).digest, executable: (st.mode & 0o111) !== 0 });
    } else if (e.isSymbolicLink()) {
      out.push({ path: p, digest: 'symlink', executable: false });
    }
  }
  return out;
}

/** Files a `code:` list selects: exact paths, directories (everything under them), or globs. */
export function selectCode(files: FileDigest[], code: string[] | undefined): FileDigest[] {
  if (!code) return files;
  const matchers = code.map((c) => {
    const clean = c.replace(/\/+$/, '');
    if (picomatch.scan(clean).isGlob) {
      const m = picomatch(clean, { dot: true });
      return (p: string) => m(p);
    }
    return (p: string) => p === clean || p.startsWith(`${clean}/`);
  });
  return files.filter((f) => matchers.some((m) => m(f.path)));
}
