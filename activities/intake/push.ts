// A push: every pipeline whose on.push filter matches starts; one whose branches match but
// whose paths were not touched gets a passing check naming the run whose results stand;
// an invalid file gets a failed check; a policy breach gets a failed check with the reason.
import { resolveParams } from '../../pipeline/params.js';
import { matchesPush } from '../../pipeline/triggers.js';
import type { Pipeline } from '../../pipeline/types.js';
import type { Intake } from './context.js';
import { pushWorkflowId } from './ids.js';
import { invalidFileCheckName, invalidVerdict, pipelinesAt } from './pipelines.js';
import { paramsVerdict, policyVerdict } from './verdicts.js';
import type { RepoPort, Verdict } from './port.js';
import { startRun } from './start.js';

export interface PushEvent {
  /** Full ref, `refs/heads/main`. */
  ref: string;
  /** The pushed head commit; all zeros when the branch was deleted. */
  after: string;
  deleted: boolean;
  actor: string;
  deliveryId: string;
  /** Paths the push changed; undefined when the host cannot say (then path filters cannot rule it out). */
  changedPaths(): Promise<string[] | undefined>;
}

export interface PushOutcome {
  /** Workflow ids of the runs for this push, started now or by an earlier attempt. */
  runs: string[];
  started: string[];
  resultsStand: string[];
  invalid: string[];
  refused: string[];
}

const ZERO_SHA = /^0+$/;

export async function handlePush(port: RepoPort, intake: Intake, ev: PushEvent): Promise<PushOutcome> {
  const outcome: PushOutcome = { runs: [], started: [], resultsStand: [], invalid: [], refused: [] };
  if (ev.deleted || ZERO_SHA.test(ev.after) || !ev.ref.startsWith('refs/heads/')) return outcome;
  const branch = ev.ref.slice('refs/heads/'.length);
  const { pipelines, invalid, texts } = await pipelinesAt(port, ev.after);
  for (const [file, errors] of invalid) {
    const name = invalidFileCheckName(file);
    await port.postVerdict(name, ev.after, `invalid:${ev.after}:${name}`, invalidVerdict(file, errors));
    outcome.invalid.push(file);
  }
  // Branch filters first: a pipeline not meant for this branch gets no check at all.
  const forBranch = pipelines.filter((p) => matchesPush(p, branch, undefined));
  if (forBranch.length === 0) return outcome;
  const changed = forBranch.some((p) => p.on.push?.paths !== undefined) ? await ev.changedPaths() : undefined;
  for (const pipeline of forBranch) {
    if (!matchesPush(pipeline, branch, changed)) {
      await postResultsStand(port, intake, pipeline, ev.after);
      outcome.resultsStand.push(pipeline.name);
      continue;
    }
    const violations = intake.policy.violations(port.repoPath, pipeline, texts.get(pipeline.file));
    if (violations.length > 0) {
      await port.postVerdict(pipeline.name, ev.after, `policy:${ev.after}:${pipeline.name}`, policyVerdict(pipeline, violations));
      outcome.refused.push(pipeline.name);
      continue;
    }
    const params = resolveParams(pipeline, {});
    if (params.errors.length > 0) {
      await port.postVerdict(pipeline.name, ev.after, `params:${ev.after}:${pipeline.name}`, paramsVerdict(pipeline, params.errors));
      outcome.refused.push(pipeline.name);
      continue;
    }
    const workflowId = pushWorkflowId(port.host, port.repoKey, ev.after, pipeline.name);
    const started = await startRun(port, intake, {
      pipeline, params: params.values, given: {}, sha: ev.after,
      trigger: { kind: 'push', ref: ev.ref, actor: ev.actor, deliveryId: ev.deliveryId },
      workflowId,
    });
    outcome.runs.push(workflowId);
    if (started.fresh) outcome.started.push(pipeline.name);
  }
  return outcome;
}

async function postResultsStand(port: RepoPort, intake: Intake, pipeline: Pipeline, sha: string): Promise<void> {
  const last = await intake.records.getLastSuccess(port.host, port.repoKey, pipeline.name);
  const paths = (pipeline.on.push?.paths ?? []).map((p) => `\`${p}\``).join(', ');
  const verdict: Verdict = last
    ? {
        conclusion: 'success',
        title: `Not affected: results of run ${last.runId} stand`,
        summary:
          `This push changed none of the paths \`${pipeline.name}\` watches (${paths}), so nothing ran.\n\n` +
          `The results of run \`${last.runId}\` on commit \`${last.sha.slice(0, 12)}\` (finished ${last.finishedAt}) stand` +
          `${last.url ? `: ${last.url}` : '.'}`,
      }
    : {
        conclusion: 'success',
        title: 'Not affected: nothing to run',
        summary:
          `This push changed none of the paths \`${pipeline.name}\` watches (${paths}), so nothing ran. ` +
          'No earlier successful run of this pipeline is recorded for this repository.',
      };
  await port.postVerdict(pipeline.name, sha, `stand:${sha}:${pipeline.name}`, verdict);
}
