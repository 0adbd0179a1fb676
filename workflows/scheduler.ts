// The pure part of a pipeline run: which steps are ready, which are skipped because a
// dependency failed, what a finished execution or a cache hit does to a step's record, when a
// step lost to its host is tried again, and how the run concludes. No Temporal import and no
// clock (callers pass `now`), so it is table-tested on its own (test/workflows/scheduler.test.ts)
// and `pipelineRun` (workflows/pipeline.ts) is the loop that calls it between activities. The
// run-level state and decisions built on these rules (what to prepare and start, cache joins,
// host release, probes, continue-as-new) are in workflows/runstate.ts.
import type { KubernetesMachineSpec, Pipeline } from '../pipeline/types.js';
import type { Prepared, PreparedHit } from '../model/contracts.js';
import type { HostRecord } from '../model/hosttypes.js';
import type {
  AttemptRecord,
  Conclusion,
  ResolvedInput,
  RunStatus,
  StepOutcome,
  StepStatus,
  SupersededBy,
} from '../model/types.js';

/** Step name → its live record, as `pipelineRun` keeps it (and carries across continue-as-new). */
export type StepRecords = Record<string, StepStatus>;

/** States a step does not leave. */
export const FINAL_STATES: ReadonlySet<StepStatus['state']> = new Set([
  'succeeded',
  'cached',
  'failed',
  'skipped',
  'cancelled',
]);
const BLOCKING: ReadonlySet<StepStatus['state']> = new Set(['failed', 'skipped', 'cancelled']);
const SATISFIED: ReadonlySet<StepStatus['state']> = new Set(['succeeded', 'cached']);

/** Records of every step of `pipeline`, all pending, in file order. */
export function initialSteps(pipeline: Pipeline): StepRecords {
  return Object.fromEntries(pipeline.order.map((n) => [n, { name: n, state: 'pending' as const }]));
}

/** The steps `name` waits for: its `needs:` and the steps whose outputs it reads, without repeats. */
export function dependenciesOf(pipeline: Pipeline, name: string): string[] {
  const s = pipeline.steps[name]!;
  const fromInputs = Object.values(s.inputs).flatMap((i) => (i.kind === 'step' ? [i.step] : []));
  return [...new Set([...s.needs, ...fromInputs])];
}

/** Pending steps whose dependencies all succeeded or were cached, in topological order. */
export function readySteps(pipeline: Pipeline, steps: StepRecords): string[] {
  return pipeline.order.filter(
    (n) => steps[n]!.state === 'pending' && dependenciesOf(pipeline, n).every((d) => SATISFIED.has(steps[d]!.state)),
  );
}

/** How many steps are running (started or waiting for a host). */
export function runningCount(pipeline: Pipeline, steps: StepRecords): number {
  return pipeline.order.filter((n) => steps[n]!.state === 'running').length;
}

/** Pending steps that will ask for `machine`: how many hosts the pool should keep for them. */
export function pendingOnMachine(pipeline: Pipeline, steps: StepRecords, machine: string): number {
  return pipeline.order.filter((n) => steps[n]!.state === 'pending' && pipeline.steps[n]!.machine === machine).length;
}

/**
 * Marks `skipped` every pending step with a failed, skipped or cancelled dependency, to a fixed
 * point (a skip skips what follows it). Returns whether any record changed.
 */
export function skipBlocked(pipeline: Pipeline, steps: StepRecords): boolean {
  let any = false;
  let changed = true;
  while (changed) {
    changed = false;
    for (const name of pipeline.order) {
      const st = steps[name]!;
      if (st.state !== 'pending') continue;
      const bad = dependenciesOf(pipeline, name).find((d) => BLOCKING.has(steps[d]!.state));
      if (bad) {
        st.state = 'skipped';
        st.message = `skipped: ${bad} ${steps[bad]!.state}`;
        changed = any = true;
      }
    }
  }
  return any;
}

/**
 * The artifacts `name` reads from earlier steps, input name → artifact and where it came from.
 * Throws an Error when a finished dependency lacks the output (a broken run record, not user input).
 */
export function upstreamOf(pipeline: Pipeline, steps: StepRecords, name: string): Record<string, ResolvedInput> {
  const out: Record<string, ResolvedInput> = {};
  for (const [inName, src] of Object.entries(pipeline.steps[name]!.inputs)) {
    if (src.kind !== 'step') continue;
    const art = steps[src.step]!.outcome?.outputs[src.output];
    if (!art) throw new Error(`step ${src.step} finished without its output ${src.output}`);
    out[inName] = { artifact: art, origin: { kind: 'step', step: src.step, output: src.output } };
  }
  return out;
}

