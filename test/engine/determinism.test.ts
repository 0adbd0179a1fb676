// workflows/ runs in Temporal's deterministic sandbox: it may import only the workflow
// API, other files of workflows/, and types from elsewhere (erased at compile time).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const dir = join(import.meta.dirname, '..', '..', 'workflows');
const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]/gms;

export function forbiddenImports(source: string): string[] {
  const bad: string[] = [];
  for (const m of source.matchAll(IMPORT)) {
    const typeOnly = Boolean(m[2]);
    const spec = m[3]!;
    if (typeOnly) continue;
    if (spec === '@temporalio/workflow') continue;
    if (spec.startsWith('./') && !spec.includes('/', 2)) continue;
    bad.push(spec);
  }
  // Non-deterministic globals that the sandbox does not replace.
  for (const g of ['process.env', 'require(', 'import(', 'fetch(', 'setTimeout(', 'crypto.']) if (source.includes(g)) bad.push(g);
  return bad;
}

it('workflow files import only the workflow API, each other, and types', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  expect(files.length).toBeGreaterThan(3);
  const report = Object.fromEntries(files.map((f) => [f, forbiddenImports(readFileSync(join(dir, f), 'utf8'))] as const).filter(([, b]) => b.length > 0));
  expect(report).toEqual({});
});

it('the check catches a forbidden import', () => {
  expect(forbiddenImports("import { readFile } from 'node:fs';\nimport type { X } from '../y.js';")).toEqual(['node:fs']);
  expect(forbiddenImports("import { a } from '../activities/x.js';")).toEqual(['../activities/x.js']);
});

it('every activity proxy in workflows/ sets its cancellationType explicitly', () => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    const src = readFileSync(join(dir, f), 'utf8');
    for (const m of src.matchAll(/proxyActivities<[^>]+>\(\{/g)) {
      // The options object of this call, up to its closing brace.
      let depth = 0;
      let i = m.index! + m[0].length - 1;
      const start = i;
      for (; i < src.length; i++) {
        if (src[i] === '{') depth++;
        if (src[i] === '}' && --depth === 0) break;
      }
      expect(src.slice(start, i), `${f} at offset ${m.index}`).toMatch(/cancellationType:\s*ActivityCancellationType\.\w+/);
    }
  }
});
