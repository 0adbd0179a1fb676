// GitHub Actions' filter patterns for branches, tags and paths (docs.github.com, "Workflow
// syntax for GitHub Actions" → "Filter pattern cheat sheet"):
//
//   *    zero or more characters, but not "/"        **   zero or more of any character
//   ?    zero or one of the preceding character      +    one or more of the preceding character
//   [ ]  one character listed or in a range (ranges only within a-z, A-Z or 0-9)
//   !    at the start: negates; anywhere else an ordinary character
//   \    the next character stands for itself
//
// `**/` also matches nothing, so `**/README.md` matches `README.md` and `docs/**/*.md` matches
// `docs/a.md`, as the cheat sheet's examples show. Patterns come from repository files and
// subjects from pushes, both hostile: matching runs a small NFA in time linear in
// pattern × subject, never a backtracking regular expression.

/** A compiled pattern: `negative` for a leading `!`. */
export interface FilterPattern {
  source: string;
  negative: boolean;
  /** NFA states; state `accept` accepts. */
  states: State[];
  accept: number;
}

interface State {
  /** Consuming transitions. */
  on: { test: (c: string) => boolean; to: number }[];
  /** Epsilon transitions. */
  eps: number[];
}

/** Longest pattern accepted: far beyond any real one, small enough to keep matching cheap. */
export const MAX_PATTERN_LENGTH = 1024;

const ANY = (): boolean => true;
const NOT_SLASH = (c: string): boolean => c !== '/';
const RANGE_CLASSES: [string, string][] = [
  ['a', 'z'],
  ['A', 'Z'],
  ['0', '9'],
];
const inClass = (c: string): [string, string] | undefined =>
  RANGE_CLASSES.find(([lo, hi]) => c >= lo && c <= hi && c.length === 1);

// One character (`repeat`: once, `?` zero or one, `+` one or more), a `*` or `**` run, or `**/`.
type Atom =
  | { kind: 'char'; test: (c: string) => boolean; repeat: '1' | '?' | '+' }
  | { kind: 'star'; test: (c: string) => boolean }
  | { kind: 'dirs' };

/**
 * Compiles one pattern. Throws an Error whose message is a sentence about the pattern (an
 * unclosed `[`, a range outside a-z/A-Z/0-9, a `+` or `?` after a wildcard, a trailing `\`).
 */
export function compileFilterPattern(source: string): FilterPattern {
  if (source.length > MAX_PATTERN_LENGTH)
    throw new Error(`is ${source.length} characters long; patterns may be at most ${MAX_PATTERN_LENGTH}`);
  const negative = source.startsWith('!');
  const body = negative ? source.slice(1) : source;
  if (negative && body === '') throw new Error('is "!" with nothing after it to exclude');
  const atoms: Atom[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === '*') {
      if (body[i + 1] === '*') {
        if (body[i + 2] === '/') {
          atoms.push({ kind: 'dirs' });
          i += 3;
        } else {
          atoms.push({ kind: 'star', test: ANY });
          i += 2;
        }
      } else {
        atoms.push({ kind: 'star', test: NOT_SLASH });
        i += 1;
      }
      continue;
    }
    if (c === '?' || c === '+') {
      const prev = atoms[atoms.length - 1];
      if (prev === undefined) {
        // Nothing precedes it to repeat: it stands for itself (as at the start of `+x`).
        atoms.push({ kind: 'char', test: (x) => x === c, repeat: '1' });
        i += 1;
        continue;
      }
      if (prev.kind !== 'char' || prev.repeat !== '1') {
        throw new Error(
          `has "${c}" at position ${i + (negative ? 2 : 1)} right after a wildcard, where it repeats nothing; write "\\${c}" for the character itself`,
        );
      }
      prev.repeat = c;
      i += 1;
      continue;
    }
    if (c === '[') {
      const { test, next } = bracket(body, i, negative ? 1 : 0);
      atoms.push({ kind: 'char', test, repeat: '1' });
      i = next;
      continue;
    }
    if (c === '\\') {
      const n = body[i + 1];
      if (n === undefined) throw new Error('ends with "\\", which escapes nothing');
      atoms.push({ kind: 'char', test: (x) => x === n, repeat: '1' });
      i += 2;
      continue;
    }
    atoms.push({ kind: 'char', test: (x) => x === c, repeat: '1' });
    i += 1;
  }
  const { states, accept } = build(atoms);
  return { source, negative, states, accept };
}

