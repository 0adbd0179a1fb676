// Which paths a GitHub push changed: from the payload's commits when it lists them all,
// else from the compare API; undefined (= cannot rule any pipeline out) when neither can say.
import type { GitHubApi } from '../../activities/githost/github-client.js';
import type { RepoPort } from '../intake/port.js';
import { httpStatus } from './port.js';

/** GitHub lists at most 2048 commits in a push payload. */
const PAYLOAD_COMMIT_CAP = 2048;
/** The compare API lists at most 300 files. */
const COMPARE_FILE_CAP = 300;

export interface PushCommitLists {
  before: string;
  after: string;
  created: boolean;
  forced: boolean;
  commits: { added?: string[]; modified?: string[]; removed?: string[] }[];
  repository: { default_branch?: string };
}

export async function changedPathsOfPush(api: GitHubApi, port: RepoPort, p: PushCommitLists): Promise<string[] | undefined> {
  const [owner, repo] = port.repoKey.split('/') as [string, string];
  // A new branch: what it changes is its difference from the default branch.
  if (p.created || /^0+$/.test(p.before)) {
    return p.repository.default_branch ? compare(api, owner, repo, p.repository.default_branch, p.after) : undefined;
  }
  if (p.commits.length > 0 && p.commits.length < PAYLOAD_COMMIT_CAP && !p.forced) {
    const paths = new Set<string>();
    for (const c of p.commits) for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]) paths.add(f);
    return [...paths];
  }
  return compare(api, owner, repo, p.before, p.after);
}

async function compare(api: GitHubApi, owner: string, repo: string, base: string, head: string): Promise<string[] | undefined> {
  try {
    const { data } = await api.rest.repos.compareCommitsWithBasehead({ owner, repo, basehead: `${base}...${head}`, per_page: 100 });
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
