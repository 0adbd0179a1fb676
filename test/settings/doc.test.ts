// The variable tables in README.md and docs/ are generated from the settings schema; a table
// edited by hand, or a setting added to the schema without regenerating, fails here.
// Regenerate with `node --import tsx app/settings/doc.ts`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DOC_FILES, rewriteTables, tablesIn } from '../../app/settings/doc.js';
import { SETTINGS, type Setting } from '../../app/settings/schema.js';

const root = join(import.meta.dirname, '..', '..');

describe('docs tables generated from the schema', () => {
  it.each(DOC_FILES.map((f) => [f]))('%s: every settings table is what the schema generates', (rel) => {
    const text = readFileSync(join(root, rel), 'utf8');
    expect(tablesIn(text).length, `${rel} has no <!-- settings:… --> table`).toBeGreaterThan(0);
    expect(text, `${rel} differs from the schema: run node --import tsx app/settings/doc.ts`).toBe(rewriteTables(text));
  });

  it('every table of the schema is in the docs, so every setting is documented', () => {
    const shown = new Set(DOC_FILES.flatMap((f) => tablesIn(readFileSync(join(root, f), 'utf8'))));
    for (const [name, s] of Object.entries(SETTINGS as Record<string, Setting>)) {
      expect(
        s.tables.some((t) => shown.has(t)),
        `${name} is in no table of the docs`,
      ).toBe(true);
    }
  });

  it('a hand-edited row is found', () => {
    const text = readFileSync(join(root, 'README.md'), 'utf8');
    const edited = text.replace('| `TRAINYARD_PARALLELISM` | `4` |', '| `TRAINYARD_PARALLELISM` | `8` |');
    expect(edited).not.toBe(text);
    expect(rewriteTables(edited)).toBe(text);
  });
});
