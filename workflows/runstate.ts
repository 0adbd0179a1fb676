// A pipeline run's mutable state in one typed object (`RunState`), and the pure decisions that
// read and change it between activities: what to prepare and start next, which prepared step
// joins an execution already going, what a finished execution does to its waiting steps and
// their host, what a cancel detaches, when to probe, publish or continue as new. No Temporal
// import and no clock (callers pass `now`), so every decision is table-tested on its own
// (test/workflows/scheduler.test.ts); `pipelineRun` (workflows/pipeline.ts) runs the activities,
// signals and timers around them. Per-step record rules live in workflows/scheduler.ts.
import type { Pipeline } from '../pipeline/types.js';
import type { RecordedLineage } from '../activities/lineage/activity.js';
import type { PrepareAnswer, PrepareItem, Prepared, StepExecInput, StepFinished } from '../model/contracts.js';
import type { HostPoolState } from './hostpool.js';
import type { HostRecord } from '../model/hosttypes.js';
import {
  applyCacheHit,
  chargeKubernetes,
  dependenciesOf,
  failSteps,
  initialSteps,
  kubernetesMachineOf,
  lostItsHost,
  markStarted,
  pendingOnMachine,
  settleStep,
  upstreamOf,
  type StepRecords,
} from './scheduler.js';
import type { AttemptRecord, Conclusion, PublishRequest, RunInput, RunStatus, SupersededBy } from '../model/types.js';

/** State carried across continue-as-new (the next execution's second argument). */
export interface PipelineCarry {
  steps: StepRecords;
  /** cache key → the steps of this run waiting for that execution. */
  waiting: Record<string, string[]>;
  attemptOffset: Record<string, number>;
  startedAt: string;
  continuedAsNew: number;
  pool?: HostPoolState;
  /** Whether the run sends OpenLineage events (the control worker had an endpoint); absent = no. */
  openLineage?: boolean;
}

/**
 * Everything a run changes while it runs. Only `steps`, `waiting`, `attemptOffset`, `startedAt`
 * and `continuedAsNew` survive continue-as-new (`carryOf`); the rest is rebuilt empty, which is
 * safe because the run continues only when no host is being acquired (`mayContinueAsNew`).
 * Times (`lastNews`, `lastPublish`) are epoch ms of the workflow clock, which Temporal makes
 * deterministic on replay.
 */
export interface RunState {
  steps: StepRecords;
  /** Cache key → the steps of this run waiting for that execution (one execution may serve several). */
  waiting: Record<string, string[]>;
  /** Step → attempts used by its earlier executions (each lost its host). */
  attemptOffset: Record<string, number>;
  /** Step → the attempt records of those earlier executions. */
  earlierAttempts: Record<string, AttemptRecord[]>;
  startedAt: string;
  /** How many times this run continued as new before this execution. */
  continuedAsNew: number;
  /**
   * Whether the next preparation looks ahead (`lookaheadItems`): none has been made yet, or the
   * last one found a cached result. A run whose steps miss sends no look-ahead it cannot use.
   */
  lookahead: boolean;
  /** Steps prepared (cache missed) but not started yet, for want of a slot. */
  prepared: Map<string, Prepared>;
  /** Executions that signalled their end and are not applied yet, in arrival order. */
  finished: StepFinished[];
  /** Step → the host its execution runs on. */
  hostOf: Map<string, HostRecord>;
  /** Keys whose execution is not started yet (waiting for a pool host). */
  notStarted: Set<string>;
  /** Host acquisitions going on. */
  acquiring: number;
  cancelRequested: boolean;
  supersededBy?: SupersededBy;
  /** Something outside a signal (an acquisition, a lineage send) ended: the loop looks again. */
  wake: boolean;
  /** Step records changed since the last status publication. */
  dirty: boolean;
  /** When the last execution signal arrived (or the last probe). */
  lastNews: number;
  /** When live status was last published. */
  lastPublish: number;
  state: RunStatus['state'];
  lineageKey?: string;
  reportKey?: string;
}

