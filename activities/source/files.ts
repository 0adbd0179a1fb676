// What of a checkout is a step's code: the entries that go into its cache key. The rule is
// that the key changes exactly when what the step can read through its code scope changes:
// file bytes and executable bits, symbolic links (their target text, and whatever they lead
// to inside the checkout, wherever that is), and empty folders (a submodule is one: archives
// carry no submodule contents).
import { constants } from 'node:fs';
import { open, readdir, readlink, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import picomatch from 'picomatch';
import type { Digest } from '../../model/types.js';
import { canonicalJson } from '../store/canonical.js';
import { sha256Bytes, sha256File } from '../store/digest.js';
import { compileIgnore, IGNORE_FILE, ignoreLines } from './ignore.js';

/** One entry of a checkout, as a step sees it at `/workspace/<path>`. */
export type TreeEntry =
  | { path: string; type: 'file'; digest: Digest; executable: boolean }
  /** `target` is the link's text, exactly as stored in the commit. */
  | { path: string; type: 'symlink'; target: string }
  /** A folder with nothing in it (folders with contents are implied by their entries). */
  | { path: string; type: 'dir' };

/** The folder that holds pipeline files; never part of the default code scope. */
export const PIPELINE_DIR = '.trainyard';

/** Per-checkout entries, computed once (checkouts are immutable). */
const treeCache = new Map<string, Promise<TreeEntry[]>>();

/** Every entry of a checkout (files, symbolic links, empty folders), sorted by path. */
export function treeEntries(root: string): Promise<TreeEntry[]> {
  let p = treeCache.get(root);
  if (!p) {
    p = walk(root, '');
    treeCache.set(root, p);
    p.catch(() => treeCache.delete(root));
    if (treeCache.size > 64) treeCache.delete(treeCache.keys().next().value!);
  }
  return p;
}

async function walk(root: string, rel: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  if (entries.length === 0 && rel !== '') return [{ path: rel, type: 'dir' }];
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    const abs = join(root, p);
    if (e.isDirectory()) out.push(...(await walk(root, p)));
    else if (e.isFile()) {
      const st = await stat(abs);
      out.push({ path: p, type: 'file', digest: (await sha256File(abs)).digest, executable: (st.mode & 0o111) !== 0 });
    } else if (e.isSymbolicLink()) {
      out.push({ path: p, type: 'symlink', target: await readlink(abs) });
    } else {
      throw new Error(`${p} in the checkout is neither a file, a folder nor a symbolic link`);
    }
  }
  return out.sort((a, b) => comparePaths(a.path, b.path));
}

const comparePaths = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** How a step's code scope was chosen, for `explain` and the README's rule. */
export type CodeScope =
  { kind: 'listed'; code: string[] } | { kind: 'default'; ignoreFile: boolean; patterns: readonly string[] };

export interface StepCode {
  /** What goes into the key, sorted by path: the scope's entries plus what their links lead to. */
  entries: TreeEntry[];
  /** Digest of `bytes`: the `code` part of the cache key. */
  digest: Digest;
  /** Canonical JSON of the listing (kept in the store so a later miss can say which files changed). */
  bytes: string;
  scope: CodeScope;
}

export const CODE_LISTING_KIND = 'trainyard.code/v1';

/**
 * A step's code at a checkout. With `code` (the step's list), exactly the entries it selects:
 * exact paths, folders (everything under them) or globs. Without, the default scope: every
 * entry except `.trainyard/`, `.trainyardignore` and what `.trainyardignore` (or, when there
 * is none, DEFAULT_IGNORE_PATTERNS) leaves out. Either way, each selected symbolic link brings
 * in what it resolves to inside the checkout (and the links on the way), transitively.
 */
export function stepCode(root: string, code?: string[]): Promise<StepCode> {
  // Steps of one checkout mostly share a scope (the default one): compute each scope once.
  const k = `${root}\n${JSON.stringify(code ?? null)}`;
  let p = codeCache.get(k);
  if (!p) {
    p = computeStepCode(root, code);
    codeCache.set(k, p);
    p.catch(() => codeCache.delete(k));
    if (codeCache.size > 256) codeCache.delete(codeCache.keys().next().value!);
  }
  return p;
}

const codeCache = new Map<string, Promise<StepCode>>();

async function computeStepCode(root: string, code: string[] | undefined): Promise<StepCode> {
  const all = await treeEntries(root);
  let selected: TreeEntry[];
  let scope: CodeScope;
  if (code) {
    selected = selectCode(all, code);
    scope = { kind: 'listed', code };
  } else {
    const text = await readIgnoreFile(root, all);
    const patterns = ignoreLines(text);
    const ignore = compileIgnore(patterns);
    selected = all.filter((e) => {
      if (e.path === PIPELINE_DIR || e.path.startsWith(`${PIPELINE_DIR}/`) || e.path === IGNORE_FILE) return false;
      return !ignore.ignores(e.path, e.type === 'dir');
    });
    scope = { kind: 'default', ignoreFile: text !== undefined, patterns };
  }
  // A listed path under a linked folder (`lib/x.py` with `lib` a link) is read through the link.
  const literal = code ? code.map((c) => c.replace(/\/+$/, '')).filter((c) => !picomatch.scan(c).isGlob) : [];
  const entries = withLinkTargets(all, selected, literal);
  const bytes = canonicalJson({ kind: CODE_LISTING_KIND, entries });
  return { entries, digest: sha256Bytes(bytes), bytes, scope };
}

