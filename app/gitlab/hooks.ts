// GitLab Push Hook and Note Hook payloads → the shared intake.
import type { GitLabApi } from '../../activities/githost/gitlab-client.js';
import { gitlabStatus } from '../../activities/githost/gitlab-client.js';
import { parseCommentCommand } from '../intake/command.js';
import { handleComment, type CommentOutcome } from '../intake/comment.js';
import type { Intake } from '../intake/context.js';
import { handlePush, type PushOutcome } from '../intake/push.js';
import { GitLabConversation, GitLabRepoPort, type GitLabProjectInfo } from './port.js';

interface HookProject {
  id: number;
  path_with_namespace: string;
  git_http_url: string;
  web_url: string;
  default_branch?: string;
}

/** A Push Hook or a Tag Push Hook (same fields; `checkout_sha` is the commit, null on deletion). */
export interface PushHook {
  object_kind: 'push' | 'tag_push';
  before: string;
  after: string;
  ref: string;
  checkout_sha?: string | null;
  user_username?: string;
  user_name?: string;
  project_id: number;
  project: HookProject;
  commits?: { added?: string[]; modified?: string[]; removed?: string[] }[];
  total_commits_count?: number;
}

export interface NoteHook {
  object_kind: 'note';
  user: { id: number; username: string };
  project_id: number;
  project: HookProject;
  object_attributes: { id: number; note: string; noteable_type: string; url?: string; system?: boolean; action?: string };
  merge_request?: { iid: number };
}

export function projectInfo(p: HookProject): GitLabProjectInfo {
  return { projectId: p.id, pathWithNamespace: p.path_with_namespace, httpUrl: p.git_http_url, webUrl: p.web_url };
}

/** Does this note carry a command we act on? Checked before queueing, from the payload alone. */
export function isTrainNote(h: NoteHook): boolean {
  const a = h.object_attributes;
  return a.noteable_type === 'MergeRequest' && !a.system && (a.action === undefined || a.action === 'create') &&
    h.merge_request !== undefined && parseCommentCommand(a.note) !== null;
}

export interface GitLabHookDeps {
  api: GitLabApi;
  intake: Intake;
  verdictUrl: (id: string) => string | undefined;
}

export async function onPushHook(deps: GitLabHookDeps, h: PushHook, deliveryId: string): Promise<PushOutcome> {
  const port = new GitLabRepoPort(deps.api, projectInfo(h.project), deps.intake.records, deps.verdictUrl);
  // For a tag, `after` may be the annotated tag object; `checkout_sha` is the commit.
  const sha = h.object_kind === 'tag_push' ? h.checkout_sha ?? '' : h.after;
  return handlePush(port, deps.intake, {
    ref: h.ref, sha, deleted: /^0+$/.test(h.after), actor: h.user_username ?? h.user_name ?? 'unknown', deliveryId,
    changedPaths: () => changedPaths(deps.api, h),
  });
}

export async function onNoteHook(deps: GitLabHookDeps, h: NoteHook): Promise<CommentOutcome> {
  const info = projectInfo(h.project);
  const port = new GitLabRepoPort(deps.api, info, deps.intake.records, deps.verdictUrl);
  const convo = new GitLabConversation(deps.api, deps.intake.records, info, h.merge_request!.iid, h.object_attributes.id, h.user.id,
    (id) => deps.intake.runUrl(id));
  return handleComment(port, convo, deps.intake, {
    commentId: h.object_attributes.id, author: h.user.username, body: h.object_attributes.note,
    ...(h.object_attributes.url ? { commentUrl: h.object_attributes.url } : {}),
  });
}

/** GitLab lists at most 20 commits in a push hook; beyond that, or for a new branch, ask compare. */
async function changedPaths(api: GitLabApi, h: PushHook): Promise<string[] | undefined> {
  const commits = h.commits ?? [];
  const newBranch = /^0+$/.test(h.before);
  if (!newBranch && commits.length > 0 && (h.total_commits_count ?? commits.length) <= commits.length) {
    const paths = new Set<string>();
    for (const c of commits) for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]) paths.add(f);
    return [...paths];
  }
  const from = newBranch ? h.project.default_branch : h.before;
  if (!from) return undefined;
  try {
    const cmp = await api.Repositories.compare(h.project.id, from, h.after);
    if (cmp.compare_timeout || !cmp.diffs) return undefined;
    const paths = new Set<string>();
    for (const d of cmp.diffs) {
      paths.add(d.new_path);
      paths.add(d.old_path);
    }
    return [...paths];
  } catch (err) {
    if (gitlabStatus(err) === 404) return undefined;
    throw err;
  }
}
