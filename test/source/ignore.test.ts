// `.trainyardignore` follows gitignore exactly: every case is checked against git itself
// (`git ls-files --others --ignored --exclude-from`, which walks folders as git does).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileIgnore, DEFAULT_IGNORE_PATTERNS, ignoreLines } from '../../activities/source/ignore.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'ignore-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const FILES = [
  'README.md',
  'src/README.md',
  'src/train.py',
  'src/notes.MD',
  'docs/index.md',
  'docs/api/x.py',
  'src/docs/y.py',
  'other/docs',
  'build/out.o',
  'a/build/b.o',
  'build.txt',
  '.github/workflows/ci.yml',
  '.env',
  'sub/.env',
  'data/raw/a.csv',
  'data/raw/keep.csv',
  'data/clean/b.csv',
  'foo/bar/baz/q.txt',
  'foo/q.txt',
  'x/foo/bar',
  'logs/2024/a.log',
  'logs/keep.log',
  'file with space ',
  'file with space',
  '#hash',
  '!bang',
  'a?b',
  'abc',
  'ab',
  'lib/[x].py',
  'deep/a/b/c/d.txt',
  'one/two.txt',
  'two.txt',
  'tmp/',
  'v1/model.bin',
  'v10/model.bin',
  'vX/model.bin',
].filter((p) => !p.endsWith('/'));

// Every case pairs patterns with what they must leave out; git decides which files they are.
const CASES: Array<{ name: string; patterns: string[] }> = [
  { name: 'defaults', patterns: [...DEFAULT_IGNORE_PATTERNS] },
  { name: 'basename at any depth', patterns: ['*.md', '.env'] },
  { name: 'folder only (trailing slash) vs file of the same name', patterns: ['docs/', 'build/'] },
  { name: 'name without slash matches files and folders', patterns: ['docs', 'build'] },
  { name: 'anchored with a leading slash', patterns: ['/docs', '/build'] },
  { name: 'anchored by a middle slash', patterns: ['foo/bar', 'data/raw'] },
  { name: 'leading **/', patterns: ['**/bar', '**/raw/*.csv'] },
  { name: 'trailing /**', patterns: ['logs/**', '!logs/keep.log'] },
  { name: 'middle /**/', patterns: ['deep/**/d.txt', 'foo/**/q.txt'] },
  { name: 're-include inside an excluded folder is impossible', patterns: ['data/', '!data/raw/keep.csv'] },
  { name: 're-include when only the files were excluded', patterns: ['data/raw/*', '!data/raw/keep.csv'] },
  { name: 'negation order: last match wins', patterns: ['!src/train.py', 'src/*', '!src/train.py'] },
  {
    name: 'comments, blanks, escapes',
    patterns: ['# a comment', '', '\\#hash', '\\!bang', '   ', 'file\\ with\\ space\\ '],
  },
  { name: 'trailing spaces are dropped', patterns: ['abc   ', 'two.txt  '] },
  {
    name: 'wildcards ? and [] do not cross folders',
    patterns: ['a?b', 'ab[a-c]', 'v[0-9]/', 'one?two.txt', 'lib/\\[x\\].py'],
  },
  { name: 'negated class', patterns: ['v[!0-9]/'] },
  { name: 'star does not cross slashes when anchored', patterns: ['src/*.py', '/*.txt'] },
  { name: 'case sensitive', patterns: ['*.MD'] },
  { name: 'brace and extglob text are literal', patterns: ['{README,docs}', '+(abc)', '*.{md,py}'] },
  { name: 'double star inside a name is a plain star', patterns: ['a**b', 'build**'] },
];

function gitIgnored(dir: string, patterns: string[]): string[] {
  const excludes = join(dir, '..', `${dir.split('/').pop()}.exclude`);
  writeFileSync(excludes, patterns.join('\n') + '\n');
  const out = execFileSync(
    'git',
    [
      '-C',
      dir,
      '-c',
      'core.excludesFile=/dev/null',
      '-c',
      'core.quotePath=false',
      'ls-files',
      '-z',
      '--others',
      '--ignored',
      `--exclude-from=${excludes}`,
    ],
    { encoding: 'utf8' },
  );
  return out.split('\0').filter(Boolean).sort();
}

describe('.trainyardignore matches as a root .gitignore does', () => {
  const repo = join(root, 'repo');
  mkdirSync(repo);
  execFileSync('git', ['init', '-q', repo]);
  for (const f of FILES) {
    mkdirSync(dirname(join(repo, f)), { recursive: true });
    writeFileSync(join(repo, f), 'x');
  }

  it.each(CASES)('$name', ({ patterns }) => {
    const m = compileIgnore(patterns);
    const ours = FILES.filter((f) => m.ignores(f, false)).sort();
    expect(ours).toEqual(gitIgnored(repo, patterns));
  });

  it('leaves out folders (empty ones included) exactly when git would leave out a file in them', () => {
    const m = compileIgnore(['docs/', 'logs/**', '!keep/', 'cache']);
    expect(
      ['docs', 'a/docs', 'logs/2024', 'cache', 'x/cache', 'keep', 'src'].map((d) => [d, m.ignores(d, true)]),
    ).toEqual([
      ['docs', true],
      ['a/docs', true],
      ['logs/2024', true],
      ['cache', true],
      ['x/cache', true],
      ['keep', false],
      ['src', false],
    ]);
  });

  it('uses the built-in defaults only when there is no ignore file; an empty file ignores nothing', () => {
    expect(ignoreLines(undefined)).toEqual(['*.md', 'docs/', '.github/']);
    expect(compileIgnore(ignoreLines('')).ignores('README.md', false)).toBe(false);
    expect(compileIgnore(ignoreLines('data/\n')).ignores('README.md', false)).toBe(false);
    expect(compileIgnore(ignoreLines('data/\n')).ignores('data/a.csv', false)).toBe(true);
  });
});
