// A push of a branch or a tag: every pipeline whose on.push filter matches starts; one whose
// branch filter matches but whose paths were not touched gets a passing check naming the run
// whose results stand; an invalid file gets a failed check; a policy breach gets a failed
// check with the reason.
//
// Runs are per commit: the workflow id is (commit, pipeline), whichever ref brought the
// commit. A tag pushed on a commit that a branch push already ran starts nothing new (that
// run's check stands); `git push --follow-tags` of a new commit runs each pipeline once.
// A tag push never asks for changed paths: GitHub does not evaluate path filters for tags.
import { resolveParams } from '../../pipeline/params.js';
import { hasPathFilter, matchesPush, parseRef, refMatches } from '../../pipeline/triggers.js';
import type { Pipeline } from '../../pipeline/types.js';
import type { Intake } from './context.js';
import { pushWorkflowId } from './ids.js';
import { invalidFileCheckName, invalidVerdict, pipelinesAt } from './pipelines.js';
import { paramsVerdict, policyVerdict } from './verdicts.js';
import type { RepoPort, Verdict } from './port.js';
import { startRun } from './startrun.js';

export interface PushEvent {
  /** Full ref, `refs/heads/main` or `refs/tags/v1.0`. */
  ref: string;
  /**
   * The commit to run: the pushed head of a branch, or the commit a tag points at (for an
   * annotated tag the webhook's `after` is the tag object, not a commit); all zeros or empty
   * when the ref was deleted.
   */
  sha: string;
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
  const ref = parseRef(ev.ref);
  const sha = ev.sha;
  if (ev.deleted || sha === '' || ZERO_SHA.test(sha) || !ev.ref.startsWith('refs/') || ref === undefined)
    return outcome;
  const { pipelines, invalid, texts } = await pipelinesAt(port, sha);
  for (const [file, errors] of invalid) {
    const name = invalidFileCheckName(file);
    await port.postVerdict(name, sha, `invalid:${sha}:${name}`, invalidVerdict(file, errors));
    outcome.invalid.push(file);
  }
  // Branch and tag filters first: a pipeline not meant for this ref gets no check at all.
  const forRef = pipelines.filter((p) => p.on.push !== null && refMatches(p.on.push, ev.ref));
  if (forRef.length === 0) return outcome;
  const changed =
    ref.kind === 'branch' && forRef.some((p) => hasPathFilter(p.on.push)) ? await ev.changedPaths() : undefined;
  for (const pipeline of forRef) {
    if (!matchesPush(pipeline, ev.ref, changed)) {
      await postResultsStand(port, intake, pipeline, sha);
      outcome.resultsStand.push(pipeline.name);
      continue;
    }
    const violations = intake.policy.violations(port.repoPath, pipeline, texts.get(pipeline.file));
    if (violations.length > 0) {
      await port.postVerdict(pipeline.name, sha, `policy:${sha}:${pipeline.name}`, policyVerdict(pipeline, violations));
      outcome.refused.push(pipeline.name);
      continue;
    }
    const params = resolveParams(pipeline, {});
    if (params.errors.length > 0) {
      await port.postVerdict(
        pipeline.name,
        sha,
        `params:${sha}:${pipeline.name}`,
        paramsVerdict(pipeline, params.errors),
      );
      outcome.refused.push(pipeline.name);
      continue;
    }
    const workflowId = pushWorkflowId(port.host, port.repoKey, sha, pipeline.name);
    const started = await startRun(port, intake, {
      pipeline,
      params: params.values,
      given: {},
      sha,
      ...(ref.kind === 'branch' ? { branch: ref.name } : {}),
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
  const push = pipeline.on.push;
  const list = (ps: string[] | undefined) => (ps ?? []).map((p) => `\`${p}\``).join(', ');
  const touched =
    push?.paths !== undefined
      ? `changed none of the paths \`${pipeline.name}\` watches (${list(push.paths)})`
      : `changed only paths \`${pipeline.name}\` ignores (${list(push?.pathsIgnore)})`;
  const verdict: Verdict = last
    ? {
        conclusion: 'success',
        title: `Not affected: results of run ${last.runId} stand`,
        summary:
          `This push ${touched}, so nothing ran.\n\n` +
          `The results of run \`${last.runId}\` on commit \`${last.sha.slice(0, 12)}\` (finished ${last.finishedAt}) stand` +
          `${last.url ? `: ${last.url}` : '.'}`,
      }
    : {
        conclusion: 'success',
        title: 'Not affected: nothing to run',
        summary:
          `This push ${touched}, so nothing ran. ` +
          'No earlier successful run of this pipeline is recorded for this repository.',
      };
  await port.postVerdict(pipeline.name, sha, `stand:${sha}:${pipeline.name}`, verdict);
}
