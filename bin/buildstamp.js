// What the compiled CLI in .build/ was built from (bin/build.js) and whether it still matches
// the checkout (bin/trainyard.js): every file under the compiled folders, by path, size and
// modification time. Plain JavaScript, no dependencies: it runs before anything is loaded.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout this file is in. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
/** Where the build goes, relative to the checkout (ignored by git). */
export const BUILD = '.build';
/** The folders compiled; test/ and bench/ always run from source. */
export const SOURCE_DIRS = ['app', 'activities', 'workflows', 'model', 'pipeline'];
// Bumped when the build's output changes for the same sources.
const FORMAT = 1;

/** `{ format, root, node, files: { "app/cli.ts": [size, mtimeMs] } }` of the checkout at `root` now. */
export function sourceStamp(root = ROOT) {
  const files = {};
  // Runs before every command: plain string paths (path.join and path.relative per file cost
  // more than the stat calls themselves), relative to `root` as they are built.
  const walk = (rel) => {
    let entries;
    try {
      entries = readdirSync(`${root}/${rel}`, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.(ts|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        const st = statSync(`${root}/${p}`);
        files[p] = [st.size, st.mtimeMs];
      }
    }
  };
  for (const d of SOURCE_DIRS) walk(d);
  return { format: FORMAT, root, node: process.versions.modules, files };
}

/** True when `root`/.build holds a build of exactly the sources there are now. */
export function buildIsCurrent(root = ROOT) {
  let built;
  try {
    built = readFileSync(join(root, BUILD, 'stamp.json'), 'utf8');
  } catch {
    return false;
  }
  return built.trim() === JSON.stringify(sourceStamp(root));
}
