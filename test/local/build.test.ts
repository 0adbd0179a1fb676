// The compiled CLI (bin/build.js → .build/): `bin/trainyard.js` runs it only while it was built
// from exactly the sources there are, and runs the sources otherwise (a fresh clone, an edit).
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** A checkout with the real bin/ and a CLI that says which file runs and what it sees as its URL. */
function fixture(): string {
  const root = mkdtempSync(join(tmpdir(), 'trainyard-build-'));
  mkdirSync(join(root, 'bin'));
  for (const f of ['trainyard.js', 'build.js', 'buildstamp.js'])
    copyFileSync(join(REPO, 'bin', f), join(root, 'bin', f));
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(root, 'app'));
  mkdirSync(join(root, 'pipeline'));
  writeFileSync(join(root, 'pipeline', 'word.ts'), "export const word: string = 'one';\n");
  writeFileSync(
    join(root, 'app', 'cli.ts'),
    [
      "import { word } from '../pipeline/word.js';",
      "const lazy = await import('./lazy.js');",
      'process.stdout.write(JSON.stringify({ file: import.meta.filename, url: import.meta.url, word, lazy: lazy.n, text: "import.meta.url" }));',
    ].join('\n'),
  );
  writeFileSync(join(root, 'app', 'lazy.ts'), 'export const n: number = 7;\n');
  return root;
}

function cli(root: string): { file: string; url: string; word: string; lazy: number; text: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'trainyard.js')], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { file: string; url: string; word: string; lazy: number; text: string };
}

describe('compiled CLI', () => {
  let root: string;
  beforeEach(() => {
    root = fixture();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('runs the sources without a build, the build once made, and the sources again after an edit', () => {
    const sourceUrl = pathToFileURL(join(root, 'app', 'cli.ts')).href;
    expect(cli(root)).toEqual({
      file: join(root, 'app', 'cli.ts'),
      url: sourceUrl,
      word: 'one',
      lazy: 7,
      text: 'import.meta.url',
    });

    execFileSync(process.execPath, [join(root, 'bin', 'build.js')]);
    // Compiled, and still finding files next to its source (templates/, workflows/index.ts).
    expect(cli(root)).toEqual({
      file: join(root, '.build', 'app', 'cli.js'),
      url: sourceUrl,
      word: 'one',
      lazy: 7,
      text: 'import.meta.url',
    });

    // An edit of the same size in the same millisecond is not possible to miss either: the mtime moves.
    writeFileSync(join(root, 'pipeline', 'word.ts'), "export const word: string = 'two';\n");
    utimesSync(join(root, 'pipeline', 'word.ts'), new Date(), new Date(Date.now() + 5_000));
    expect(cli(root)).toMatchObject({ file: join(root, 'app', 'cli.ts'), word: 'two' });

    // A new file makes the build stale as well.
    execFileSync(process.execPath, [join(root, 'bin', 'build.js')]);
    expect(cli(root).file).toBe(join(root, '.build', 'app', 'cli.js'));
    writeFileSync(join(root, 'app', 'new.ts'), 'export {};\n');
    expect(cli(root).file).toBe(join(root, 'app', 'cli.ts'));
  });

  it('keeps the build out of git', () => {
    const ignored = spawnSync('git', ['check-ignore', '-q', '.build/app/cli.js'], { cwd: REPO });
    expect(ignored.status).toBe(0);
  });
});
