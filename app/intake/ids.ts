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
