// The docs' variable tables, generated from the settings schema. Each table sits between
// `<!-- settings:NAME -->` and `<!-- /settings -->` in one of DOC_FILES;
// `node --import tsx app/settings/doc.ts` rewrites them, `… --check` exits 1 when a committed
// table differs (test/settings/doc.test.ts runs the same comparison).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS, type Setting, type Table } from './schema.js';

/** The files holding settings tables, relative to the repository root. */
export const DOC_FILES = [
  'README.md',
  'docs/githost.md',
  'docs/aws.md',
  'docs/deploying.md',
  'docs/kubernetes.md',
  'docs/operations.md',
] as const;

const BLOCK = /<!-- settings:([a-z0-9-]+) -->\n[\s\S]*?<!-- \/settings -->/g;

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The Markdown table of one docs table: variable (and other names), default, commands, meaning. */
export function settingsTable(table: Table): string {
  const rows = Object.entries(SETTINGS as Record<string, Setting>)
    .filter(([, s]) => s.tables.includes(table))
    .map(([name, s]) => {
      const others = (s.aliases ?? []).map((a) => `\`${a.name}\` (${a.is})`).join(', ');
      const variable = `\`${name}\`${others ? `, also ${others}` : ''}`;
      return `| ${cell(variable)} | ${cell(s.defaultText)} | ${s.commands.join(', ')} | ${cell(s.description)} |`;
    });
  return ['| variable | default | read by | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** `text` with every settings block regenerated. Throws on a block naming an unknown table. */
export function rewriteTables(text: string): string {
  return text.replace(BLOCK, (_all, name: string) => {
    if (!Object.values(SETTINGS as Record<string, Setting>).some((s) => s.tables.includes(name as Table))) {
      throw new Error(`<!-- settings:${name} -->: no setting is in a table of that name`);
    }
    return `<!-- settings:${name} -->\n${settingsTable(name as Table)}\n<!-- /settings -->`;
  });
}

/** The tables each file holds, in order. */
export function tablesIn(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((m) => m[1]!);
}

/** Rewrites (or with `check`, compares) the tables of DOC_FILES under `root`; returns the files that differ. */
export function syncDocs(root: string, check: boolean): string[] {
  const stale: string[] = [];
  for (const rel of DOC_FILES) {
    const path = join(root, rel);
    const text = readFileSync(path, 'utf8');
    const fresh = rewriteTables(text);
    if (fresh === text) continue;
    stale.push(rel);
    if (!check) writeFileSync(path, fresh);
  }
  return stale;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const stale = syncDocs(resolve(fileURLToPath(import.meta.url), '..', '..', '..'), check);
  for (const f of stale) process.stdout.write(`${check ? 'differs from the schema' : 'rewrote'}: ${f}\n`);
  process.exit(check && stale.length > 0 ? 1 : 0);
}