/** A fresh run's state, or the state carried by `carry`; `now` is epoch ms, `nowIso` the same as ISO 8601. */
export function initialRunState(
  pipeline: Pipeline,
  carry: PipelineCarry | undefined,
  now: number,
  nowIso: string,
): RunState {
  return {
    steps: carry?.steps ?? initialSteps(pipeline),
    waiting: carry?.waiting ?? {},
    attemptOffset: carry?.attemptOffset ?? {},
    earlierAttempts: {},
    startedAt: carry?.startedAt ?? nowIso,
    continuedAsNew: carry?.continuedAsNew ?? 0,
    lookahead: true,
    prepared: new Map(),
    finished: [],
    hostOf: new Map(),
    notStarted: new Set(),
    acquiring: 0,
    cancelRequested: false,
    wake: false,
    dirty: true,
    lastNews: now,
    lastPublish: 0,
    state: 'running',
  };
}

/** What the next execution of the run starts from (continue-as-new). */
export function carryOf(s: RunState, pool: HostPoolState | undefined, openLineage: boolean | undefined): PipelineCarry {
  return {
    steps: s.steps,
    waiting: s.waiting,
    attemptOffset: s.attemptOffset,
    startedAt: s.startedAt,
    continuedAsNew: s.continuedAsNew + 1,
    ...(pool ? { pool } : {}),
    ...(openLineage ? { openLineage: true } : {}),
  };
}

/** The run's status as the status query, live status and the lineage record show it; `now` is ISO 8601. */
export function runSnapshot(input: RunInput, s: RunState, now: string): RunStatus {
  return {
    runId: input.runId,
    pipeline: input.pipeline.name,
    state: s.state,
    startedAt: s.startedAt,
    ...(s.state !== 'running' ? { finishedAt: now } : {}),
    steps: input.pipeline.order.map((n) => s.steps[n]!),
    ...(s.lineageKey ? { lineageKey: s.lineageKey } : {}),
    ...(s.reportKey ? { reportKey: s.reportKey } : {}),
    continuedAsNew: s.continuedAsNew,
    ...(s.supersededBy ? { supersededBy: s.supersededBy } : {}),
  };
}

/** A cancel (no `by`) or a supersede by a newer run of the group; the first supersede is the one named. */
export function requestCancel(s: RunState, by?: SupersededBy): void {
  if (by) s.supersededBy ??= by;
  s.cancelRequested = true;
}

/** What the loop does next with the steps that are ready. */
export interface Plan {
  /** Steps ready now, in topological order. */
  ready: string[];
  /** Steps running or waiting for a host. */
  running: number;
  /** Free slots under `parallelism:` (may be negative). */
  slots: number;
  /** Ready steps to look up in the cache (at most `batch`), when a slot is free. */
  toPrepare: string[];
}

/** Of `ready`, the steps to prepare: only when a slot is free, not prepared yet, at most `batch`. */
export function planPreparation(
  s: RunState,
  ready: string[],
  running: number,
  parallelism: number,
  batch: number,
): Plan {
  const slots = parallelism - running;
  const toPrepare = ready.length > 0 && slots > 0 ? ready.filter((n) => !s.prepared.has(n)).slice(0, batch) : [];
  return { ready, running, slots, toPrepare };
}

/** The cache lookups of `names`: spec, upstream artifacts, GPU or not. Throws as `upstreamOf` does. */
export function prepareItems(pipeline: Pipeline, steps: StepRecords, names: string[]): PrepareItem[] {
  return names.map((n) => {
    const m = pipeline.steps[n]!.machine;
    return {
      step: n,
      spec: pipeline.steps[n]!,
      upstream: upstreamOf(pipeline, steps, n),
      gpus: m ? (pipeline.machines[m]?.gpus ?? 0) > 0 : false,
    };
  });
}

/**
 * The look-ahead of a preparation: pending steps, in topological order, that wait only for
 * steps being prepared now (`toPrepare`) or for earlier look-ahead steps, at most `budget`. Each
 * names those steps in `after`: `prepareSteps` prepares it when they all hit, so a fully cached
 * chain is resolved in one activity call instead of one per layer. Leaves out steps already
 * prepared, steps that need secrets the run may not have (`withheld`; they fail before their
 * lookup) and steps whose finished upstream lacks an output they read (`upstreamOf` fails them).
 */
