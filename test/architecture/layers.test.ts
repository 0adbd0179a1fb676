// The import rules of the top-level folders (developers' guide: lower layers never import upper
// ones). Layers, top down: app/ (composition, CLI, intake) → workflows/ and activities/ →
// pipeline/ (the file format). workflows/ holds deterministic Temporal code only: it may name
// activity *types* (proxyActivities needs them) but never load activity code or Node built-ins,
// which the workflow sandbox refuses at run time anyway.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Import { file: string; line: number; target: string; typeOnly: boolean }

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Static and dynamic imports of every source under `folder`, with the top-level folder they reach. */
export function importsOf(folder: string): Import[] {
  const found: Import[] = [];
  for (const file of sources(join(ROOT, folder))) {
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      const m = /^\s*(import|export)\s+(type\s+)?[^'"]*from\s+['"]([^'"]+)['"]/.exec(text) ?? /\bimport\(\s*['"]([^'"]+)['"]\s*\)/.exec(text);
      if (!m) return;
      const spec = m.length === 4 ? m[3]! : m[1]!;
      const typeOnly = m.length === 4 && Boolean(m[2]);
      const target = spec.startsWith('.') ? relative(ROOT, resolve(dirname(file), spec)).split('/')[0]! : spec;
      found.push({ file: relative(ROOT, file), line: i + 1, target, typeOnly });
    });
  }
  return found;
}

const where = (xs: Import[]) => xs.map((x) => `${x.file}:${x.line} → ${x.target}${x.typeOnly ? ' (type)' : ''}`);

describe('layers', () => {
  it('pipeline/ (the file format) imports no other layer', () => {
    expect(where(importsOf('pipeline').filter((x) => ['app', 'activities', 'workflows', 'templates'].includes(x.target)))).toEqual([]);
  });

  it('activities/ and workflows/ never import app/', () => {
    expect(where([...importsOf('activities'), ...importsOf('workflows')].filter((x) => x.target === 'app'))).toEqual([]);
  });

  it('workflows/ names activity types only, and no Node built-in or SDK other than @temporalio/workflow', () => {
    const bad = importsOf('workflows').filter((x) =>
      (x.target === 'activities' && !x.typeOnly) ||
      x.target.startsWith('node:') ||
      (x.target.startsWith('@temporalio/') && x.target !== '@temporalio/workflow' && x.target !== '@temporalio/common' && !x.typeOnly),
    );
    expect(where(bad)).toEqual([]);
  });

  it('the rule checker sees a forbidden import (it can fail)', () => {
    const own = importsOf('test/architecture');
    expect(own.some((x) => x.target === 'node:fs')).toBe(true);
  });
});
