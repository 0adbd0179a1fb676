// The workflow bundle kept on disk by the content digest of what goes into it, so a process
// that starts workers (every `trainyard run`) reads a file instead of running webpack (about
// 1.5 s of CPU). The digest covers every module reachable from the workflows' entry point by
// relative imports, the lock file (the bundled SDK's version) and the bundle format: an edit
// anywhere in workflows/ or what it imports gives a new bundle, never a stale one.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';

// Bumped when what is bundled changes for the same sources (bundler options, interceptors).
const FORMAT = 1;
/** Bundles kept in the cache folder; older ones are removed when a new one is written. */
const KEEP = 8;
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** `${XDG_CACHE_HOME:-~/.cache}/trainyard/workflow-bundles` (a relative XDG_CACHE_HOME is ignored, as the XDG spec says). */
export function bundleCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache'), 'trainyard', 'workflow-bundles');
}

/** `./x.js` from `from` → the .ts (or .js, or folder index) file it names, as webpack resolves it. */
async function resolveModule(from: string, spec: string): Promise<string | undefined> {
  const base = resolve(dirname(from), spec);
  const candidates = spec.endsWith('.js')
    ? [base.replace(/\.js$/, '.ts'), base]
    : [base, `${base}.ts`, `${base}.js`, join(base, 'index.ts'), join(base, 'index.js')];
  for (const c of candidates) {
    if ((await stat(c).catch(() => undefined))?.isFile()) return c;
  }
  return undefined;
}

/**
 * SHA-256 (hex) over the entry and every module it reaches by relative imports (type-only
 * ones too: a little more rebuilding, never less), each by path relative to the entry's
 * project and content, plus `extra` (the lock file's bytes, the SDK version).
 */
export async function workflowSourceDigest(
  entry: string,
  extra: string[] = [],
): Promise<{ digest: string; files: string[] }> {
  const root = dirname(dirname(entry));
  const seen = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    const text = await readFile(file, 'utf8');
    seen.set(file, text);
    for (const m of text.matchAll(SPECIFIER)) {
      const dep = await resolveModule(file, m[1]!);
      if (dep && !seen.has(dep)) queue.push(dep);
    }
  }
  // The checkout's path too: the bundle's source maps name each module by absolute path.
  const h = createHash('sha256').update(`trainyard.workflow-bundle/v${FORMAT}\n${root}\n`);
  for (const e of extra) h.update(`${e.length}\n${e}\n`);
  const files = [...seen.keys()].sort();
  for (const f of files) {
    const text = seen.get(f)!;
    h.update(`${relative(root, f)}\n${Buffer.byteLength(text)}\n${text}\n`);
  }
  return { digest: h.digest('hex'), files };
}

/**
 * The bundle of `entry` from the cache folder when one for its digest is there, else `build()`
 * written there (atomically: a concurrent reader sees all of it or nothing) and returned. A
 * cache folder that cannot be written only costs the next start a rebuild.
 */
export async function cachedWorkflowBundle(
  entry: string,
  build: () => Promise<{ code: string }>,
  opts: { dir?: string; extra?: string[] } = {},
): Promise<{ code: string; path: string; fromCache: boolean }> {
  const dir = opts.dir ?? bundleCacheDir();
  const { digest } = await workflowSourceDigest(entry, opts.extra);
  const path = join(dir, `${digest}.js`);
  const cached = await readFile(path, 'utf8').catch(() => undefined);
  if (cached) return { code: cached, path, fromCache: true };
  const { code } = await build();
  try {
    await mkdir(dir, { recursive: true });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, code);
    await rename(tmp, path);
    await prune(dir, path);
  } catch {
    // Read-only home, full disk: the bundle is still good for this process.
  }
  return { code, path, fromCache: false };
}

async function prune(dir: string, keep: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => /^[0-9a-f]{64}\.js$/.test(n));
  if (names.length <= KEEP) return;
  const aged = await Promise.all(names.map(async (n) => ({ p: join(dir, n), t: (await stat(join(dir, n))).mtimeMs })));
  aged.sort((a, b) => b.t - a.t);
  for (const { p } of aged.slice(KEEP)) if (p !== keep) await rm(p, { force: true });
}
