// Directory artifacts: walking a directory into manifest entries, and checking a manifest
// read back from the store before anything is written from it.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalJson } from './canonical.js';
import { isDigest } from './digest.js';
import type { DirManifest, ManifestEntry } from './types.js';

export const MANIFEST_KIND = 'trainyard.dir/v1';
/** Only the executable bit survives storage; everything else is normalised. */
export const MODE_EXEC = 0o755;
export const MODE_PLAIN = 0o644;

export function normaliseMode(mode: number): number {
  return mode & 0o111 ? MODE_EXEC : MODE_PLAIN;
}

/** One regular file found under a directory being stored. */
export interface WalkedFile {
  /** Absolute path on disk. */
  abs: string;
  /** Path inside the directory, `/`-separated. */
  path: string;
  mode: number;
}

function describeType(st: import('node:fs').Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isBlockDevice() || st.isCharacterDevice()) return 'a device file';
  if (st.isSocket()) return 'a socket';
  if (st.isFIFO()) return 'a named pipe';
  return 'not a regular file or directory';
}

/**
 * An entry that cannot be stored. `path` is relative to the file or folder being stored
 * ('' when it is that file itself), so a caller can name it in the user's terms (an output
 * or input name, a repository path) instead of a scratch path.
 */
export class EntryRefused extends Error {
  override name = 'EntryRefused';
  constructor(
    readonly abs: string,
    readonly path: string,
    /** e.g. `a symbolic link`, `a named pipe`. */
    readonly what: string,
  ) {
    super(
      what === 'a symbolic link'
        ? `refusing to store ${abs}: it is a symbolic link. Outputs may not contain symlinks ` +
            `(a link could point outside the output); copy the file or directory it points to instead.`
        : `refusing to store ${abs}: it is ${what}; only regular files and directories can be stored.`,
    );
  }
}

/** The error for an entry that cannot be stored; exported so the single-file path says the same. */
export function refuseEntry(abs: string, st: import('node:fs').Stats, path = ''): EntryRefused {
  return new EntryRefused(abs, path, describeType(st));
}

/** What a directory holds: its regular files and its empty folders, each sorted by path. */
export interface WalkedTree {
  files: WalkedFile[];
  emptyDirs: string[];
}

/** Every regular file and empty folder under `root` (a directory); refuses anything else. */
export async function walkDir(root: string): Promise<WalkedTree> {
  const files: WalkedFile[] = [];
  const emptyDirs: string[] = [];
  const visit = async (dirAbs: string, dirRel: string): Promise<void> => {
    const names = (await readdir(dirAbs)).sort();
    if (names.length === 0 && dirRel !== '') emptyDirs.push(dirRel);
    for (const name of names) {
      const abs = join(dirAbs, name);
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      assertSafeEntryPath(rel);
      const st = await lstat(abs);
      if (st.isDirectory()) await visit(abs, rel);
      else if (st.isFile()) files.push({ abs, path: rel, mode: normaliseMode(st.mode) });
      else throw refuseEntry(abs, st, rel);
    }
  };
  await visit(root, '');
  return { files: files.sort((a, b) => comparePaths(a.path, b.path)), emptyDirs: emptyDirs.sort(comparePaths) };
}

export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A manifest path must be relative, `/`-separated, and stay inside the directory. */
export function assertSafeEntryPath(path: unknown): asserts path is string {
  const ok =
    typeof path === 'string' &&
    path.length > 0 &&
    path.length <= 4096 &&
    !path.startsWith('/') &&
    !path.includes('\0') &&
    path.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
  if (!ok) {
    throw new Error(
      `unsafe path ${JSON.stringify(path)} in directory artifact: entry paths must be relative, ` +
        `without empty, "." or ".." segments`,
    );
  }
}

export function manifestBytes(entries: ManifestEntry[], emptyDirs: string[] = []): string {
  const manifest: DirManifest = {
    kind: MANIFEST_KIND,
    entries: [...entries].sort((a, b) => comparePaths(a.path, b.path)),
    ...(emptyDirs.length ? { dirs: [...emptyDirs].sort(comparePaths) } : {}),
  };
  return canonicalJson(manifest);
}

/**
 * Parse and check a manifest completely (every path, digest, size, mode; no duplicates; no
 * file that is also another entry's folder) so a hostile one is refused before any write.
 */
export function parseManifest(bytes: Buffer, digest: string): DirManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`artifact ${digest} is not a directory manifest (not JSON)`);
  }
  const obj = raw as { kind?: unknown; entries?: unknown };
  if (typeof raw !== 'object' || raw === null || obj.kind !== MANIFEST_KIND || !Array.isArray(obj.entries)) {
    throw new Error(
      `artifact ${digest} is not a directory manifest (kind must be "${MANIFEST_KIND}" with an entries list)`,
    );
  }
  const entries: ManifestEntry[] = [];
  const seen = new Set<string>();
  for (const e of obj.entries as unknown[]) {
    const entry = e as Partial<Record<keyof ManifestEntry, unknown>>;
    if (typeof e !== 'object' || e === null) throw new Error(`directory manifest ${digest}: an entry is not an object`);
    assertSafeEntryPath(entry.path);
    if (!isDigest(entry.digest))
      throw new Error(`directory manifest ${digest}: entry ${entry.path} has an invalid digest`);
    if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
      throw new Error(`directory manifest ${digest}: entry ${entry.path} has an invalid size`);
    }
    if (typeof entry.mode !== 'number' || !Number.isInteger(entry.mode) || entry.mode < 0 || entry.mode > 0o7777) {
      throw new Error(`directory manifest ${digest}: entry ${entry.path} has an invalid mode`);
    }
    if (seen.has(entry.path)) throw new Error(`directory manifest ${digest}: path ${entry.path} appears twice`);
    seen.add(entry.path);
    entries.push({ path: entry.path, digest: entry.digest, size: entry.size, mode: normaliseMode(entry.mode) });
  }
  const rawDirs = (obj as { dirs?: unknown }).dirs;
  if (rawDirs !== undefined && !Array.isArray(rawDirs))
    throw new Error(`directory manifest ${digest}: dirs must be a list of folder paths`);
  const dirs: string[] = [];
  const dirSet = new Set<string>();
  for (const d of (rawDirs ?? []) as unknown[]) {
    assertSafeEntryPath(d);
    if (seen.has(d) || dirSet.has(d)) throw new Error(`directory manifest ${digest}: path ${d} appears twice`);
    dirSet.add(d);
    dirs.push(d);
  }
  // No path may sit under a file, and an empty folder may hold nothing.
  for (const path of [...seen, ...dirSet]) {
    const segs = path.split('/');
    for (let i = 1; i < segs.length; i++) {
      const parent = segs.slice(0, i).join('/');
      if (seen.has(parent))
        throw new Error(`directory manifest ${digest}: ${parent} is both a file and the folder of ${path}`);
      if (dirSet.has(parent))
        throw new Error(`directory manifest ${digest}: ${parent} is listed as an empty folder but holds ${path}`);
    }
  }
  return { kind: MANIFEST_KIND, entries, ...(dirs.length ? { dirs: dirs.sort(comparePaths) } : {}) };
}
