// One pipeline run: schedules the DAG with the parallelism its dependencies allow, asks
// the cache first, shares executions with other runs (single flight), retries steps that
// lost their host on a new one, reports live status, and always cleans up: instances are
// terminated and detached executions stopped even when the run is cancelled or fails.
// `pipelineRun` is a short loop of named phases (apply → advance → publish → await progress;
// then finish); what each phase decides is pure (workflows/runstate.ts, workflows/scheduler.ts).
// Temporal replays this code against recorded histories (test/replay): every activity call,
// signal, timer and `patched()` must stay in the same order with the same arguments.
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityInterfaceFor,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/engine.js';
import type { RecordedLineage } from '../activities/lineage/activity.js';
import type { Pipeline } from '../pipeline/types.js';
import {
  cancelSignal,
  detachSignal,
  releaseSignal,
  statusQuery,
  stepExecWorkflowId,
  stepFinishedSignal,
  supersedeSignal,
  type PrepareAnswer,
  type Prepared,
  type StepFinished,
} from '../model/contracts.js';
import { boundMessage } from '../model/bounds.js';
import { SEARCH_ATTRIBUTES, repositoryOf } from '../model/searchattributes.js';
import { LineageFacts, runEnd } from './openlineage.js';
import type { LineageFact } from '../model/openlineage.js';
import { HostPool } from './hostpool.js';
import {
  cancelUnfinished,
  checkConclusion,
  failSteps,
  failWithheld,
  needsHostPool,
  readySteps,
  runOutcome,
  runningCount,
  skipBlocked,
} from './scheduler.js';
import {
  acquisitionEnded,
  acquisitionFailed,
  applyPrepared,
  carryOf,
  detachAnswered,
  detachHost,
  finalReport,
  hostAcquired,
  initialRunState,
  lookaheadItems,
  mayContinueAsNew,
  planPreparation,
  planStarts,
  prepareItems,
  probeKeys,
  publishDue,
  requestCancel,
  runIsDone,
  runSnapshot,
  settleWaiting,
  stepExecInput,
  takeStartable,
  takeWaiting,
  wakeAfterMs,
  type PipelineCarry,
  type Plan,
  type RunState,
} from './runstate.js';
import type { RunConcurrency, RunInput, RunOptions, RunStatus } from '../model/types.js';
import { FailureType } from '../model/failures.js';

export type { PipelineCarry } from './runstate.js';

/** Ready steps per `prepareSteps` call. */
const PREPARE_BATCH = 200;
/**
 * Steps per `prepareSteps` call with those looked up ahead. A cache hit's answer is about
 * 1.1 KB of JSON, a miss's about 2.5 KB: at most ~2.5 MB, which app/codec.ts gzips to about a
 * tenth, under Temporal's 2 MB payload limit. A 1,000-step cached chain is then one call.
 */
const LOOKAHEAD_BATCH = 1000;
/** OpenLineage facts per activity call: a few KiB each, far under Temporal's payload limit. */
const LINEAGE_BATCH = 100;
/** Quiet time after which the run checks its executions directly. */
const PROBE_AFTER_MS = 5 * 60_000;

type Control = ActivityInterfaceFor<ControlActivities>;
type LineageControl = ActivityInterfaceFor<Pick<ControlActivities, 'emitOpenLineage'>>;

/** What every phase of a run works with: its input, its state, its activities and its host pool. */
interface Run {
  input: RunInput;
  pipeline: Pipeline;
  /** This run's workflow id (the waiter id step executions signal back to). */
  myId: string;
  s: RunState;
  control: Control;
  /** `startSteps` as a local activity (see activitiesFor). */
  local: Pick<Control, 'startSteps'>;
  /** EC2 machines come from the run's host pool; Kubernetes machines are a Job per attempt. */
  pool: HostPool | undefined;
  lineage: LineageSender;
}

/**
 * The pipeline run workflow: the loop around the pure scheduler (workflows/runstate.ts and
 * workflows/scheduler.ts) — apply the executions that finished, prepare and start what is ready,
 * publish status, wait for news — then clean-up, lineage and the final status, even when
 * cancelled. Continues as new (carrying `PipelineCarry`) when the history grows past
 * `historyEventLimit`.
 */
export async function pipelineRun(input: RunInput, carry?: PipelineCarry): Promise<RunStatus> {
  const run = openRun(input, carry);
  listen(run);
  if (input.concurrency && !carry) await claimGroup(run, input.concurrency);
  await publish(run, true);
  run.lineage.send();
  try {
    await schedule(run);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    run.s.cancelRequested = true;
  }
  return await CancellationScope.nonCancellable(() => finish(run));
}

