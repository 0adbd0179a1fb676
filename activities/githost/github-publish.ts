// Run status → GitHub check run. The first publication creates the check (queued or
// in progress), live ones update its step table within the write budget, the final one
// completes it with the lineage report, the failing step's log tail and annotations.
import type { Logger } from 'pino';
import type { PublishRequest, RunStatus, StatusTarget } from '../../model/types.js';
import type { ArtifactStore } from '../store/types.js';
import { checkName } from '../intake/ids.js';
import type { Annotation } from '../intake/port.js';
import {
  CANCEL_ACTION,
  RERUN_ACTION,
  createCheckRun,
  findCheckRun,
  updateCheckRun,
  type CheckFields,
  type RepoRef,
} from './github-checks.js';
import type { GitHubClients } from './github-client.js';
import type { RunLinks } from './links.js';
import { readLogTail } from './logtail.js';
import { upsertMetricsComment } from './github-metrics-comment.js';
import type { WriteBudget } from './ratelimit.js';
import type { GitHostRecords, RunMeta } from './records.js';
import { progressTitle, stepTable, tailLines } from './text.js';
import { supersededSummary, supersededText } from '../report/statetext.js';

type GitHubTarget = Extract<StatusTarget, { kind: 'github' }>;

const FINAL_TITLE: Record<NonNullable<PublishRequest['final']>['conclusion'], string> = {
  success: 'Succeeded',
  failure: 'Failed',
  cancelled: 'Cancelled',
  timed_out: 'Timed out',
};

export class GitHubPublisher {
  /** Check runs this process created or found, by workflow id: saves a lookup per update. */
  private readonly known = new Map<string, number>();

  constructor(
    private readonly clients: GitHubClients,
    private readonly records: GitHostRecords,
    private readonly store: ArtifactStore,
    private readonly links: RunLinks,
    private readonly budget: WriteBudget,
    private readonly log: Logger,
  ) {}

  async publish(req: PublishRequest, target: GitHubTarget): Promise<void> {
    const api = this.clients.installation(target.installationId);
    const repo: RepoRef = { owner: target.owner, repo: target.repo };
    const account = `github:${target.installationId}`;
    const meta = await this.records.getRun(req.workflowId);
    const detailsUrl = this.links.runUrl(req.workflowId);
    const name = checkName(req.status.pipeline);
    let id = target.checkRunId ?? this.known.get(req.workflowId) ?? meta?.checkRunId;
    if (id === undefined) {
      const found = await findCheckRun(api, repo, target.headSha, name, req.workflowId);
      if (found) id = found.id;
    }
    const fields = req.final ? await this.finalFields(req, meta, repo) : progressFields(req.status);
    if (detailsUrl) fields.detailsUrl = detailsUrl;
    // The run page and the redelivery checks read the record: it is final before the check
    // run says completed, so whoever sees the completed check also finds the report.
    if (req.final)
      await this.records.finishRun(req.workflowId, {
        conclusion: req.final.conclusion,
        report: req.final.reportMarkdown,
      });
    if (id === undefined) {
      const created = await createCheckRun(api, repo, name, target.headSha, req.workflowId, fields);
      for (let i = 0; i < created.writes; i++) this.budget.spend(account);
      this.known.set(req.workflowId, created.id);
      await this.records.updateRun(req.workflowId, { checkRunId: created.id, checkUrl: created.htmlUrl });
      id = created.id;
    } else if (req.final) {
      const done = await updateCheckRun(api, repo, id, fields);
      for (let i = 0; i < done.writes; i++) this.budget.spend(account);
    } else if (this.budget.tryOptional(account)) {
      await updateCheckRun(api, repo, id, fields);
    } else {
      this.log.debug({ workflowId: req.workflowId }, 'live check update skipped to stay inside GitHub write limits');
    }
    this.known.set(req.workflowId, id);
    const pr = req.final?.comparison?.pullRequest;
    if (req.final?.comparison && pr !== undefined) {
      const checkUrl = meta?.checkUrl ?? (await this.records.getRun(req.workflowId))?.checkUrl;
      const link = checkUrl ?? detailsUrl;
      const md = `${req.final.comparison.markdown}\n\nPipeline \`${req.status.pipeline}\`, run \`${req.runId}\` on \`${target.headSha.slice(0, 12)}\`${link ? ` — [details](${link})` : ''}. This comment is updated by each run of this pull request.`;
      const writes = await upsertMetricsComment(api, repo, pr, req.status.pipeline, md);
      for (let i = 0; i < writes; i++) this.budget.spend(account);
    }
    if (req.final) {
      this.known.delete(req.workflowId);
      if (req.final.conclusion === 'success') {
        const repoKey = `${target.owner}/${target.repo}`;
        const checkUrl = meta?.checkUrl ?? (await this.records.getRun(req.workflowId))?.checkUrl;
        await this.records.putLastSuccess('github', repoKey, req.status.pipeline, {
          runId: req.runId,
          workflowId: req.workflowId,
          sha: target.headSha,
          finishedAt: req.status.finishedAt ?? new Date().toISOString(),
          ...(checkUrl || detailsUrl ? { url: (checkUrl || detailsUrl)! } : {}),
        });
      }
    }
  }

  private async finalFields(req: PublishRequest, meta: RunMeta | undefined, repo: RepoRef): Promise<CheckFields> {
    const final = req.final!;
    let text: string | undefined;
    const annotations: Annotation[] = [];
    const failed = final.failedStep;
    if (failed) {
      let tail = '';
      if (failed.logDigest) {
        tail = await readLogTail(this.store, failed.logDigest).catch((err: unknown) => {
          this.log.warn({ err, repo }, 'could not read the failed step log');
          return '';
        });
      }
      text = `### Log of step \`${failed.name}\` (last lines)\n\n\`\`\`\n${tail.replace(/```/g, "'''") || '(no output)'}\n\`\`\``;
      const step = req.status.steps.find((s) => s.name === failed.name);
      if (meta) {
        annotations.push({
          path: meta.pipelineFile,
          line: meta.stepLines[failed.name] ?? 1,
          level: 'failure',
          title: `Step ${failed.name} ${step?.state ?? 'failed'}`,
          message:
            [step?.outcome?.message ?? step?.message, tailLines(tail, 20, 4000)].filter(Boolean).join('\n\n') ||
            'the step failed',
        });
      }
    }
    const counts = progressTitle(req.status);
    return {
      status: 'completed',
      conclusion: final.conclusion,
      output: {
        title: `${supersededText(req.status) ?? FINAL_TITLE[final.conclusion]}: ${counts}`,
        summary: supersededSummary(req.status) + (final.reportMarkdown || `Run \`${req.runId}\` ${final.conclusion}.`),
        ...(text ? { text } : {}),
        annotations,
      },
      actions: [RERUN_ACTION],
      ...(this.links.runUrl(req.workflowId) ? { moreLink: this.links.runUrl(req.workflowId)! } : {}),
    };
  }
}

function progressFields(status: RunStatus): CheckFields {
  const started = status.steps.some((s) => s.state !== 'pending');
  return {
    status: started ? 'in_progress' : 'queued',
    output: {
      title: started ? progressTitle(status) : 'Queued',
      summary: `Run \`${status.runId}\` of \`${status.pipeline}\`\n\n${stepTable(status)}`,
    },
    actions: [CANCEL_ACTION],
  };
}
