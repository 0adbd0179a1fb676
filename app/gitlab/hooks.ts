// A GitLab Push Hook or Note Hook → the compact intake event its delivery workflow carries,
// or null when Trainyard does nothing with it. Reads only the payload (no API call);
// malformed fields give a PayloadError (answered 400).
import { gitlabPayloadPaths, type GitLabProjectInfo } from '../../activities/githost/gitlab-intake.js';
import type { IntakeEvent } from '../../activities/intake/events.js';
import { PayloadError } from '../github/events.js';
import { parseCommentCommand } from '../intake/command.js';

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
  checkout_sha?: string | null;
  before: string;
  after: string;
  ref: string;
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
  object_attributes: {
    id: number;
    note: string;
    noteable_type: string;
    url?: string;
    system?: boolean;
    action?: string;
  };
  merge_request?: { iid: number };
}

const SHA = /^[0-9a-f]{40}$/;

function projectInfo(p: HookProject): GitLabProjectInfo & { defaultBranch?: string } {
  if (typeof p !== 'object' || p === null || !Number.isSafeInteger(p.id))
    throw new PayloadError('project.id must be a whole number');
  for (const k of ['path_with_namespace', 'git_http_url', 'web_url'] as const) {
    if (typeof p[k] !== 'string' || p[k].length > 2000) throw new PayloadError(`project.${k} must be a string`);
  }
  return {
    projectId: p.id,
    pathWithNamespace: p.path_with_namespace,
    httpUrl: p.git_http_url,
    webUrl: p.web_url,
    ...(typeof p.default_branch === 'string' ? { defaultBranch: p.default_branch } : {}),
  };
}

/** A Push Hook (`tag` false) or Tag Push Hook: the pipelines the pushed commits touch run. */
function onPushHook(h: PushHook, tag: boolean): IntakeEvent | null {
  if (typeof h.ref !== 'string' || !h.ref.startsWith(tag ? 'refs/tags/' : 'refs/heads/')) return null;
  if (typeof h.after !== 'string' || !SHA.test(h.after) || typeof h.before !== 'string' || !SHA.test(h.before)) {
    throw new PayloadError('before and after must be full commit ids');
  }
  if (/^0+$/.test(h.after)) return null;
  // For a tag, `after` may be the annotated tag object; `checkout_sha` is the commit.
  const commit = tag ? h.checkout_sha : h.after;
  if (typeof commit !== 'string' || !SHA.test(commit)) {
    if (tag && commit === null) return null;
    throw new PayloadError('checkout_sha must be a full commit id');
  }
  return {
    kind: 'gitlab-push',
    project: projectInfo(h.project),
    ref: h.ref.slice(0, 1000),
    before: h.before,
    after: h.after,
    sha: commit,
    actor: String(h.user_username ?? h.user_name ?? 'unknown').slice(0, 255),
    paths: gitlabPayloadPaths({
      before: h.before,
      ...(Array.isArray(h.commits) ? { commits: h.commits } : {}),
      ...(typeof h.total_commits_count === 'number' ? { total_commits_count: h.total_commits_count } : {}),
    }),
  };
}

/** A Note Hook: a `/trainyard …` command in a merge request comment. */
function onNoteHook(h: NoteHook): IntakeEvent | null {
  const a = h.object_attributes;
  if (typeof a !== 'object' || a === null) throw new PayloadError('object_attributes must be an object');
  if (
    a.noteable_type !== 'MergeRequest' ||
    a.system ||
    (a.action !== undefined && a.action !== 'create') ||
    !h.merge_request
  )
    return null;
  if (typeof a.note !== 'string') throw new PayloadError('object_attributes.note must be a string');
  const command = parseCommentCommand(a.note.replace(/^\s+/, '').split(/\r?\n/, 1)[0]!.slice(0, 4096));
  if (command === null) return null;
  if (
    !Number.isSafeInteger(h.merge_request.iid) ||
    !Number.isSafeInteger(a.id) ||
    !Number.isSafeInteger(h.user?.id) ||
    typeof h.user.username !== 'string'
  ) {
    throw new PayloadError('merge_request.iid, object_attributes.id and user must be present');
  }
  return {
    kind: 'gitlab-note',
    project: projectInfo(h.project),
    mrIid: h.merge_request.iid,
    noteId: a.id,
    userId: h.user.id,
    author: h.user.username.slice(0, 255),
    command,
    ...(typeof a.url === 'string' ? { noteUrl: a.url.slice(0, 2000) } : {}),
  };
}

/**
 * The handler of each GitLab hook Trainyard acts on, by `X-Gitlab-Event`, with the
 * `object_kind` its body must carry; registered in this one place, every other hook is ignored.
 */
const HOOKS: ReadonlyMap<
  string,
  { objectKind: string; handle: (body: Record<string, unknown>) => IntakeEvent | null }
> = new Map([
  ['Push Hook', { objectKind: 'push', handle: (b) => onPushHook(b as unknown as PushHook, false) }],
  ['Tag Push Hook', { objectKind: 'tag_push', handle: (b) => onPushHook(b as unknown as PushHook, true) }],
  ['Note Hook', { objectKind: 'note', handle: (b) => onNoteHook(b as unknown as NoteHook) }],
]);

/**
 * The intake event of a verified hook (`X-Gitlab-Event` and parsed JSON body), or null to
 * ignore it. Throws PayloadError naming the field when the body is not what GitLab sends.
 */
export function gitlabIntakeEvent(event: string | undefined, body: Record<string, unknown>): IntakeEvent | null {
  const hook = event === undefined ? undefined : HOOKS.get(event);
  if (!hook || body.object_kind !== hook.objectKind) return null;
  return hook.handle(body);
}