/** The Kubernetes machine `step` asks for, or undefined (local, or an EC2 machine). */
export function kubernetesMachineOf(
  pipeline: Pipeline,
  step: string,
): { name: string; spec: KubernetesMachineSpec } | undefined {
  const m = pipeline.steps[step]!.machine;
  const spec = m ? pipeline.machines[m] : undefined;
  return m && spec && 'kubernetes' in spec ? { name: m, spec } : undefined;
}

/** Whether any step needs the run's EC2 host pool (a machine that is not Kubernetes). */
export function needsHostPool(pipeline: Pipeline): boolean {
  return Object.values(pipeline.steps).some((s) => s.machine && !kubernetesMachineOf(pipeline, s.name));
}

/**
 * Of `ready`, the steps that declare `secrets:` when the run may not have them (`withheldBecause`
 * set, e.g. a pull request from a fork): they fail before their cache lookup, since a cached
 * output of a secret is withheld too.
 */
export function failWithheld(
  pipeline: Pipeline,
  steps: StepRecords,
  ready: string[],
  withheldBecause: string | undefined,
  now: string,
): string[] {
  if (!withheldBecause) return [];
  const withheld = ready.filter((n) => (pipeline.steps[n]!.secrets ?? []).length > 0);
  for (const n of withheld) {
    Object.assign(steps[n]!, {
      state: 'failed',
      message: `not started: it needs secrets (${pipeline.steps[n]!.secrets!.join(', ')}), and ${withheldBecause}`,
      finishedAt: now,
    });
  }
  return withheld;
}

/** Marks `names` failed with `why` (a preparation or a host request that failed for all of them). */
export function failSteps(steps: StepRecords, names: string[], why: string, now: string): void {
  for (const n of names) Object.assign(steps[n]!, { state: 'failed', message: why, finishedAt: now });
}

/** Applies a cache hit from `prepareSteps` to its step: cached, with the hit's outputs, metrics and log. */
export function applyCacheHit(st: StepStatus, r: PreparedHit, now: string): void {
  st.state = 'cached';
  st.cache = r.decision;
  st.inputs = r.inputs;
  const image = r.image ?? r.spec?.image;
  if (image !== undefined) st.image = image;
  st.finishedAt = now;
  st.outcome = {
    state: 'succeeded',
    outputs: r.hit.outputs,
    attempts: r.hit.attempts,
    ...(r.hit.metrics ? { metrics: r.hit.metrics } : {}),
    logDigest: r.hit.logDigest,
    producedBy: r.hit.source,
  };
}

/** Marks a prepared step running: its cache decision, resolved inputs and image go on its record. */
export function markStarted(st: StepStatus, p: Prepared, now: string): void {
  st.state = 'running';
  st.startedAt = now;
  st.cache = p.decision;
  st.inputs = p.inputs;
  st.image = p.spec.image;
}

/** Whether an execution failed because its host (EC2 instance, pod's node) went away. */
export function lostItsHost(outcome: StepOutcome): boolean {
  return outcome.state === 'failed' && outcome.attempts.at(-1)?.outcome === 'host_lost';
}

/** What `settleStep` needs besides the step's record. */
export interface SettleInput {
  /** This run's id: an execution produced by another run was joined, not executed here. */
  runId: string;
  outcome: StepOutcome;
  /** The host the execution ran on, if this step started it. */
  host?: HostRecord;
  /** Attempts of earlier executions of this step in this run (each lost its host). */
  earlierAttempts: AttemptRecord[];
  /** Attempts already used by those earlier executions. */
  attemptOffset: number;
  /** The step's `retries:` (attempts allowed = retries + 1). */
  retries: number;
  /** Whether a lost host may be replaced: an EC2 machine, and the run not being cancelled. */
  mayRetryOnNewHost: boolean;
  now: string;
}

/** `retry`: the step is pending again and `attemptOffset` / `attempts` are to be carried; `done`: its record is final. */
export type Settlement = { kind: 'retry'; attemptOffset: number; attempts: AttemptRecord[] } | { kind: 'done' };

/**
 * Applies a finished execution to one step that waited for it: succeeded (or `joined` when
 * another run executed it), failed, cancelled — or, when its host was lost and attempts remain,
 * pending again for a new host. Attempts of lost hosts count against `retries:`, as GitHub
 * Actions' re-runs do not but EC2 spot users expect.
 */
