// Does a push start this pipeline? GitHub Actions semantics for `on.push`: glob patterns
// where `*` stops at `/` and `**` does not, `!pattern` excludes, and the last pattern that
// matches decides.
import picomatch from 'picomatch';
import type { Pipeline } from './types.js';

function selected(patterns: readonly string[], subject: string): boolean {
  // Only exclusions listed: everything else is included (GitHub would reject such a filter).
  let result = patterns.every((p) => p.startsWith('!'));
  for (const p of patterns) {
    const negated = p.startsWith('!');
    if (picomatch.isMatch(subject, negated ? p.slice(1) : p, { dot: true })) result = !negated;
  }
  return result;
}

/**
 * `changedPaths` relative to the project root; undefined when the host did not say (too many
 * files, a force push), in which case a path filter cannot rule the push out.
 */
export function matchesPush(pipeline: Pipeline, branch: string, changedPaths: string[] | undefined): boolean {
  const push = pipeline.on.push;
  if (push === null) return false;
  const name = branch.startsWith('refs/heads/') ? branch.slice('refs/heads/'.length) : branch;
  if (push.branches !== undefined && !selected(push.branches, name)) return false;
  if (push.paths === undefined || changedPaths === undefined) return true;
  const paths = push.paths;
  return changedPaths.some((p) => selected(paths, p));
}
