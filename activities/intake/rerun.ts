// Re-run and Cancel, asked for from a check (buttons) rather than a comment.
import { resolveParams } from '../../pipeline/params.js';
import type { Intake } from './context.js';
import { rerunWorkflowId, runIdFor } from './ids.js';
import { pipelinesAt } from './pipelines.js';
import type { RepoPort } from './port.js';
import { startRun } from './startrun.js';
import { paramsVerdict, policyVerdict } from './verdicts.js';

export interface RerunRequest {
  /** The check's external id: the workflow id of the run it reported on (or a verdict id). */
  previousId: string;
  /** `trainyard/<pipeline>`. */
  checkName: string;
  sha: string;
  actor: string;
  checkRunId: number;
  deliveryId: string;
}

/**
 * Runs the pipeline again at the same commit with the same parameters as the run the check
 * reported on. A check that had no run (results stand, policy) reruns with the defaults.
 */
export async function rerun(
  port: RepoPort,
  intake: Intake,
  req: RerunRequest,
): Promise<{ workflowId?: string; message?: string }> {
  const previous = await intake.records.getRun(req.previousId);
  const name = previous?.pipeline ?? req.checkName.replace(/^trainyard\//, '');
  const { pipelines, texts } = await pipelinesAt(port, req.sha);
  const pipeline = pipelines.find((p) => p.name === name);
  if (!pipeline) return { message: `no valid pipeline \`${name}\` at ${req.sha.slice(0, 12)}` };
  const given = previous?.given ?? {};
  const params = resolveParams(pipeline, given);
  const verdictId = `rerun:${req.deliveryId}:${req.checkRunId}`;
  if (params.errors.length > 0) {
    await port.postVerdict(pipeline.name, req.sha, verdictId, paramsVerdict(pipeline, params.errors), previous?.pr);
    return { message: 'parameters no longer fit' };
  }
  const violations = intake.policy.violations(port.repoPath, pipeline, texts.get(pipeline.file));
  if (violations.length > 0) {
    await port.postVerdict(pipeline.name, req.sha, verdictId, policyVerdict(pipeline, violations), previous?.pr);
    return { message: 'refused by policy' };
  }
  const workflowId = rerunWorkflowId(port.host, port.repoKey, req.checkRunId, req.deliveryId);
  const started = await startRun(port, intake, {
    pipeline,
    params: params.values,
    given,
    sha: req.sha,
    workflowId,
    ...(previous?.pr !== undefined ? { pr: previous.pr } : {}),
    ...(previous?.secretsWithheld ? { secretsWithheld: previous.secretsWithheld } : {}),
    ...(previous?.branch ? { branch: previous.branch } : {}),
    trigger: { kind: 'rerun', actor: req.actor, ...(previous ? { previousRunId: runIdFor(previous.workflowId) } : {}) },
  });
  return started.fresh ? { workflowId } : { workflowId, message: 'already started' };
}

/** Cancel only what the check reported on; a verdict id (no run) is nothing to cancel. */
export async function cancelFromCheck(intake: Intake, workflowId: string): Promise<boolean> {
  if (!(await intake.records.getRun(workflowId))) return false;
  await intake.starter.cancel(workflowId);
  return true;
}

export interface SuiteCheck {
  checkRunId: number;
  /** `trainyard/<pipeline>`. */
  name: string;
  externalId: string;
}

/**
 * "Re-run all checks": every Trainyard check of the suite runs again, each as its own
 * re-run. Each workflow id holds its check run id and the delivery id, so a redelivered
 * webhook starts nothing twice. One check that can no longer run does not stop the others.
 */
export async function rerunSuite(
  port: RepoPort,
  intake: Intake,
  req: { checks: SuiteCheck[]; sha: string; actor: string; deliveryId: string },
): Promise<{ checkName: string; workflowId?: string; message?: string }[]> {
  const out: { checkName: string; workflowId?: string; message?: string }[] = [];
  for (const c of req.checks) {
    const r = await rerun(port, intake, {
      previousId: c.externalId,
      checkName: c.name,
      sha: req.sha,
      actor: req.actor,
      checkRunId: c.checkRunId,
      deliveryId: req.deliveryId,
    });
    out.push({ checkName: c.name, ...r });
  }
  return out;
}
