// Deterministic identities. A webhook redelivered, or a second push event for the same
// commit, computes the same workflow id, and Temporal refuses to start it twice: dedupe
// lives in Temporal, not in this process's memory.
import { createHash } from 'node:crypto';

export type HostKind = 'github' | 'gitlab';

/** `owner/repo` on GitHub; the numeric project id on GitLab (paths can be renamed, ids cannot). */
export type RepoKey = string;

export function pushWorkflowId(host: HostKind, repo: RepoKey, sha: string, pipeline: string): string {
  return `push:${host}:${repo}:${sha}:${pipeline}`;
}

/** Each `/train` comment is its own request; the pipeline is part of the id so the id says what ran. */
export function commentWorkflowId(host: HostKind, repo: RepoKey, commentId: number | string, pipeline: string): string {
  return `comment:${host}:${repo}:${commentId}:${pipeline}`;
}

/** A Re-run click is one delivery: its redelivery must not start a third run. */
export function rerunWorkflowId(host: HostKind, repo: RepoKey, checkRunId: number, deliveryId: string): string {
  return `rerun:${host}:${repo}:${checkRunId}:${deliveryId}`;
}

/**
 * The workflow id of a concurrency group (workflows/concurrency.ts): groups are per
 * repository, as GitHub Actions' are. A long group (a long branch name) is hashed so the id
 * stays well inside Temporal's workflow id limit.
 */
export function concurrencyGroupId(host: HostKind, repo: RepoKey, group: string): string {
  return `concurrency:${host}:${repo}:${group.length <= 300 ? group : `h-${createHash('sha256').update(group).digest('hex')}`}`;
}

/**
 * The delivery workflow's id: one per webhook delivery, whichever replica received it, so a
 * redelivery (same X-GitHub-Delivery / Idempotency-Key) is refused by Temporal
 * (WorkflowIdReusePolicy REJECT_DUPLICATE) for as long as the namespace retains the first.
 */
export function deliveryWorkflowId(host: HostKind, deliveryId: string): string {
  return `delivery:${host}:${deliveryId}`;
}

/**
 * The delivery id: the host's header when it is a plain token (GitHub sends a GUID, GitLab
 * a UUID); a digest of it when it has other characters or is long; and, when the header is
 * missing (a hand-made or proxied request), the SHA-256 of the body — a resend of the same
 * bytes is the same delivery, and two real events never share a body (each carries its own
 * commit, comment or check ids and timestamps).
 */
export function deliveryIdFrom(header: string | undefined, body: Buffer | string): string {
  const h = header?.trim();
  if (h && /^[A-Za-z0-9._-]{1,100}$/.test(h)) return h;
  if (h) return `h-${createHash('sha256').update(h).digest('hex').slice(0, 40)}`;
  return `b-${createHash('sha256').update(body).digest('hex')}`;
}

/** Short stable run id for lineage and reports, derived from the workflow id. */
export function runIdFor(workflowId: string): string {
  return `r-${createHash('sha256').update(workflowId).digest('hex').slice(0, 20)}`;
}

/** The check-run / commit-status name of a pipeline: what branch protection requires. */
export function checkName(pipeline: string): string {
  return `trainyard/${pipeline}`;
}

/**
 * Turns arbitrary text (repo paths, pipeline names) into record-key segments the store
 * accepts ([A-Za-z0-9._:-], not `.`/`..`); text outside that alphabet is hex-encoded so two
 * different inputs never share a key.
 */
export function keySegment(text: string): string {
  if (/^[A-Za-z0-9_:-][A-Za-z0-9._:-]*$/.test(text) && text.length <= 100) return text;
  return `x-${Buffer.from(text, 'utf8').toString('hex').slice(0, 180)}${text.length > 90 ? `-${hash8(text)}` : ''}`;
}

/** Record-key path of a repository: one segment per path part. */
export function repoKeyPath(host: HostKind, repo: RepoKey): string {
  return [host, ...repo.split('/').map(keySegment)].join('/');
}

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
