// Run status → GitLab commit status (pending, running, success, failed, canceled) and, for
// runs asked for on a merge request, the report as one MR note per pipeline, edited in
// place when the pipeline runs again.
import type { Logger } from 'pino';
import type { PublishRequest, StatusTarget } from '../../model/types.js';
import { checkName } from '../intake/ids.js';
import { neutraliseBidi } from '../usertext.js';
import { clipChars, progressTitle } from './text.js';
import { supersededSummary, supersededText } from '../report/statetext.js';
import { gitlabMessage, gitlabStatus, retryOnConflict, type GitLabApi } from './gitlab-client.js';
import type { RunLinks } from './links.js';
import type { GitHostRecords } from './records.js';

type GitLabTarget = Extract<StatusTarget, { kind: 'gitlab' }>;
export type GitLabState = 'pending' | 'running' | 'success' | 'failed' | 'canceled';

const FIELD_MAX = 255;
/** GitLab notes are limited to 1,000,000 characters. */
const NOTE_MAX = 999_000;

const FINAL_STATE: Record<NonNullable<PublishRequest['final']>['conclusion'], GitLabState> = {
  success: 'success',
  failure: 'failed',
  cancelled: 'canceled',
  timed_out: 'failed',
};
const FINAL_WORD: Record<NonNullable<PublishRequest['final']>['conclusion'], string> = {
  success: 'Succeeded',
  failure: 'Failed',
  cancelled: 'Cancelled',
  timed_out: 'Timed out',
};

export interface StatusFields {
  name: string;
  description: string;
  targetUrl?: string;
}

/** Posts a commit status; a repeat of the current state is not an error. */
export async function postCommitStatus(
  api: GitLabApi,
  projectId: number,
  sha: string,
  state: GitLabState,
  f: StatusFields,
): Promise<void> {
  const targetUrl = f.targetUrl && f.targetUrl.length <= FIELD_MAX ? f.targetUrl : undefined;
  try {
    await retryOnConflict(() =>
      api.Commits.editStatus(projectId, sha, state, {
        name: f.name,
        description: clipChars(neutraliseBidi(f.description), FIELD_MAX),
        ...(targetUrl ? { targetUrl } : {}),
      }),
    );
  } catch (err) {
    // GitLab refuses a transition to the state a status already has (e.g. running → running).
    if (gitlabStatus(err) === 400 && /cannot transition/i.test(gitlabMessage(err))) return;
    throw err;
  }
}

/** Creates the MR's report note for this pipeline, or edits the one posted before. */
export async function upsertReportNote(
  api: GitLabApi,
  records: GitHostRecords,
  projectId: number,
  mr: number,
  pipeline: string,
  body: string,
): Promise<void> {
  const safe = neutraliseBidi(body);
  const text = safe.length > NOTE_MAX ? `${safe.slice(0, NOTE_MAX)}\n\n…(cut)` : safe;
  const noteId = await records.getReportNote(projectId, mr, pipeline);
  if (noteId !== undefined) {
    try {
      await api.MergeRequestNotes.edit(projectId, mr, noteId, { body: text });
      return;
    } catch (err) {
      // Someone deleted the note: post a new one below.
      if (gitlabStatus(err) !== 404) throw err;
    }
  }
  const note = await api.MergeRequestNotes.create(projectId, mr, text);
  await records.putReportNote(projectId, mr, pipeline, note.id);
}

export class GitLabPublisher {
  /** Last state posted per run: GitLab only accepts state changes. */
  private readonly lastState = new Map<string, GitLabState>();

  constructor(
    private readonly api: GitLabApi,
    private readonly records: GitHostRecords,
    private readonly links: RunLinks,
    private readonly log: Logger,
  ) {}

  async publish(req: PublishRequest, target: GitLabTarget): Promise<void> {
    const name = checkName(req.status.pipeline);
    const targetUrl = this.links.runUrl(req.workflowId);
    const fields = (description: string): StatusFields => ({ name, description, ...(targetUrl ? { targetUrl } : {}) });
    if (!req.final) {
      const state: GitLabState = req.status.steps.some((s) => s.state !== 'pending') ? 'running' : 'pending';
      if (this.lastState.get(req.workflowId) === state) return;
      await postCommitStatus(
        this.api,
        target.projectId,
        target.sha,
        state,
        fields(`${req.runId}: ${progressTitle(req.status)}`),
      );
      this.lastState.set(req.workflowId, state);
      return;
    }
    const final = req.final;
    this.lastState.delete(req.workflowId);
    const failed = final.failedStep ? ` (step ${final.failedStep.name})` : '';
    // Final in the record before the status says so (see GitHubPublisher.publish).
    await this.records.finishRun(req.workflowId, { conclusion: final.conclusion, report: final.reportMarkdown });
    await postCommitStatus(
      this.api,
      target.projectId,
      target.sha,
      FINAL_STATE[final.conclusion],
      fields(
        `${supersededText(req.status) ?? FINAL_WORD[final.conclusion]}${failed}: ${progressTitle(req.status)} — run ${req.runId}`,
      ),
    );
    if (target.mergeRequestIid !== undefined) {
      const head = `### ${name}: ${supersededText(req.status) ?? FINAL_WORD[final.conclusion]} on \`${target.sha.slice(0, 12)}\`${targetUrl ? ` — [run page](${targetUrl})` : ''}\n\n${supersededSummary(req.status)}`;
      await upsertReportNote(
        this.api,
        this.records,
        target.projectId,
        target.mergeRequestIid,
        req.status.pipeline,
        head + final.reportMarkdown,
      );
    }
    if (final.conclusion === 'success') {
      await this.records.putLastSuccess('gitlab', String(target.projectId), req.status.pipeline, {
        runId: req.runId,
        workflowId: req.workflowId,
        sha: target.sha,
        finishedAt: req.status.finishedAt ?? new Date().toISOString(),
        ...(targetUrl ? { url: targetUrl } : {}),
      });
    }
    this.log.debug({ workflowId: req.workflowId, conclusion: final.conclusion }, 'gitlab status final');
  }
}
