// Which paths a GitHub push changed: from the payload's commits when it lists them all (read
// where the webhook arrives, see payloadPaths), else from the compare API; undefined (=
// cannot rule any pipeline out) when neither can say.
import type { GitHubApi } from './github-client.js';
import { httpStatus } from './github-intake.js';

/** GitHub lists at most 2048 commits in a push payload. */
const PAYLOAD_COMMIT_CAP = 2048;
/** The compare API lists at most 300 files. */
const COMPARE_FILE_CAP = 300;
/** Beyond this many paths (or characters of paths) the delivery carries none and compare decides. */
export const MAX_CARRIED_PATHS = 2000;
export const MAX_CARRIED_PATH_CHARS = 128 * 1024;

export interface PushCommitLists {
  before: string;
  created: boolean;
  forced: boolean;
  commits: { added?: string[]; modified?: string[]; removed?: string[] }[];
}

/**
 * The paths the payload's commits list, or null when the payload cannot tell (a new branch,
 * a force push, no or too many commits) or the list is too long to carry in a bounded
 * delivery record (MAX_CARRIED_PATHS, MAX_CARRIED_PATH_CHARS).
 */
export function payloadPaths(p: PushCommitLists): string[] | null {
  if (p.created || /^0+$/.test(p.before) || p.forced) return null;
  if (p.commits.length === 0 || p.commits.length >= PAYLOAD_COMMIT_CAP) return null;
  const paths = new Set<string>();
  let chars = 0;
  for (const c of p.commits) {
    for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]) {
      if (typeof f !== 'string' || paths.has(f)) continue;
      paths.add(f);
      chars += f.length;
      if (paths.size > MAX_CARRIED_PATHS || chars > MAX_CARRIED_PATH_CHARS) return null;
    }
  }
  return [...paths];
}

export interface PushRange {
  before: string;
  after: string;
  created: boolean;
  defaultBranch?: string;
  /** payloadPaths() of the delivery. */
  paths: string[] | null;
}

export async function changedPathsOfPush(
  api: GitHubApi,
  ref: { owner: string; repo: string },
  p: PushRange,
): Promise<string[] | undefined> {
  if (p.paths) return p.paths;
  // A new branch: what it changes is its difference from the default branch.
  if (p.created || /^0+$/.test(p.before)) {
    return p.defaultBranch ? compare(api, ref.owner, ref.repo, p.defaultBranch, p.after) : undefined;
  }
  return compare(api, ref.owner, ref.repo, p.before, p.after);
}

async function compare(
  api: GitHubApi,
  owner: string,
  repo: string,
  base: string,
  head: string,
): Promise<string[] | undefined> {
  try {
    const { data } = await api.rest.repos.compareCommitsWithBasehead({
      owner,
      repo,
      basehead: `${base}...${head}`,
      per_page: 100,
    });
    const files = data.files ?? [];
    if (files.length >= COMPARE_FILE_CAP) return undefined;
    const paths = new Set<string>();
    for (const f of files) {
      paths.add(f.filename);
      if (f.previous_filename) paths.add(f.previous_filename);
    }
    return [...paths];
  } catch (err) {
    // A force push can leave `before` unreachable; then nothing rules a pipeline out.
    if (httpStatus(err) === 404 || httpStatus(err) === 422) return undefined;
    throw err;
  }
}
