// Durable git-host bookkeeping, kept as records in the artifact store (S3 or a folder) so
// it survives restarts and is shared by every server replica: fork trust, the last
// successful run of each pipeline, what each run was started with (for Re-run and the
// check-run annotations), GitLab report notes, processed deliveries.
import { createHash } from 'node:crypto';
import type { ArtifactStore } from '../store/types.js';
import type { ParamValue, Trigger } from '../../model/types.js';
import { keySegment, repoKeyPath, type HostKind, type RepoKey } from '../intake/ids.js';

export interface RunMeta {
  workflowId: string;
  runId: string;
  host: HostKind;
  repoKey: RepoKey;
  /** `owner/repo` or `group/project`, for messages and policy. */
  repoPath: string;
  sha: string;
  pipeline: string;
  pipelineFile: string;
  /** 1-based line of each step's key, for annotations on failures. */
  stepLines: Record<string, number>;
  params: Record<string, ParamValue>;
  /** Raw `key=value` text the run was asked for (a Re-run asks again with the same). */
  given: Record<string, string>;
  pr?: number;
  /** The branch the run is for (a push's, or a pull request's head in this repository): a Re-run's concurrency group uses it. */
  branch?: string;
  trigger: Trigger;
  /** Why the run got no secrets (a fork's pull request); a Re-run of it gets none either. */
  secretsWithheld?: string;
  createdAt: string;
  /** The GitHub check run the run reports to, once created. */
  checkRunId?: number;
  checkUrl?: string;
  final?: { conclusion: string; finishedAt: string; report: string };
}

export interface LastSuccess {
  runId: string;
  workflowId: string;
  sha: string;
  finishedAt: string;
  url?: string;
}

export interface Trust {
  by: string;
  at: string;
}

const MAX_STORED_REPORT = 1024 * 1024;

function hashed(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 40);
}

export class GitHostRecords {
  constructor(readonly store: ArtifactStore) {}

  static runKey(workflowId: string): string {
    return `githost/runs/${hashed(workflowId)}`;
  }

  async putRun(meta: RunMeta): Promise<void> {
    await this.store.putRecord(GitHostRecords.runKey(meta.workflowId), meta);
  }

  async getRun(workflowId: string): Promise<RunMeta | undefined> {
    const meta = await this.store.getRecord<RunMeta>(GitHostRecords.runKey(workflowId));
    return meta && meta.workflowId === workflowId ? meta : undefined;
  }

  async updateRun(workflowId: string, patch: Partial<RunMeta>): Promise<RunMeta | undefined> {
    const meta = await this.getRun(workflowId);
    if (!meta) return undefined;
    const next = { ...meta, ...patch, workflowId };
    await this.putRun(next);
    return next;
  }

  async finishRun(
    workflowId: string,
    final: { conclusion: string; report: string },
    checkUrl?: string,
  ): Promise<RunMeta | undefined> {
    const meta = await this.getRun(workflowId);
    if (!meta) return undefined;
    const report =
      final.report.length > MAX_STORED_REPORT ? `${final.report.slice(0, MAX_STORED_REPORT)}\n\n…(cut)` : final.report;
    const next: RunMeta = {
      ...meta,
      ...(checkUrl ? { checkUrl } : {}),
      final: { conclusion: final.conclusion, finishedAt: new Date().toISOString(), report },
    };
    await this.putRun(next);
    return next;
  }

  private lastKey(host: HostKind, repo: RepoKey, pipeline: string): string {
    return `githost/last-success/${repoKeyPath(host, repo)}/${keySegment(pipeline)}`;
  }

  async putLastSuccess(host: HostKind, repo: RepoKey, pipeline: string, value: LastSuccess): Promise<void> {
    await this.store.putRecord(this.lastKey(host, repo, pipeline), value);
  }

  async getLastSuccess(host: HostKind, repo: RepoKey, pipeline: string): Promise<LastSuccess | undefined> {
    return this.store.getRecord<LastSuccess>(this.lastKey(host, repo, pipeline));
  }

  /** Trust is per head commit: a push after the approval is not covered by it. */
  private trustKey(host: HostKind, repo: RepoKey, pr: number, sha: string): string {
    return `githost/trust/${repoKeyPath(host, repo)}/pr-${pr}/${keySegment(sha)}`;
  }

  async trust(host: HostKind, repo: RepoKey, pr: number, sha: string, by: string): Promise<void> {
    await this.store.putRecord(this.trustKey(host, repo, pr, sha), {
      by,
      at: new Date().toISOString(),
    } satisfies Trust);
  }

  async trusted(host: HostKind, repo: RepoKey, pr: number, sha: string): Promise<Trust | undefined> {
    return this.store.getRecord<Trust>(this.trustKey(host, repo, pr, sha));
  }

  private noteKey(project: number, mr: number, pipeline: string): string {
    return `githost/gitlab-notes/${project}/mr-${mr}/${keySegment(pipeline)}`;
  }

  async getReportNote(project: number, mr: number, pipeline: string): Promise<number | undefined> {
    return (await this.store.getRecord<{ noteId: number }>(this.noteKey(project, mr, pipeline)))?.noteId;
  }

  async putReportNote(project: number, mr: number, pipeline: string, noteId: number): Promise<void> {
    await this.store.putRecord(this.noteKey(project, mr, pipeline), { noteId });
  }

  private static verdictKey(pageId: string): string {
    return `githost/verdicts/${hashed(pageId)}`;
  }

  /** The full text of a check that ended without a run, for hosts whose status holds one line. */
  async putVerdict(pageId: string, verdict: { title: string; summary: string }): Promise<void> {
    await this.store.putRecord(GitHostRecords.verdictKey(pageId), { pageId, ...verdict });
  }

  async getVerdict(pageId: string): Promise<{ title: string; summary: string } | undefined> {
    const v = await this.store.getRecord<{ pageId: string; title: string; summary: string }>(
      GitHostRecords.verdictKey(pageId),
    );
    return v && v.pageId === pageId ? { title: v.title, summary: v.summary } : undefined;
  }

  private deliveryKey(host: HostKind, id: string): string {
    return `githost/deliveries/${host}/${keySegment(id)}`;
  }

  /** A delivery is marked only after it was handled, so a failed one can be redelivered. */
  async deliveryHandled(host: HostKind, id: string): Promise<boolean> {
    return (await this.store.getRecord(this.deliveryKey(host, id))) !== undefined;
  }

  async markDelivery(host: HostKind, id: string): Promise<void> {
    await this.store.putRecord(this.deliveryKey(host, id), { at: new Date().toISOString() });
  }
}
