// A verified GitHub delivery → the compact intake event its delivery workflow carries, or
// null when Trainyard does nothing with it (another event, a comment that is no command, a
// tag push, a branch deletion, another app's check). Reads only the payload: no API call,
// so the webhook is answered as soon as Temporal has recorded the delivery. The payload is
// hostile until proven otherwise: every field is type-checked; a malformed one gives a
// PayloadError (answered 400).
import { payloadPaths } from '../../activities/githost/github-changes.js';
import type { GitHubRepo, IntakeEvent } from '../../activities/intake/events.js';
import { parseCommentCommand } from '../intake/command.js';

export class PayloadError extends Error {
  override name = 'PayloadError';
}

type Json = Record<string, unknown>;

const obj = (v: unknown, what: string): Json => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PayloadError(`${what} must be an object`);
  return v as Json;
};
const str = (v: unknown, what: string, max = 1000): string => {
  if (typeof v !== 'string' || v.length > max)
    throw new PayloadError(`${what} must be a string of at most ${max} characters`);
  return v;
};
const int = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new PayloadError(`${what} must be a whole number`);
  return v;
};
const optStr = (v: unknown, what: string, max = 1000): string | undefined =>
  v === undefined || v === null ? undefined : str(v, what, max);
const SHA = /^[0-9a-f]{40}$/;
const sha = (v: unknown, what: string): string => {
  const s = str(v, what, 64);
  if (!SHA.test(s)) throw new PayloadError(`${what} must be a full commit id`);
  return s;
};

/** Longest first line of a comment carried; the parser refuses commands past 2,000 characters. */
const MAX_COMMAND_LINE = 4096;

function repoOf(p: Json): GitHubRepo | undefined {
  const installation =
    p.installation === undefined || p.installation === null ? undefined : obj(p.installation, 'installation');
  if (!installation) return undefined;
  const r = obj(p.repository, 'repository');
  const owner = obj(r.owner, 'repository.owner');
  const defaultBranch = optStr(r.default_branch, 'repository.default_branch', 255);
  return {
    installationId: int(installation.id, 'installation.id'),
    owner: str(owner.login ?? owner.name, 'repository.owner.login', 100),
    repo: str(r.name, 'repository.name', 100),
    cloneUrl: str(r.clone_url, 'repository.clone_url', 2000),
    ...(defaultBranch ? { defaultBranch } : {}),
  };
}

/** `push`: a push to a branch or tag: the pipelines it touches run. */
function onPush(p: Json, action: string | undefined): IntakeEvent | null {
  const ref = str(p.ref, 'ref', 1000);
  const tag = ref.startsWith('refs/tags/');
  if (p.deleted === true || !(ref.startsWith('refs/heads/') || tag)) return null;
  const repo = repoOf(p);
  if (!repo) return null;
  const after = sha(p.after, 'after');
  if (/^0+$/.test(after)) return null;
  // A tag's `after` is the tag object when the tag is annotated; `head_commit` is the
  // commit it points at (sent on tag pushes since GitHub's 2021-10-01 change).
  const headCommit = p.head_commit ? obj(p.head_commit, 'head_commit') : undefined;
  const commit = tag ? (headCommit ? sha(headCommit.id, 'head_commit.id') : undefined) : after;
  if (commit === undefined) return null;
  const commits = Array.isArray(p.commits)
    ? (p.commits as Json[]).filter((c) => typeof c === 'object' && c !== null)
    : [];
  const sender = p.sender ? obj(p.sender, 'sender') : undefined;
  const pusher = p.pusher ? obj(p.pusher, 'pusher') : undefined;
  const before = sha(p.before, 'before');
  const created = p.created === true;
  return {
    kind: 'github-push',
    repo,
    ref,
    before,
    after,
    sha: commit,
    created,
    actor: optStr(sender?.login, 'sender.login', 100) ?? optStr(pusher?.name, 'pusher.name', 100) ?? 'unknown',
    paths: payloadPaths({
      before,
      created,
      forced: p.forced === true,
      commits: commits as { added?: string[]; modified?: string[]; removed?: string[] }[],
    }),
  };
}

