// GitHub's published "Filter pattern cheat sheet" (docs.github.com, Workflow syntax for GitHub
// Actions → Filter pattern cheat sheet), every row: each "Example matches" entry must match and
// each "Does not match" entry must not. `derived` lists non-matches that follow from the row's
// own description (the sheet shows few), so that every row is also tested from the other side.
import { describe, expect, it } from 'vitest';
import { compileFilterPattern, selects } from '../../pipeline/filters.js';

interface Row {
  patterns: string[];
  matches: string[];
  doesNotMatch?: string[];
  derived: string[];
}

const branchesAndTags: Row[] = [
  {
    patterns: ['feature/*'],
    matches: ['feature/my-branch', 'feature/your-branch'],
    derived: ['feature/beta-a/my-branch', 'feature', 'my-feature/x'],
  },
  {
    patterns: ['feature/**'],
    matches: ['feature/beta-a/my-branch', 'feature/your-branch', 'feature/mona/the/octocat'],
    derived: ['feature', 'features/x', 'x/feature/y'],
  },
  {
    patterns: ['main', 'releases/mona-the-octocat'],
    matches: ['main', 'releases/mona-the-octocat'],
    derived: ['mainline', 'releases/mona', 'Main', 'release/mona-the-octocat'],
  },
  { patterns: ['*'], matches: ['main', 'releases'], derived: ['releases/10', 'all/the/branches'] },
  { patterns: ['**'], matches: ['all/the/branches', 'every/tag'], derived: [] },
  {
    patterns: ['*feature'],
    matches: ['mona-feature', 'feature', 'ver-10-feature'],
    derived: ['feature-x', 'mona/feature'],
  },
  { patterns: ['v2*'], matches: ['v2', 'v2.0', 'v2.9'], derived: ['v1.0', 'v2/x', 'xv2'] },
  {
    patterns: ['v[12].[0-9]+.[0-9]+'],
    matches: ['v1.10.1', 'v2.0.0'],
    derived: ['v3.0.0', 'v1.x.1', 'v1..1', 'v1.0', 'v2.0.0-rc1'],
  },
];

const paths: Row[] = [
  { patterns: ['*'], matches: ['README.md', 'server.rb'], derived: ['docs/README.md'] },
  { patterns: ['*.jsx?'], matches: ['page.js', 'page.jsx'], derived: ['page.jsxx', 'page.j', 'src/page.js'] },
  { patterns: ['**'], matches: ['all/the/files.md'], derived: [] },
  { patterns: ['*.js'], matches: ['app.js', 'index.js'], derived: ['js/index.js', 'app.jsx'] },
  { patterns: ['**.js'], matches: ['index.js', 'js/index.js', 'src/js/app.js'], derived: ['index.jsx', 'js/index.ts'] },
  {
    patterns: ['docs/*'],
    matches: ['docs/README.md', 'docs/file.txt'],
    derived: ['docs/mona/octocat.txt', 'src/docs/file.txt'],
  },
  {
    patterns: ['docs/**'],
    matches: ['docs/README.md', 'docs/mona/octocat.txt'],
    derived: ['dir/docs/x.md', 'docsx/a'],
  },
  {
    patterns: ['docs/**/*.md'],
    matches: ['docs/README.md', 'docs/mona/hello-world.md', 'docs/a/markdown/file.md'],
    derived: ['docs/a/file.txt', 'README.md'],
  },
  {
    patterns: ['**/docs/**'],
    matches: ['docs/hello.md', 'dir/docs/my-file.txt', 'space/docs/plan/space.doc'],
    derived: ['docsy/a.md', 'dir/mydocs/a.md'],
  },
  { patterns: ['**/README.md'], matches: ['README.md', 'js/README.md'], derived: ['README.mdx', 'js/NOT-README.md'] },
  {
    patterns: ['**/*src/**'],
    matches: ['a/src/app.js', 'my-src/code/js/app.js'],
    derived: ['a/srcs/app.js', 'src-a/x.js'],
  },
  {
    patterns: ['**/*-post.md'],
    matches: ['my-post.md', 'path/their-post.md'],
    derived: ['post.md', 'path/my-post.mdx'],
  },
  {
    patterns: ['**/migrate-*.sql'],
    matches: ['migrate-10909.sql', 'db/migrate-v1.0.sql', 'db/sept/migrate-v1.sql'],
    derived: ['db/migrate/v1.sql', 'migrate-1.sqlx'],
  },
  {
    patterns: ['*.md', '!README.md'],
    matches: ['hello.md'],
    doesNotMatch: ['README.md', 'docs/hello.md'],
    derived: [],
  },
  {
    patterns: ['*.md', '!README.md', 'README*'],
    matches: ['hello.md', 'README.md', 'README.doc'],
    derived: ['docs/README.md', 'notes.txt'],
  },
];

