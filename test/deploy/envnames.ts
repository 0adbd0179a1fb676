// The environment variable names Trainyard's configuration loaders read: every upper-case
// name quoted or read from an env object in app/ and activities/. A deploy file that sets a
// name outside this set sets nothing (a typo, or a name that was renamed).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

let known: Set<string> | undefined;

/** Names like TRAINYARD_STORE that the code reads (as 'NAME', "NAME", `NAME` or env.NAME). */
export function knownEnvNames(): Set<string> {
  if (known) return known;
  known = new Set<string>();
  for (const file of [...sources(join(REPO, 'app')), ...sources(join(REPO, 'activities'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"`]|\benv\.([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\b/g)) known.add(m[1] ?? m[2]!);
  }
  return known;
}

/** Variables the platform or a library reads, not Trainyard's loaders. */
export const PLATFORM_NAMES = new Set(['DOCKER_HOST', 'NODE_OPTIONS']);
