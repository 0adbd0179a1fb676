// Starting one pipeline run for a host event, at most once per workflow id.
import { supersedingGroup } from '../../pipeline/concurrency.js';
import type { ParamValue, Pipeline, RunConcurrency, StatusTarget, Trigger } from '../../model/types.js';
import type { Intake } from './context.js';
import { concurrencyGroupId, runIdFor } from './ids.js';
import type { RepoPort } from './port.js';

export interface StartRequest {
  pipeline: Pipeline;
  params: Record<string, ParamValue>;
  given: Record<string, string>;
  sha: string;
  trigger: Trigger;
  workflowId: string;
  pr?: number;
  /** The pushed branch, or the pull request's head branch when it is in this repository: `{{branch}}` of a concurrency group. */
  branch?: string;
  /** Why the run gets no secrets (RunInput.secretsWithheld). */
  secretsWithheld?: string;
}

/**
 * `fresh` is false when the run with this workflow id existed already. Every intake workflow
 * id but a push's names the one request it serves (a comment id, a delivery id), so an
 * existing run there was started by an earlier attempt of the same activity that died
 * before it finished: the caller still owes the request its reply.
 */
export interface StartResult {
  target: StatusTarget;
  fresh: boolean;
}

export async function startRun(port: RepoPort, intake: Intake, req: StartRequest): Promise<StartResult> {
  const { workflowId, pipeline } = req;
  const target = port.statusTarget(req.sha, req.pr);
  // Cheap pre-check: an existing run costs one Temporal call and no git-host API call.
  if (await intake.starter.exists(workflowId)) return { target, fresh: false };
  const runId = runIdFor(workflowId);
  const stepLines = Object.fromEntries(Object.values(pipeline.steps).map((s) => [s.name, s.line]));
  const createdAt = new Date().toISOString();
  const group = supersedingGroup(pipeline.concurrency, {
    pipeline: pipeline.name,
    ...(req.branch ? { branch: req.branch } : {}),
    ...(req.pr !== undefined ? { pr: req.pr } : {}),
  });
  const concurrency: RunConcurrency | undefined =
    group === undefined
      ? undefined
      : { group, groupId: concurrencyGroupId(port.host, port.repoKey, group), requestedAt: createdAt };
  // Written before the start so the first status publication can already annotate and link.
  await intake.records.putRun({
    workflowId,
    runId,
    host: port.host,
    repoKey: port.repoKey,
    repoPath: port.repoPath,
    sha: req.sha,
    pipeline: pipeline.name,
    pipelineFile: pipeline.file,
    stepLines,
    params: req.params,
    given: req.given,
    ...(req.pr !== undefined ? { pr: req.pr } : {}),
    ...(req.branch ? { branch: req.branch } : {}),
    trigger: req.trigger,
    createdAt,
    ...(req.secretsWithheld ? { secretsWithheld: req.secretsWithheld } : {}),
  });
  const result = await intake.starter.start(
    {
      runId,
      pipeline,
      params: req.params,
      source: port.source(req.sha),
      trigger: req.trigger,
      status: target,
      options: intake.runOptions(),
      ...(req.secretsWithheld ? { secretsWithheld: req.secretsWithheld } : {}),
      ...(concurrency ? { concurrency } : {}),
    },
    workflowId,
  );
  // Two starts raced past the pre-check: Temporal kept one run.
  if (result.alreadyStarted) return { target, fresh: false };
  intake.log.info({ workflowId, runId, repo: port.repoPath, sha: req.sha, pipeline: pipeline.name }, 'run started');
  return { target, fresh: true };
}