function cases(rows: Row[]): [string, string, boolean][] {
  return rows.flatMap((r) => [
    ...r.matches.map((s): [string, string, boolean] => [r.patterns.join(' '), s, true]),
    ...(r.doesNotMatch ?? []).map((s): [string, string, boolean] => [r.patterns.join(' '), s, false]),
    ...r.derived.map((s): [string, string, boolean] => [r.patterns.join(' '), s, false]),
  ]);
}

const sel = (patterns: string, subject: string) => selects(patterns.split(' ').map(compileFilterPattern), subject);

describe('GitHub filter pattern cheat sheet: patterns to match branches and tags', () => {
  it.each(cases(branchesAndTags))('%s on %s → %s', (patterns, subject, expected) => {
    expect(sel(patterns, subject)).toBe(expected);
  });
});

describe('GitHub filter pattern cheat sheet: patterns to match file paths', () => {
  it.each(cases(paths))('%s on %s → %s', (patterns, subject, expected) => {
    expect(sel(patterns, subject)).toBe(expected);
  });
});

describe('filter patterns beyond the cheat sheet', () => {
  it("reads the special characters of the sheet's legend", () => {
    expect(sel('Octo*', 'Octocat')).toBe(true);
    // "zero or one of the preceding character" (not one character of any kind, as in shells)
    expect(sel('Octoc?t', 'Octoct')).toBe(true);
    expect(sel('Octoc?t', 'Octot')).toBe(true);
    expect(sel('Octoc?t', 'Octocat')).toBe(false);
    expect(sel('Octoc+t', 'Octocccct')).toBe(true);
    expect(sel('Octoc+t', 'Octot')).toBe(false);
    expect(sel('[CB]at', 'Cat')).toBe(true);
    expect(sel('[CB]at', 'Bat')).toBe(true);
    expect(sel('[CB]at', 'Rat')).toBe(false);
    expect(sel('[1-2]00', '100')).toBe(true);
    expect(sel('[1-2]00', '200')).toBe(true);
    expect(sel('[1-2]00', '300')).toBe(false);
    expect(sel('[0-9a-z]', 'q')).toBe(true);
    expect(sel('[0-9a-z]', 'Q')).toBe(false);
    expect(sel('a!b', 'a!b')).toBe(true); // "no special meaning if not the first character"
    expect(sel('\\!file', '!file')).toBe(true);
    expect(sel('v1\\.*', 'v1.9')).toBe(true);
    expect(sel('v1\\.*', 'v1x9')).toBe(false);
    expect(sel('a\\*b', 'a*b')).toBe(true);
    expect(sel('a\\*b', 'axb')).toBe(false);
  });

  it('takes a dot, parentheses and other regular-expression characters literally', () => {
    expect(sel('.yml', 'fyml')).toBe(false);
    expect(sel('a(b|c)', 'a(b|c)')).toBe(true);
    expect(sel('a(b|c)', 'ab')).toBe(false);
    expect(sel('x{1}', 'x{1}')).toBe(true);
    expect(sel('^main$', '^main$')).toBe(true);
  });

  it('lets a later pattern re-include and a later ! exclude, in order', () => {
    expect(sel('releases/** !releases/**-alpha', 'releases/10')).toBe(true);
    expect(sel('releases/** !releases/**-alpha', 'releases/beta/mona')).toBe(true);
    expect(sel('releases/** !releases/**-alpha', 'releases/10-alpha')).toBe(false);
    expect(sel('releases/** !releases/**-alpha', 'releases/beta/3-alpha')).toBe(false);
    expect(sel('sub-project/** !sub-project/docs/**', 'sub-project/src/index.js')).toBe(true);
    expect(sel('sub-project/** !sub-project/docs/**', 'sub-project/docs/readme.md')).toBe(false);
    expect(sel('!README.md *.md', 'README.md')).toBe(true);
  });

  it('refuses malformed patterns with a sentence', () => {
    const refused: [string, RegExp][] = [
      ['v[12', /opens "\[" at position 2 and never closes it/],
      ['v[]', /empty brackets/],
      ['[a-Z]', /range "a-Z"/],
      ['[9-0]', /range "9-0"/],
      ['[!a]', /has "!" in \[!a\]/],
      ['[_]', /has "_"/],
      ['**+', /right after a wildcard/],
      ['a*?', /right after a wildcard/],
      ['a++', /right after a wildcard/],
      ['a?+', /right after a wildcard/],
      ['x\\', /escapes nothing/],
      ['!', /nothing after it/],
      ['a'.repeat(1025), /at most 1024/],
    ];
    for (const [p, message] of refused) expect(() => compileFilterPattern(p), p).toThrow(message);
  });

  it('matches a long hostile path against a pattern full of wildcards without backtracking', () => {
    const p = compileFilterPattern(`${'**a'.repeat(100)}b`);
    const subject = 'a'.repeat(4000);
    expect(selects([p], subject)).toBe(false);
    expect(selects([p], `${subject}b`)).toBe(true);
  });
});