/** The run's activities, state, host pool and lineage sender, from its input and what an earlier execution carried. */
function openRun(input: RunInput, carry: PipelineCarry | undefined): Run {
  const { pipeline, options } = input;
  const myId = workflowInfo().workflowId;
  const { control, local, lineage } = activitiesFor(options);
  // patched: histories recorded before OpenLineage events replay unchanged (no activity call).
  const lineagePatched = patched('openlineage-events');
  const s = initialRunState(pipeline, carry, Date.now(), new Date().toISOString());
  const pool = needsHostPool(pipeline)
    ? new HostPool({
        runId: input.runId,
        workflowId: myId,
        machines: pipeline.machines,
        stepTimeoutSeconds: Object.fromEntries(Object.values(pipeline.steps).map((st) => [st.name, st.timeoutSeconds])),
        ...(carry?.pool ? { restore: carry.pool } : {}),
      })
    : undefined;
  const enabled = !lineagePatched ? false : carry ? carry.openLineage === true : undefined;
  const sender = new LineageSender(input, myId, s, lineage, enabled, new LineageFacts(Boolean(carry), carry?.steps));
  return { input, pipeline, myId, s, control, local, pool, lineage: sender };
}

/**
 * The control activities (retried 5 times, but never a step that is invalid), `startSteps` as a
 * local activity, and the best-effort OpenLineage one.
 */
