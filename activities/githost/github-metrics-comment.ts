// The one PR comment per pipeline that shows its metrics against the base, edited in place
// by every later run of the PR instead of adding a comment each time. It is found again by
// a hidden HTML comment (compare.ts diffMarker), which GitHub keeps but does not show.
import { diffMarker } from '../lineage/compare.js';
import { neutraliseBidi } from '../usertext.js';
import type { RepoRef } from './github-checks.js';
import type { GitHubApi } from './github-client.js';

/** Pages of 100 comments searched for the marker (a PR with more comments gets a new one). */
const MAX_PAGES = 30;
/** GitHub's limit on a comment body (characters). */
const COMMENT_MAX = 65_536;

/**
 * Creates or edits the PR's metrics comment of `pipeline`. Returns the number of writes
 * made (1), for the caller's write budget. Idempotent: a retry edits what the first try made.
 */
export async function upsertMetricsComment(
  api: GitHubApi,
  repo: RepoRef,
  pr: number,
  pipeline: string,
  markdown: string,
): Promise<number> {
  const marker = diffMarker(pipeline);
  const text = neutraliseBidi(markdown);
  const body = `${text.length > COMMENT_MAX - marker.length - 20 ? `${text.slice(0, COMMENT_MAX - marker.length - 40)}\n\n…(cut)` : text}\n\n${marker}`;
  let found: number | undefined;
  let pages = 0;
  for await (const page of api.paginate.iterator(api.rest.issues.listComments, {
    ...repo,
    issue_number: pr,
    per_page: 100,
  })) {
    found = page.data.find((c) => c.body?.includes(marker))?.id;
    if (found !== undefined || ++pages >= MAX_PAGES) break;
  }
  if (found !== undefined) await api.rest.issues.updateComment({ ...repo, comment_id: found, body });
  else await api.rest.issues.createComment({ ...repo, issue_number: pr, body });
  return 1;
}
