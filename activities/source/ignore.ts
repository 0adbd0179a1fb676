// `.trainyardignore`: which paths of the commit a step's default code scope leaves out.
// Same syntax and matching rules as a root `.gitignore` (https://git-scm.com/docs/gitignore),
// checked against `git ls-files --others --ignored --exclude-from` in test/source/ignore.test.ts.
// The `ignore` npm package is not among this project's dependencies (and none can be added
// here), so the rules are translated to picomatch globs, which the project already uses.
import picomatch from 'picomatch';

/** The file, at the project root, that narrows the default code scope. */
export const IGNORE_FILE = '.trainyardignore';

/**
 * What the default code scope leaves out when the project has no `.trainyardignore`, and the
 * entries `trainyard init` writes into a new one (one pattern per line). A `.trainyardignore`
 * that exists replaces this list entirely.
 */
export const DEFAULT_IGNORE_PATTERNS: readonly string[] = ['*.md', 'docs/', '.github/'];

interface Rule {
  negate: boolean;
  dirOnly: boolean;
  match: (path: string) => boolean;
}

/** Decides, path by path, what a set of gitignore patterns leaves out. */
export interface IgnoreMatcher {
  /**
   * True when `path` (relative, `/`-separated, no leading `./`) is left out: it matches, or a
   * folder above it does (git never re-includes a path whose parent folder is excluded).
   */
  ignores(path: string, isDir: boolean): boolean;
}

/**
 * Compile gitignore lines (the text of a `.trainyardignore`, or DEFAULT_IGNORE_PATTERNS).
 * Blank lines and `#` comments are skipped; `!` re-includes; a trailing `/` matches folders
 * only; a pattern with a `/` before its end is anchored at the project root, one without
 * matches at any depth; `*`, `?` and `[...]` never match `/`; `**` spans folders.
 */
export function compileIgnore(lines: readonly string[]): IgnoreMatcher {
  const rules: Rule[] = [];
  for (const raw of lines) {
    const rule = compileLine(raw);
    if (rule) rules.push(rule);
  }
  const cache = new Map<string, boolean>();
  // Last matching rule wins, as in git.
  const own = (path: string, isDir: boolean): boolean => {
    let ignored = false;
    for (const r of rules) {
      if (r.dirOnly && !isDir) continue;
      if (r.match(path)) ignored = !r.negate;
    }
    return ignored;
  };
  const dirIgnored = (dir: string): boolean => {
    let v = cache.get(dir);
    if (v === undefined) {
      const slash = dir.lastIndexOf('/');
      v = (slash > 0 && dirIgnored(dir.slice(0, slash))) || own(dir, true);
      cache.set(dir, v);
    }
    return v;
  };
  return {
    ignores(path, isDir) {
      if (rules.length === 0) return false;
      const slash = path.lastIndexOf('/');
      if (slash > 0 && dirIgnored(path.slice(0, slash))) return true;
      return isDir ? dirIgnored(path) : own(path, false);
    },
  };
}

function compileLine(raw: string): Rule | undefined {
  let line = raw.replace(/\r$/, '');
  if (line === '' || line.startsWith('#')) return undefined;
  line = trimTrailingSpaces(line);
  if (line === '') return undefined;
  let negate = false;
  if (line.startsWith('!')) {
    negate = true;
    line = line.slice(1);
  } else if (line.startsWith('\\!') || line.startsWith('\\#')) {
    line = line.slice(1);
  }
  let dirOnly = false;
  if (line.endsWith('/') && !line.endsWith('\\/')) {
    dirOnly = true;
    line = line.replace(/\/+$/, '');
  }
  if (line === '') return undefined;
  // A slash at the start or in the middle anchors the pattern at the root.
  const anchored = line.includes('/');
  if (line.startsWith('/')) line = line.slice(1);
  let glob = anchored ? line : `**/${line}`;
  // Git's trailing `/**` matches what is inside a folder, never the folder itself; picomatch's
  // matches the folder too.
  if (glob.endsWith('/**')) glob += '/*';
  // dot: `*` matches names starting with a dot, as in git; no brace or extglob syntax, which
  // gitignore does not have (`{a,b}` and `+(x)` are literal text there).
  const m = picomatch(glob, { dot: true, nobrace: true, noextglob: true, posix: true });
  return { negate, dirOnly, match: (p) => m(p) };
}

/** Trailing spaces are dropped unless escaped with a backslash (gitignore rule). */
function trimTrailingSpaces(line: string): string {
  let end = line.length;
  while (end > 0 && line[end - 1] === ' ') {
    let backslashes = 0;
    for (let i = end - 2; i >= 0 && line[i] === '\\'; i--) backslashes++;
    if (backslashes % 2 === 1) break;
    end--;
  }
  return line.slice(0, end);
}

/** The patterns in force for a project: its ignore file's lines, or the defaults when it has none. */
export function ignoreLines(fileText: string | undefined): readonly string[] {
  return fileText === undefined ? DEFAULT_IGNORE_PATTERNS : fileText.split('\n');
}