/** The project's ignore file, or undefined when it has none. A link there is refused: it could lead anywhere on the host. */
async function readIgnoreFile(root: string, all: TreeEntry[]): Promise<string | undefined> {
  const entry = all.find((e) => e.path === IGNORE_FILE);
  if (!entry) return undefined;
  if (entry.type !== 'file')
    throw new Error(
      `${IGNORE_FILE} must be a regular file with one pattern per line; it is ${entry.type === 'symlink' ? 'a symbolic link' : 'a folder'}`,
    );
  const fh = await open(join(root, IGNORE_FILE), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** Entries a `code:` list selects: exact paths, folders (everything under them), or globs. */
export function selectCode<T extends { path: string }>(files: T[], code: string[] | undefined): T[] {
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

/** Most links followed in one resolution, as Linux's ELOOP limit. */
const MAX_LINK_HOPS = 40;

/**
 * `selected` plus, for every symbolic link in it, the entries it leads to inside the checkout
 * (a file, a link, or everything under a folder) and the links passed on the way, until no
 * new entry comes in. A link leading outside the checkout (absolute, or `..` above its root)
 * adds nothing: what it reaches in the container is the image or an input, both keyed apart.
 * `paths` (relative to the root) are resolved the same way, as if a link at the root named them.
 */
export function withLinkTargets(all: TreeEntry[], selected: TreeEntry[], paths: string[] = []): TreeEntry[] {
  const byPath = new Map(all.map((e) => [e.path, e]));
  const links = new Map<string, string>();
  for (const e of all) if (e.type === 'symlink') links.set(e.path, e.target);
  const sorted = all.map((e) => e.path); // `all` is sorted: entries under a folder are contiguous
  const chosen = new Map(selected.map((e) => [e.path, e]));
  const queue: Array<{ base: string[]; target: string }> = [];
  const enqueue = (link: string): void => {
    const dir = posix.dirname(link);
    queue.push({ base: dir === '.' ? [] : dir.split('/'), target: links.get(link)! });
  };
  for (const e of selected) if (e.type === 'symlink') enqueue(e.path);
  for (const p of paths) queue.push({ base: [], target: p });
  // A link passed on the way is keyed by its text (`follow` false): passing through it reads
  // no more of what it leads to than the rest of the path names.
  const add = (path: string, follow = true): void => {
    const e = byPath.get(path);
    if (e && !chosen.has(path)) {
      chosen.set(path, e);
      if (e.type === 'symlink' && follow) enqueue(path);
    }
  };
  while (queue.length) {
    const { base, target: text } = queue.pop()!;
    const passed: string[] = [];
    const target = resolveInTree(base, text, links, passed);
    for (const p of passed) add(p, false);
    if (target === undefined) continue;
    add(target);
    // A folder: everything under it (binary search for the first path below it).
    const prefix = target === '' ? '' : `${target}/`;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < sorted.length && sorted[i]!.startsWith(prefix); i++) add(sorted[i]!);
  }
  return [...chosen.values()].sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * Where a link's target leads, resolved component by component as the kernel does (a `..`
 * after a link goes up from where the link led). Returns the checkout path reached ('' = the
 * root), or undefined when it leaves the checkout or loops. Every link passed is pushed to `passed`.
 */
function resolveInTree(
  base: string[],
  target: string,
  links: Map<string, string>,
  passed: string[],
): string | undefined {
  if (target.startsWith('/')) return undefined;
  let cur = [...base];
  let pending = target.split('/');
  let hops = 0;
  while (pending.length) {
    const seg = pending.shift()!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (cur.length === 0) return undefined;
      cur.pop();
      continue;
    }
    cur.push(seg);
    const here = cur.join('/');
    const t = links.get(here);
    if (t !== undefined) {
      if (++hops > MAX_LINK_HOPS) return undefined;
      passed.push(here);
      if (t.startsWith('/')) return undefined;
      cur.pop();
      pending = [...t.split('/'), ...pending];
    }
  }
  return cur.join('/');
}

/** One line per entry, to compare two listings: `path → what the step reads there`. */
export function describeEntries(entries: TreeEntry[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of entries) {
    out[e.path] =
      e.type === 'file'
        ? `${e.digest}${e.executable ? ' (executable)' : ''}`
        : e.type === 'symlink'
          ? `symlink → ${e.target}`
          : 'empty folder';
  }
  return out;
}

/** Parse a listing kept in the store (bytes of StepCode.bytes); undefined when it is not one. */
export function parseListing(bytes: Buffer): TreeEntry[] | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as { kind?: unknown; entries?: unknown };
    return v.kind === CODE_LISTING_KIND && Array.isArray(v.entries) ? (v.entries as TreeEntry[]) : undefined;
  } catch {
    return undefined;
  }
}
