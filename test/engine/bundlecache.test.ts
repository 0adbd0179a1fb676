// The workflow bundle cache (app/bundlecache.ts): webpack runs once per content of the
// workflows and what they import; an edit there gives a new bundle, an edit elsewhere does not.
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedWorkflowBundle } from '../../app/bundlecache.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };

describe('workflow bundle cache', () => {
  let root: string;
  let entry: string;
  let builds: number;
  const build = () => {
    builds++;
    return bundleWorkflowCode({ workflowsPath: entry, logger: quiet });
  };
  const cacheDir = () => join(root, 'cache');

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'trainyard-bundle-'));
    builds = 0;
    symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
    mkdirSync(join(root, 'workflows'));
    mkdirSync(join(root, 'lib'));
    entry = join(root, 'workflows', 'index.ts');
    writeFileSync(entry, "export { greet } from './greet.js';\n");
    writeFileSync(
      join(root, 'workflows', 'greet.ts'),
      "import { word } from '../lib/word.js';\nexport async function greet(): Promise<string> { return word; }\n",
    );
    writeFileSync(join(root, 'lib', 'word.ts'), "export const word = 'hello-one';\n");
    writeFileSync(join(root, 'lib', 'unused.ts'), 'export const other = 1;\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('builds once, reads the file after, and builds again when an imported module changes', async () => {
    const first = await cachedWorkflowBundle(entry, build, { dir: cacheDir() });
    expect(first.fromCache).toBe(false);
    expect(first.code).toContain('hello-one');
    expect(readdirSync(cacheDir())).toEqual([first.path.split('/').pop()]);

    const again = await cachedWorkflowBundle(entry, build, { dir: cacheDir() });
    expect(again).toMatchObject({ fromCache: true, path: first.path, code: first.code });
    expect(builds).toBe(1);

    // A file nothing imports changes nothing.
    writeFileSync(join(root, 'lib', 'unused.ts'), 'export const other = 2;\n');
    expect((await cachedWorkflowBundle(entry, build, { dir: cacheDir() })).fromCache).toBe(true);

    // A module two imports away from the entry does.
    writeFileSync(join(root, 'lib', 'word.ts'), "export const word = 'hello-two';\n");
    const edited = await cachedWorkflowBundle(entry, build, { dir: cacheDir() });
    expect(edited.fromCache).toBe(false);
    expect(edited.code).toContain('hello-two');
    expect(edited.path).not.toBe(first.path);
    expect(builds).toBe(2);
  });

  it('gives a new bundle when the SDK version (the lock file) changes', async () => {
    const a = await cachedWorkflowBundle(entry, build, { dir: cacheDir(), extra: ['lock v1'] });
    const b = await cachedWorkflowBundle(entry, build, { dir: cacheDir(), extra: ['lock v2'] });
    expect(b.fromCache).toBe(false);
    expect(b.path).not.toBe(a.path);
  });
});