function activitiesFor(options: RunOptions): {
  control: Control;
  local: Pick<Control, 'startSteps'>;
  lineage: LineageControl;
} {
  const retry = { maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.StepInvalid] };
  const control = proxyActivities<ControlActivities>({
    taskQueue: options.controlQueue,
    startToCloseTimeout: '10 minutes',
    // Control activities heartbeat every 3 s while they run (activities/liveness.ts).
    heartbeatTimeout: '20 seconds',
    retry,
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  // The worker that runs this workflow registers the control activities (the control queue), so
  // the executions start in the workflow's own task, right after the cache lookup's answer: no
  // activity task and no workflow task to hear that they started. Its result is a marker in the
  // history; a worker that dies mid-way fails the workflow task, whose retry starts them again
  // (signalWithStart joins an execution already started). The lookup stays a regular activity:
  // a cancel that arrives while it runs is then seen before anything starts (see advance).
  const local = proxyLocalActivities<Pick<ControlActivities, 'startSteps'>>({
    startToCloseTimeout: '2 minutes',
    retry,
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  // Best effort and off the run's path: the activity never throws, and bounds its own HTTP time.
  const lineage = proxyActivities<Pick<ControlActivities, 'emitOpenLineage'>>({
    taskQueue: options.controlQueue,
    startToCloseTimeout: '2 minutes',
    retry: { maximumAttempts: 2 },
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  return { control, local, lineage };
}

/**
 * `startSteps`: a local activity, or for histories recorded before it was (patched), the
 * regular activity those histories scheduled.
 */
function startSteps(run: Run): Control['startSteps'] {
  return patched('local-start-steps') ? run.local.startSteps : run.control.startSteps;
}

/** Signals and the status query: they only change state; the loop acts on it. */
function listen(run: Run): void {
  const { s } = run;
  setHandler(cancelSignal, () => requestCancel(s));
  // A newer run of the same concurrency group started: stop as a Cancel would, and say why.
  setHandler(supersedeSignal, (by) => requestCancel(s, by));
  setHandler(statusQuery, () => snapshot(run));
  setHandler(stepFinishedSignal, (f) => {
    s.finished.push(f);
    s.lastNews = Date.now();
  });
}

/** Tells the concurrency group this run started (it supersedes older runs); a failure only costs that. */
async function claimGroup(run: Run, c: RunConcurrency): Promise<void> {
  const { input } = run;
  try {
    await run.control.claimConcurrency({
      groupId: c.groupId,
      controlQueue: input.options.controlQueue,
      claim: { workflowId: run.myId, runId: input.runId, sha: input.source.commit, requestedAt: c.requestedAt },
    });
  } catch (err) {
    if (!isCancellation(err))
      log.warn('could not claim the concurrency group; this run supersedes nothing', {
        group: c.group,
        error: String(err),
      });
  }
}

/**
 * The loop: returns when every step is final or the run is cancelled; continues as new when due.
 * Its awaits follow those of the single loop it replaced (one per finished execution, activity
 * and timer), because coroutines resumed in one activation (host acquisitions, lineage sends)
 * interleave by microtask: an extra await could reorder their commands against a recorded
 * history. `advance` and `awaitProgress` add one microtask on return (test/replay passes).
 */
async function schedule(run: Run): Promise<void> {
  const { s } = run;
  for (;;) {
    // A cancel comes before results that arrive with it: what follows a step the cancel stopped
    // ends cancelled, not skipped, however the two signals were batched into activations (the
    // results are applied by cancelEverything). patched: earlier histories replay unchanged.
    if (s.cancelRequested && patched('cancel-before-results')) return;
    while (s.finished.length > 0) await applyFinished(run, s.finished.shift()!);
    if (skipBlocked(run.pipeline, s.steps)) s.dirty = true;
    if (s.cancelRequested) return;
    const plan = nextPlan(run);
    if (!plan) continue;
    if (plan.ready.length > 0 && plan.slots > 0 && (await advance(run, plan))) continue;
    if (runIsDone(s, plan)) return;
    await publish(run, false);
    run.lineage.send();
    const poolHosts = run.pool?.state().hosts;
    if (mayContinueAsNew(workflowInfo(), run.input.options.historyEventLimit, s, poolHosts)) await continueRun(run);
    await awaitProgress(run);
  }
}

/** Applies an execution that signalled its end to the steps waiting for it, releasing their hosts. */
async function applyFinished(run: Run, f: StepFinished): Promise<void> {
  const { s } = run;
  for (const name of takeWaiting(s, f.key)) {
    const { host, release } = detachHost(run.pipeline, s, name, f);
    if (release && run.pool) await run.pool.release(release.host, release.stillNeeded, release.broken);
    settleWaiting(run.input, s, name, f, host, new Date().toISOString());
  }
  s.dirty = true;
}

/** What is ready and what to prepare; undefined when steps whose secrets are withheld failed instead (look again). */
function nextPlan(run: Run): Plan | undefined {
  const { input, s } = run;
  const ready = readySteps(run.pipeline, s.steps);
  const plan = planPreparation(s, ready, runningCount(run.pipeline, s.steps), input.options.parallelism, PREPARE_BATCH);
  if (failWithheld(run.pipeline, s.steps, ready, input.secretsWithheld, new Date().toISOString()).length === 0)
    return plan;
  s.dirty = true;
  return undefined;
}

/**
 * Looks the planned steps up in the cache (`prepareSteps`; a failure fails them) and starts
 * those a slot allows. Returns whether anything was prepared or started: look again at once.
 */
async function advance(run: Run, plan: Plan): Promise<boolean> {
  const { input, s } = run;
  if (plan.toPrepare.length > 0) {
    const items = prepareItems(run.pipeline, s.steps, plan.toPrepare);
    // Steps after these are looked up in the same call, so a cached chain costs one activity
    // rather than one per layer. patched: histories recorded one layer per call replay unchanged.
    if (!input.options.noCache && s.lookahead && patched('prepare-lookahead'))
      items.push(
        ...lookaheadItems(
          run.pipeline,
          s,
          plan.toPrepare,
          LOOKAHEAD_BATCH - items.length,
          Boolean(input.secretsWithheld),
        ),
      );
    let results: PrepareAnswer[];
    try {
      results = await run.control.prepareSteps({
        runId: input.runId,
        pipeline: run.pipeline.name,
        source: input.source,
        params: input.params,
        noCache: input.options.noCache,
        items,
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      failSteps(
        s.steps,
        plan.toPrepare,
        `could not prepare the step: ${failureMessage(err)}`,
        new Date().toISOString(),
      );
      s.dirty = true;
      return true;
    }
    applyPrepared(s, results, new Date().toISOString());
    // Cancelled (or superseded) while the cache was looked up: start nothing. An execution
    // started now would be detached at once, and a cancel that reaches its runner within
    // moments of its start can be lost on the way (the container then ran to its timeout).
    // patched: histories that started steps after such a cancel replay unchanged.
    if (s.cancelRequested && patched('no-start-after-cancel')) return true;
  }
  const items = takeStartable(s, plan);
  if (items.length > 0) await startPrepared(run, items);
  return plan.toPrepare.length > 0 || items.length > 0;
}

/** Starts prepared steps: one `startSteps` call for local and Kubernetes steps; pool steps first get a host, off the loop. */
async function startPrepared(run: Run, items: Prepared[]): Promise<void> {
  const plan = planStarts(run.input, run.s, items, Boolean(run.pool), new Date().toISOString());
  // Getting a host may wait for another step to release one: never block the loop on it.
  for (const p of plan.acquire) void acquireAndStart(run, run.pool!, p);
  if (plan.execs.length > 0)
    await startSteps(run)({
      runWorkflowId: run.myId,
      controlQueue: run.input.options.controlQueue,
      execs: plan.execs,
    });
}

/** Gets a pool host for `p`'s step and starts its execution there; a failure fails every step waiting for it. */
async function acquireAndStart(run: Run, pool: HostPool, p: Prepared): Promise<void> {
  const { input, s } = run;
  try {
    const host = await pool.acquire(input.pipeline.steps[p.step]!.machine!, p.step, (s.attemptOffset[p.step] ?? 0) + 1);
    hostAcquired(s, p.step, host);
    await startSteps(run)({
      runWorkflowId: run.myId,
      controlQueue: input.options.controlQueue,
      execs: [stepExecInput({ input, attemptOffset: s.attemptOffset }, p, host)],
    });
  } catch (err) {
    if (isCancellation(err)) {
      s.cancelRequested = true;
      return;
    }
    acquisitionFailed(s, p.key, p.step, `no host: ${failureMessage(err)}`, new Date().toISOString());
  } finally {
    acquisitionEnded(s, p.key);
  }
}

/** Live status, at most every `statusIntervalMs` unless `force`; a failure only costs the update. */
async function publish(run: Run, force: boolean): Promise<void> {
  const { input, s } = run;
  const now = Date.now();
  if (!publishDue(input, s, force, now)) return;
  s.lastPublish = now;
  s.dirty = false;
  try {
    await run.control.publishStatus({
      target: input.status,
      runId: input.runId,
      workflowId: run.myId,
      status: snapshot(run),
    });
  } catch (err) {
    log.warn('status publication failed; the run goes on', { error: String(err) });
  }
}

/** Hands the run to a new execution with a short history (Temporal's continue-as-new); never returns. */
async function continueRun(run: Run): Promise<never> {
  // The next execution takes every fact up to here as sent.
  await run.lineage.drain();
  return await continueAsNew<typeof pipelineRun>(run.input, carryOf(run.s, run.pool?.state(), run.lineage.enabled));
}

/** Waits for a signal, a wake-up or the status interval; after long silence, probes the executions. */
async function awaitProgress(run: Run): Promise<void> {
  const { s } = run;
  const woke = await condition(
    () => s.finished.length > 0 || s.cancelRequested || s.wake,
    wakeAfterMs(run.input, PROBE_AFTER_MS),
  );
  s.wake = false;
  const keys = probeKeys(s, woke, Date.now(), PROBE_AFTER_MS);
  if (!keys) return;
  // Nothing heard for a while: ask whether an execution closed without its signal reaching us.
  s.lastNews = Date.now();
  s.finished.push(...(await run.control.probeSteps({ keys })));
}

/** Clean-up, lineage and the final status; runs in a non-cancellable scope, so a cancel cannot skip it. */
async function finish(run: Run): Promise<RunStatus> {
  const { input, s } = run;
  if (s.cancelRequested) await cancelEverything(run);
  if (run.pool) await run.pool.shutdownAll();
  const outcome = runOutcome(run.pipeline, s.steps, s.cancelRequested);
  s.state = outcome;
  if (input.concurrency) await releaseGroup(run, input.concurrency.groupId);
  // Every step's last event, then the run's; sent while the lineage and the report are written.
  await run.lineage.settle();
  run.lineage.send([runEnd(outcome, new Date().toISOString())]);
  const recorded = await run.control.recordRunLineage({ input, status: snapshot(run) });
  s.lineageKey = recorded.lineageKey;
  s.reportKey = recorded.reportKey;
  markVisibility(recorded, outcome);
  if (input.status.kind !== 'none') {
    try {
      await run.control.publishStatus({
        target: input.status,
        runId: input.runId,
        workflowId: run.myId,
        status: snapshot(run),
        final: finalReport(input, recorded, checkConclusion(run.pipeline, s.steps, outcome)),
      });
    } catch (err) {
      log.error('final status publication failed', { error: String(err) });
    }
  }
  await run.lineage.drain();
  return snapshot(run);
}

/** Detaches from every execution still awaited, waits (3 minutes at most) for their answers, and cancels what is left. */
async function cancelEverything(run: Run): Promise<void> {
  const { s } = run;
  const keys = Object.keys(s.waiting);
  for (const key of keys) {
    try {
      await getExternalWorkflowHandle(stepExecWorkflowId(key)).signal(detachSignal, run.myId);
    } catch {
      // Already closed: its result is on its way or was delivered.
    }
  }
  // Each execution answers once its container is gone (or says another run still needs it).
  await condition(() => detachAnswered(s, keys), '3 minutes');
  while (s.finished.length > 0) await applyFinished(run, s.finished.shift()!);
  cancelUnfinished(run.pipeline, s.steps, s.supersededBy);
}

/** Tells the concurrency group this run ended. */
async function releaseGroup(run: Run, groupId: string): Promise<void> {
  try {
    await getExternalWorkflowHandle(groupId).signal(releaseSignal, run.myId);
  } catch {
    // The group has closed (this run was superseded and a newer one released it).
  }
}

/** The run's conclusion, cost and lineage digest on its visibility record (search attribute and memo). */
function markVisibility(recorded: RecordedLineage, outcome: RunStatus['state']): void {
  // The conclusion for `trainyard runs --status`, only where the namespace has the attributes
  // (the run started with them); patched: histories recorded before this replay unchanged.
  if (workflowInfo().searchAttributes?.[SEARCH_ATTRIBUTES.pipeline] && patched('conclusion-search-attribute')) {
    upsertSearchAttributes({ [SEARCH_ATTRIBUTES.conclusion]: [outcome] });
  }
  // Cost and the lineage document's digest for `trainyard runs`, read back from visibility's memo.
  if (patched('run-memo-lineage')) {
    upsertMemo({
      lineageKey: recorded.lineageKey,
      ...(recorded.lineageDigest ? { lineageDigest: recorded.lineageDigest } : {}),
      ...(recorded.costUsd !== undefined ? { costUsd: recorded.costUsd } : {}),
    });
  }
}

/** The run's status now (the status query's answer). */
function snapshot(run: Run): RunStatus {
  return runSnapshot(run.input, run.s, new Date().toISOString());
}

/**
 * Sends OpenLineage facts as the run goes, in batches of `LINEAGE_BATCH`, one send at a time,
 * in a non-cancellable scope. Never blocks the run and never fails it. `enabled` is unknown
 * (undefined) until the first send answers whether the control worker has an endpoint.
 */
class LineageSender {
  private sending: Promise<void> | undefined;

  constructor(
    private readonly input: RunInput,
    private readonly myId: string,
    private readonly s: RunState,
    private readonly activities: LineageControl,
    public enabled: boolean | undefined,
    private readonly facts: LineageFacts,
  ) {}

  /** Sends the facts owed since the last send, unless a send is going on (its end wakes the loop, which sends the rest). */
  send(extra: LineageFact[] = []): void {
    if (this.enabled === false || this.sending) return;
    const { input, s } = this;
    const facts = [
      ...this.facts.take(
        input.pipeline.order.map((n) => s.steps[n]!),
        s.startedAt,
      ),
      ...extra,
    ];
    if (facts.length === 0) return;
    const request = {
      workflowId: this.myId,
      runId: input.runId,
      repository: repositoryOf(input.source) + (input.source.subdir ? `/${input.source.subdir}` : ''),
      pipeline: input.pipeline.name,
    };
    this.sending = CancellationScope.nonCancellable(async () => {
      for (let i = 0; i < facts.length && this.enabled !== false; i += LINEAGE_BATCH) {
        try {
          const batch = facts.slice(i, i + LINEAGE_BATCH);
          this.enabled = (await this.activities.emitOpenLineage({ ...request, facts: batch })).enabled;
        } catch (err) {
          log.warn('OpenLineage events were not sent; the run goes on', { error: String(err) });
        }
      }
    }).finally(() => {
      this.sending = undefined;
      s.wake = true;
    });
  }

  /** Waits for the send going on, if any. */
  async settle(): Promise<void> {
    while (this.sending) await this.sending;
  }

  /** Waits for the send going on, then sends (and waits for) everything owed. */
  async drain(extra: LineageFact[] = []): Promise<void> {
    await this.settle();
    this.send(extra);
    await this.settle();
  }
}

/** The innermost message of an activity failure, bounded for a step record. */
function failureMessage(err: unknown): string {
  let e: unknown = err;
  // ActivityFailure wraps the activity's own error as its cause.
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return boundMessage(e instanceof Error ? e.message : String(e));
}