function bracket(body: string, start: number, offset: number): { test: (c: string) => boolean; next: number } {
  const close = body.indexOf(']', start + 1);
  if (close < 0) throw new Error(`opens "[" at position ${start + 1 + offset} and never closes it`);
  const inside = body.slice(start + 1, close);
  if (inside === '')
    throw new Error(`has empty brackets "[]" at position ${start + 1 + offset}; list at least one character`);
  const singles = new Set<string>();
  const ranges: [string, string][] = [];
  for (let j = 0; j < inside.length; j++) {
    const a = inside[j]!;
    if (inside[j + 1] === '-' && j + 2 < inside.length) {
      const b = inside[j + 2]!;
      const cls = inClass(a);
      if (cls === undefined || inClass(b) !== cls || a > b) {
        throw new Error(
          `has the range "${a}-${b}" in [${inside}]; ranges can only run within a-z, A-Z or 0-9, low to high`,
        );
      }
      ranges.push([a, b]);
      j += 2;
      continue;
    }
    if (inClass(a) === undefined) {
      throw new Error(`has "${a}" in [${inside}]; brackets hold only letters, digits and ranges like a-z, A-Z, 0-9`);
    }
    singles.add(a);
  }
  return { test: (c) => singles.has(c) || ranges.some(([lo, hi]) => c >= lo && c <= hi), next: close + 1 };
}

function build(atoms: Atom[]): { states: State[]; accept: number } {
  const states: State[] = [{ on: [], eps: [] }];
  const add = (): number => states.push({ on: [], eps: [] }) - 1;
  let cur = 0;
  for (const a of atoms) {
    if (a.kind === 'star') {
      // x*: loop here, leave by epsilon.
      states[cur]!.on.push({ test: a.test, to: cur });
      const next = add();
      states[cur]!.eps.push(next);
      cur = next;
    } else if (a.kind === 'dirs') {
      // (.*/)?: skip, or any characters then "/".
      const loop = add();
      const next = add();
      states[cur]!.eps.push(next, loop);
      states[loop]!.on.push({ test: ANY, to: loop }, { test: (c) => c === '/', to: next });
      cur = next;
    } else if (a.repeat === '?') {
      const next = add();
      states[cur]!.on.push({ test: a.test, to: next });
      states[cur]!.eps.push(next);
      cur = next;
    } else if (a.repeat === '+') {
      const loop = add();
      const next = add();
      states[cur]!.on.push({ test: a.test, to: loop });
      states[loop]!.on.push({ test: a.test, to: loop });
      states[loop]!.eps.push(next);
      cur = next;
    } else {
      const next = add();
      states[cur]!.on.push({ test: a.test, to: next });
      cur = next;
    }
  }
  return { states, accept: cur };
}

function closure(states: State[], set: Set<number>): Set<number> {
  const stack = [...set];
  while (stack.length > 0) {
    const s = stack.pop()!;
    for (const e of states[s]!.eps) {
      if (!set.has(e)) {
        set.add(e);
        stack.push(e);
      }
    }
  }
  return set;
}

/** Whether the whole of `subject` matches the pattern (ignoring its `!`). */
export function patternMatches(p: FilterPattern, subject: string): boolean {
  let current = closure(p.states, new Set([0]));
  for (const c of subject) {
    const next = new Set<number>();
    for (const s of current) for (const t of p.states[s]!.on) if (t.test(c)) next.add(t.to);
    if (next.size === 0) return false;
    current = closure(p.states, next);
  }
  return current.has(p.accept);
}

/**
 * GitHub's order rule: patterns are checked in order and the last one that matches decides;
 * a positive pattern selects, a `!` pattern deselects. Nothing matched: not selected.
 */
export function selects(patterns: readonly FilterPattern[], subject: string): boolean {
  let selected = false;
  for (const p of patterns) if (patternMatches(p, subject)) selected = !p.negative;
  return selected;
}