/** `issue_comment`: a `/trainyard …` command in a pull request comment. */
function onIssueComment(p: Json, action: string | undefined): IntakeEvent | null {
  if (action !== 'created') return null;
  const issue = obj(p.issue, 'issue');
  const comment = obj(p.comment, 'comment');
  const user = comment.user ? obj(comment.user, 'comment.user') : undefined;
  if (!issue.pull_request || user?.type === 'Bot') return null;
  // Only the first line is a command (command.ts); the rest of a long comment is never carried.
  const line = str(comment.body, 'comment.body', 25 * 1024 * 1024)
    .replace(/^\s+/, '')
    .split(/\r?\n/, 1)[0]!
    .slice(0, MAX_COMMAND_LINE);
  const command = parseCommentCommand(line);
  if (command === null) return null;
  const repo = repoOf(p);
  if (!repo) return null;
  const commentUrl = optStr(comment.html_url, 'comment.html_url', 2000);
  return {
    kind: 'github-comment',
    repo,
    issue: int(issue.number, 'issue.number'),
    issueUrl: str(issue.html_url, 'issue.html_url', 2000),
    commentId: int(comment.id, 'comment.id'),
    author: str(user?.login ?? 'ghost', 'comment.user.login', 100),
    command,
    ...(commentUrl ? { commentUrl } : {}),
  };
}

/** `check_run`: "Re-run" or a requested action (rerun, cancel) on one of our check runs. */
function onCheckRun(p: Json, action: string | undefined): IntakeEvent | null {
  const identifier =
    action === 'requested_action'
      ? optStr(obj(p.requested_action ?? {}, 'requested_action').identifier, 'requested_action.identifier', 20)
      : undefined;
  const kind =
    action === 'rerequested' ? 'rerun' : identifier === 'rerun' || identifier === 'cancel' ? identifier : undefined;
  if (!kind) return null;
  const run = obj(p.check_run, 'check_run');
  const checkName = str(run.name, 'check_run.name', 300);
  if (!checkName.startsWith('trainyard/')) return null;
  const repo = repoOf(p);
  if (!repo) return null;
  return {
    kind: 'github-check-run',
    repo,
    action: kind,
    checkRunId: int(run.id, 'check_run.id'),
    checkName,
    headSha: sha(run.head_sha, 'check_run.head_sha'),
    externalId: optStr(run.external_id, 'check_run.external_id', 1000) ?? '',
    actor: str(obj(p.sender, 'sender').login, 'sender.login', 100),
  };
}

/** `check_suite`: "Re-run all checks" on a suite. */
function onCheckSuite(p: Json, action: string | undefined): IntakeEvent | null {
  // "Re-run all checks" (and "Re-run failed checks", which GitHub sends the same way).
  if (action !== 'rerequested') return null;
  const repo = repoOf(p);
  if (!repo) return null;
  const suite = obj(p.check_suite, 'check_suite');
  return {
    kind: 'github-check-suite',
    repo,
    suiteId: int(suite.id, 'check_suite.id'),
    headSha: sha(suite.head_sha, 'check_suite.head_sha'),
    actor: str(obj(p.sender, 'sender').login, 'sender.login', 100),
  };
}

type EventHandler = (payload: Json, action: string | undefined) => IntakeEvent | null;

/**
 * The handler of each GitHub event Trainyard acts on, by `X-GitHub-Event` name, registered in
 * this one place (as a Probot app's `app.on(name, handler)`); every other event is ignored.
 */
const HANDLERS: ReadonlyMap<string, EventHandler> = new Map([
  ['push', onPush],
  ['issue_comment', onIssueComment],
  ['check_run', onCheckRun],
  ['check_suite', onCheckSuite],
]);

/**
 * The intake event of a verified delivery (`X-GitHub-Event` name and parsed JSON body), or null
 * to ignore it. Throws PayloadError naming the field when the body is not what GitHub sends.
 */
export function githubIntakeEvent(name: string, body: unknown): IntakeEvent | null {
  const p = obj(body, 'the payload');
  const action = optStr(p.action, 'action', 100);
  return HANDLERS.get(name)?.(p, action) ?? null;
}
