// Does a push start this pipeline? GitHub Actions' `on.push` rules (docs.github.com, Workflow
// syntax → on.push.<branches|tags|branches-ignore|tags-ignore> and on.push.<paths|paths-ignore>):
//
// - `branches` / `branches-ignore` are checked against the branch name, `tags` / `tags-ignore`
//   against the tag name, each list in order with the last matching pattern deciding.
// - Only branch filters given: tag pushes never match; only tag filters given: branch pushes
//   never match; neither: every branch and every tag matches.
// - Path filters apply to branch pushes only ("Path filters are not evaluated for pushes of
//   tags"): `paths` needs at least one changed path selected, `paths-ignore` at least one
//   changed path not ignored; a push that changed nothing matches no path filter.
import { compileFilterPattern, selects, type FilterPattern } from './filters.js';
import type { Pipeline, PushTrigger } from './types.js';

function patterns(list: readonly string[]): FilterPattern[] {
  // The parser refused every pattern that does not compile, so this does not throw.
  return list.map(compileFilterPattern);
}

/** `refs/heads/x` → branch x, `refs/tags/v1` → tag v1; a bare name is taken as a branch. */
export function parseRef(ref: string): { kind: 'branch' | 'tag'; name: string } | undefined {
  if (ref.startsWith('refs/heads/')) return { kind: 'branch', name: ref.slice('refs/heads/'.length) };
  if (ref.startsWith('refs/tags/')) return { kind: 'tag', name: ref.slice('refs/tags/'.length) };
  if (ref.startsWith('refs/')) return undefined;
  return { kind: 'branch', name: ref };
}

/** Whether the push's ref passes the branch and tag filters (paths not considered). */
export function refMatches(push: PushTrigger, ref: string): boolean {
  const r = parseRef(ref);
  if (r === undefined) return false;
  const [select, ignore, otherSet] =
    r.kind === 'branch'
      ? [push.branches, push.branchesIgnore, push.tags !== undefined || push.tagsIgnore !== undefined]
      : [push.tags, push.tagsIgnore, push.branches !== undefined || push.branchesIgnore !== undefined];
  if (select !== undefined) return selects(patterns(select), r.name);
  if (ignore !== undefined) return !selects(patterns(ignore), r.name);
  return !otherSet;
}

/**
 * Whether a push of `ref` (`refs/heads/…`, `refs/tags/…`, or a bare branch name) that changed
 * `changedPaths` (relative to the project root; undefined when the host did not say: too many
 * files, a new branch) starts the pipeline. Unknown changed paths never rule a push out.
 */
export function matchesPush(pipeline: Pipeline, ref: string, changedPaths: string[] | undefined): boolean {
  const push = pipeline.on.push;
  if (push === null || !refMatches(push, ref)) return false;
  if (parseRef(ref)?.kind === 'tag' || changedPaths === undefined) return true;
  if (push.paths !== undefined) {
    const ps = patterns(push.paths);
    return changedPaths.some((p) => selects(ps, p));
  }
  if (push.pathsIgnore !== undefined) {
    const ps = patterns(push.pathsIgnore);
    return changedPaths.some((p) => !selects(ps, p));
  }
  return true;
}

/** True when the pipeline filters pushes by changed paths (so the host must be asked for them). */
export function hasPathFilter(push: PushTrigger | null): boolean {
  return push !== null && (push.paths !== undefined || push.pathsIgnore !== undefined);
}