export function settleStep(st: StepStatus, s: SettleInput): Settlement {
  const hostLost = lostItsHost(s.outcome);
  // The lost attempt says what EC2 said of its host (a spot interruption notice, an instance
  // gone): the host record that carries it is replaced by the retry's.
  const attempts =
    hostLost && s.host?.lostReason
      ? s.outcome.attempts.map((a, k, all) =>
          k === all.length - 1 ? { ...a, message: `${a.message ?? 'host lost'}: ${s.host!.lostReason}` } : a,
        )
      : s.outcome.attempts;
  const used = s.attemptOffset + attempts.length;
  if (hostLost && s.mayRetryOnNewHost && used < s.retries + 1) {
    st.state = 'pending';
    st.message = `attempt ${used} lost its host; retrying on a new one`;
    return { kind: 'retry', attemptOffset: used, attempts };
  }
  const ranElsewhere = s.outcome.producedBy.runId !== s.runId;
  st.outcome = { ...s.outcome, attempts: [...s.earlierAttempts, ...attempts] };
  st.finishedAt = s.now;
  if (s.host) st.host = s.host;
  if (s.outcome.state === 'succeeded') {
    st.state = 'succeeded';
    if (ranElsewhere && st.cache && st.cache.decision === 'miss') {
      st.cache = {
        ...st.cache,
        decision: 'joined',
        reason: `${st.cache.reason}; executed once for this run and run ${s.outcome.producedBy.runId}`,
        source: s.outcome.producedBy,
      };
    }
  } else if (s.outcome.state === 'cancelled') {
    st.state = 'cancelled';
    st.message = s.outcome.message;
  } else {
    st.state = 'failed';
    st.message = s.outcome.message ?? 'failed';
  }
  return { kind: 'done' };
}

/** After a cancel: every step not yet final is cancelled, saying by whom when a newer run superseded this one. */
export function cancelUnfinished(pipeline: Pipeline, steps: StepRecords, supersededBy: SupersededBy | undefined): void {
  for (const name of pipeline.order) {
    const st = steps[name]!;
    if (FINAL_STATES.has(st.state)) continue;
    st.state = 'cancelled';
    st.message ??= supersededBy
      ? `superseded by ${supersededBy.sha.slice(0, 12)} (run ${supersededBy.runId})`
      : 'run cancelled';
  }
}

/** The run's final state: cancelled when asked, failed when a step failed or never finished, else succeeded. */
export function runOutcome(
  pipeline: Pipeline,
  steps: StepRecords,
  cancelled: boolean,
): Exclude<RunStatus['state'], 'running'> {
  if (cancelled) return 'cancelled';
  const failed = pipeline.order.some((n) => steps[n]!.state === 'failed');
  return failed || pipeline.order.some((n) => !FINAL_STATES.has(steps[n]!.state)) ? 'failed' : 'succeeded';
}

/** The check-run conclusion of a final state (GitHub's names): `timed_out` when a failed step's last attempt timed out. */
export function checkConclusion(
  pipeline: Pipeline,
  steps: StepRecords,
  state: Exclude<RunStatus['state'], 'running'>,
): Conclusion {
  if (state === 'succeeded') return 'success';
  if (state === 'cancelled') return 'cancelled';
  const timedOut = pipeline.order.some(
    (n) => steps[n]!.outcome?.attempts.at(-1)?.outcome === 'timed_out' && steps[n]!.state === 'failed',
  );
  return timedOut ? 'timed_out' : 'failure';
}

/**
 * A Kubernetes step's bill on its host record: every attempt's pod time at its class's rate
 * (failed and lost ones too). Without GPU samples from the pod, requested GPU time counts as used.
 */
export function chargeKubernetes(host: HostRecord, attempts: AttemptRecord[]): void {
  const billed = attempts.flatMap((a) => (a.compute ? [a.compute] : []));
  if (billed.length === 0) return;
  const last = billed[billed.length - 1]!;
  host.billedSeconds = Math.round(billed.reduce((n, c) => n + c.billedSeconds, 0) * 1000) / 1000;
  host.costUsd = Math.round(billed.reduce((n, c) => n + c.costUsd, 0) * 1e6) / 1e6;
  host.pricePerHourUsd = last.pricePerHourUsd;
  host.gpus = last.gpus;
  host.namespace = last.namespace;
  host.job = last.job;
  if (last.pod) host.pod = last.pod;
  if (last.node) host.node = last.node;
  // Idle time is unknown without samples, not zero.
  if (host.gpu) host.idleGpuSeconds = Math.round(host.gpus * host.billedSeconds * host.gpu.idleFraction * 1000) / 1000;
}