export function lookaheadItems(
  pipeline: Pipeline,
  s: RunState,
  toPrepare: string[],
  budget: number,
  withheld: boolean,
): PrepareItem[] {
  const planned = new Set(toPrepare);
  const out: PrepareItem[] = [];
  for (const n of pipeline.order) {
    if (out.length >= budget) break;
    const st = s.steps[n]!;
    if (st.state !== 'pending' || planned.has(n) || s.prepared.has(n)) continue;
    const spec = pipeline.steps[n]!;
    if (withheld && (spec.secrets ?? []).length > 0) continue;
    const deps = dependenciesOf(pipeline, n);
    const after = deps.filter((d) => planned.has(d));
    const done = (d: string): boolean => s.steps[d]!.state === 'succeeded' || s.steps[d]!.state === 'cached';
    if (after.length === 0 || !deps.every((d) => planned.has(d) || done(d))) continue;
    const upstream: PrepareItem['upstream'] = {};
    let complete = true;
    for (const [inName, src] of Object.entries(spec.inputs)) {
      if (src.kind !== 'step' || planned.has(src.step)) continue;
      const art = s.steps[src.step]!.outcome?.outputs[src.output];
      if (!art) complete = false;
      else upstream[inName] = { artifact: art, origin: { kind: 'step', step: src.step, output: src.output } };
    }
    if (!complete) continue;
    planned.add(n);
    const m = spec.machine;
    out.push({ step: n, spec, gpus: m ? (pipeline.machines[m]?.gpus ?? 0) > 0 : false, upstream, after });
  }
  return out;
}

/** Applies `prepareSteps`' answers: hits make their step cached, misses wait in `prepared` for a slot; look ahead next time only after a hit. */
export function applyPrepared(s: RunState, results: PrepareAnswer[], now: string): void {
  s.lookahead = results.some((r) => r.hit);
  for (const r of results) {
    if (r.invalid !== undefined) {
      failSteps(s.steps, [r.step], `could not prepare the step: ${r.invalid}`, now);
      s.dirty = true;
    } else if (r.hit) {
      applyCacheHit(s.steps[r.step]!, r, now);
      s.dirty = true;
    } else {
      s.prepared.set(r.step, r);
    }
  }
}

/** Takes out of `prepared` the ready, still pending steps to start now: at most the free slots. */
export function takeStartable(s: RunState, plan: Plan): Prepared[] {
  const startable = plan.ready.filter((n) => s.prepared.has(n) && s.steps[n]!.state === 'pending').slice(0, plan.slots);
  const items = startable.map((n) => s.prepared.get(n)!);
  startable.forEach((n) => s.prepared.delete(n));
  return items;
}

/** Whether the run has nothing left to wait for: nothing running, nothing to apply, nothing ready. */
export function runIsDone(s: RunState, plan: Plan): boolean {
  return plan.running === 0 && s.finished.length === 0 && plan.ready.length === 0;
}

/** What `stepExecInput` reads of the run besides the prepared step. */
export interface ExecContext {
  input: RunInput;
  attemptOffset: Record<string, number>;
}

/**
 * The step-execution input of a prepared step on `host`. Local steps get 4 same-host retries:
 * they go to a shared queue, where a lost runner costs an attempt any other agent can retry;
 * a pool host's step gets none (a lost host is retried on a new one by the run instead).
 */
export function stepExecInput(c: ExecContext, p: Prepared, host: HostRecord): StepExecInput {
  const { input } = c;
  const spec = input.pipeline.steps[p.step]!;
  return {
    key: p.key,
    useCache: p.useCache,
    ...(p.recordKey ? { recordKey: p.recordKey } : {}),
    spec: p.spec,
    parts: p.parts,
    hostQueue: host.queue,
    host,
    producedBy: {
      runId: input.runId,
      commit: input.source.commit,
      step: p.step,
      pipeline: input.pipeline.name,
      finishedAt: '',
    },
    retries: spec.machine ? spec.retries - (c.attemptOffset[p.step] ?? 0) : spec.retries,
    heartbeatTimeoutMs: input.options.heartbeatTimeoutMs,
    sameHostRetries: spec.machine ? 0 : 4,
    attemptOffset: c.attemptOffset[p.step] ?? 0,
  };
}

/** What to do to start a batch of prepared steps. */
export interface StartPlan {
  /** Executions to start now, in one `startSteps` call (local and Kubernetes steps). */
  execs: StepExecInput[];
  /** Steps that first need a host from the run's EC2 pool, in order. */
  acquire: Prepared[];
}

/**
 * Marks `items` running and decides how each starts: it joins an execution of this run with the
 * same cache key (one execution serves both; single flight within the run), or runs as a
 * Kubernetes Job (no host to wait for: 2 same-host retries, the whole `retries:` budget), or
 * waits for a pool host (when `hasPool` and the step names a machine), or runs locally. Records
 * the waiting steps, hosts and acquisitions on `s`; starts nothing.
 */
export function planStarts(input: RunInput, s: RunState, items: Prepared[], hasPool: boolean, now: string): StartPlan {
  const { pipeline, options } = input;
  const plan: StartPlan = { execs: [], acquire: [] };
  for (const p of items) {
    const spec = pipeline.steps[p.step]!;
    markStarted(s.steps[p.step]!, p, now);
    // Same key as a step of this run already started or waiting for a host.
    if (s.waiting[p.key]) {
      (s.waiting[p.key] ??= []).push(p.step);
      continue;
    }
    s.waiting[p.key] = [p.step];
    const kube = kubernetesMachineOf(pipeline, p.step);
    if (!kube && spec.machine && hasPool) {
      s.acquiring++;
      s.notStarted.add(p.key);
      plan.acquire.push(p);
      continue;
    }
    const host: HostRecord = kube
      ? {
          kind: 'kubernetes',
          queue: options.kubernetesQueue ?? 'trainyard-kubernetes',
          machineClass: kube.name,
          kubernetesClass: kube.spec.kubernetes,
          gpus: kube.spec.gpus,
        }
      : { kind: 'local', queue: options.localHostQueue };
    s.hostOf.set(p.step, host);
    s.steps[p.step]!.host = host;
    const exec = stepExecInput({ input, attemptOffset: s.attemptOffset }, p, host);
    plan.execs.push(kube ? { ...exec, retries: spec.retries, sameHostRetries: 2, attemptOffset: 0 } : exec);
  }
  s.dirty = true;
  return plan;
}

/** A pool host was acquired for `step`: it goes on the step's record. */
export function hostAcquired(s: RunState, step: string, host: HostRecord): void {
  s.hostOf.set(step, host);
  s.steps[step]!.host = host;
}

/** No host for the execution of `key` (first asked by `step`): every step waiting for it fails with `why`. */
export function acquisitionFailed(s: RunState, key: string, step: string, why: string, now: string): void {
  const names = s.waiting[key] ?? [step];
  delete s.waiting[key];
  failSteps(s.steps, names, why, now);
}

/** An acquisition ended, started or not: the loop looks again. */
export function acquisitionEnded(s: RunState, key: string): void {
  s.acquiring--;
  s.notStarted.delete(key);
  s.wake = s.dirty = true;
}

/** The steps waiting for the finished execution of `key`; they stop waiting. */
export function takeWaiting(s: RunState, key: string): string[] {
  const names = s.waiting[key] ?? [];
  delete s.waiting[key];
  return names;
}

/** What `HostPool.release` needs for an EC2 host a step is done with. */
export interface Release {
  host: HostRecord;
  /** Pending steps of the host's class, plus one for this step when it will retry: hosts to keep warm. */
  stillNeeded: number;
  /** The host was lost: terminate it. */
  broken: boolean;
}

/** What `detachHost` took off the run for one step. */
export interface Detached {
  /** The host the step's execution ran on; undefined when it joined an execution it did not start. */
  host: HostRecord | undefined;
  /** What the pool must release: set for an EC2 host only. */
  release: Release | undefined;
}

/**
 * Takes `name`'s host off the run and brings its record up to date with the execution's last
 * attempt (its GPU samples; a Kubernetes step's bill over all its attempts). The pool is to keep
 * a host warm per pending step of its class, plus one for this step when it lost its host.
 */
export function detachHost(pipeline: Pipeline, s: RunState, name: string, f: StepFinished): Detached {
  const host = s.hostOf.get(name);
  s.hostOf.delete(name);
  if (!host) return { host, release: undefined };
  const last = f.outcome.attempts.at(-1);
  const broken = lostItsHost(f.outcome);
  // Real GPU samples make the idle-GPU accounting exact.
  if (last?.gpu) host.gpu = last.gpu;
  if (host.kind === 'kubernetes') chargeKubernetes(host, [...(s.earlierAttempts[name] ?? []), ...f.outcome.attempts]);
  if (host.kind !== 'ec2') return { host, release: undefined };
  const machine = pipeline.steps[name]!.machine!;
  return {
    host,
    release: { host, stillNeeded: pendingOnMachine(pipeline, s.steps, machine) + (broken ? 1 : 0), broken },
  };
}

/**
 * Applies a finished execution to `name`, which waited for it (`settleStep`), on `host`. A step
 * on an EC2 machine whose host was lost goes back to pending with its attempts carried, unless
 * the run is being cancelled; Kubernetes steps are not (their runner retries Jobs itself).
 */
export function settleWaiting(
  input: RunInput,
  s: RunState,
  name: string,
  f: StepFinished,
  host: HostRecord | undefined,
  now: string,
): void {
  const spec = input.pipeline.steps[name]!;
  const settled = settleStep(s.steps[name]!, {
    runId: input.runId,
    outcome: f.outcome,
    ...(host ? { host } : {}),
    earlierAttempts: s.earlierAttempts[name] ?? [],
    attemptOffset: s.attemptOffset[name] ?? 0,
    retries: spec.retries,
    mayRetryOnNewHost: Boolean(spec.machine) && !kubernetesMachineOf(input.pipeline, name) && !s.cancelRequested,
    now,
  });
  if (settled.kind === 'retry') {
    s.attemptOffset[name] = settled.attemptOffset;
    (s.earlierAttempts[name] ??= []).push(...settled.attempts);
  }
}

/** Whether live status is due: there is a target, and something changed since `intervalMs` ago (or `force`). */
export function publishDue(input: RunInput, s: RunState, force: boolean, now: number): boolean {
  if (input.status.kind === 'none' || (!s.dirty && !force)) return false;
  return force || now - s.lastPublish >= input.options.statusIntervalMs;
}

/** How long the loop waits for news before it looks again, ms: the status interval, at most `probeAfterMs`. */
export function wakeAfterMs(input: RunInput, probeAfterMs: number): number {
  return input.status.kind === 'none' ? probeAfterMs : Math.min(input.options.statusIntervalMs, probeAfterMs);
}

/**
 * The executions to ask directly whether they closed without their signal reaching the run:
 * after `probeAfterMs` of silence (the wait timed out), every started execution it waits for.
 * Undefined when no probe is due.
 */
export function probeKeys(s: RunState, woke: boolean, now: number, probeAfterMs: number): string[] | undefined {
  if (woke || now - s.lastNews < probeAfterMs || Object.keys(s.waiting).length === 0) return undefined;
  return Object.keys(s.waiting).filter((k) => !s.notStarted.has(k));
}

/** What `mayContinueAsNew` reads of Temporal's workflow info. */
export interface HistoryInfo {
  historyLength: number;
  continueAsNewSuggested: boolean;
}

/**
 * Whether the run continues as new now: its history passed `limit` events (or the server
 * suggests it), no host is being acquired, and no pool host is provisioning or running (their
 * in-flight operations do not carry over; `poolHosts` undefined = no pool).
 */
export function mayContinueAsNew(
  info: HistoryInfo,
  limit: number,
  s: RunState,
  poolHosts: HostPoolState['hosts'] | undefined,
): boolean {
  if (info.historyLength < limit && !info.continueAsNewSuggested) return false;
  if (s.acquiring > 0) return false;
  return !poolHosts || poolHosts.every((h) => h.state === 'terminated' || h.state === 'failed');
}

/** Whether every execution in `keys` (detached on cancel) has answered: applied already, or its signal is in. */
export function detachAnswered(s: RunState, keys: string[]): boolean {
  return keys.every((k) => !s.waiting[k] || s.finished.some((f) => f.key === k));
}

/** The final check-run/commit-status report of a run concluded `conclusion`, from its lineage record. */
export function finalReport(
  input: RunInput,
  recorded: RecordedLineage,
  conclusion: Conclusion,
): NonNullable<PublishRequest['final']> {
  return {
    conclusion,
    reportMarkdown: recorded.reportMarkdown,
    lineageKey: recorded.lineageKey,
    ...(recorded.failedStep ? { failedStep: recorded.failedStep } : {}),
    ...(recorded.comparison
      ? {
          comparison: {
            markdown: recorded.comparison.markdown,
            ...(input.trigger.kind === 'comment' ? { pullRequest: input.trigger.pr } : {}),
          },
        }
      : {}),
  };
}
