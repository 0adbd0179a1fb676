// One pipeline run: schedules the DAG with the parallelism its dependencies allow, asks
// the cache first, shares executions with other runs (single flight), retries steps that
// lost their host on a new one, reports live status, and always cleans up: instances are
// terminated and detached executions stopped even when the run is cancelled or fails.
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
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities/engine.js';
import {
  cancelSignal,
  detachSignal,
  releaseSignal,
  statusQuery,
  stepExecWorkflowId,
  stepFinishedSignal,
  supersedeSignal,
  type PrepareItem,
  type Prepared,
  type StepExecInput,
  type StepFinished,
} from '../model/contracts.js';
import { boundMessage } from '../model/bounds.js';
import { SEARCH_ATTRIBUTES, repositoryOf } from '../model/searchattributes.js';
import { LineageFacts, runEnd } from './openlineage.js';
import type { LineageFact } from '../model/openlineage.js';
import { HostPool, type HostPoolState } from './hostpool.js';
import type { HostRecord } from '../model/hosttypes.js';
import {
  applyCacheHit,
  cancelUnfinished,
  chargeKubernetes,
  checkConclusion,
  failSteps,
  failWithheld,
  initialSteps,
  kubernetesMachineOf,
  lostItsHost,
  markStarted,
  needsHostPool,
  pendingOnMachine,
  readySteps,
  runOutcome,
  runningCount,
  settleStep,
  skipBlocked,
  upstreamOf,
  type StepRecords,
} from './scheduler.js';
import type { AttemptRecord, RunInput, RunStatus, SupersededBy } from '../model/types.js';
import { FailureType } from '../model/failures.js';

/** State carried across continue-as-new. */
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

const PREPARE_BATCH = 200;
/** OpenLineage facts per activity call: a few KiB each, far under Temporal's payload limit. */
const LINEAGE_BATCH = 100;
/** Quiet time after which the run checks its executions directly. */
const PROBE_AFTER_MS = 5 * 60_000;

/**
 * The pipeline run workflow: the loop around the pure scheduler (workflows/scheduler.ts) —
 * prepare ready steps (cache lookups), start executions, apply their results as they signal
 * back, publish status — then clean-up, lineage and the final status, even when cancelled.
 * Continues as new (carrying `PipelineCarry`) when the history grows past `historyEventLimit`.
 */
export async function pipelineRun(input: RunInput, carry?: PipelineCarry): Promise<RunStatus> {
  const { pipeline, options } = input;
  const myId = workflowInfo().workflowId;
  const control = proxyActivities<ControlActivities>({
    taskQueue: options.controlQueue,
    startToCloseTimeout: '10 minutes',
    // Control activities heartbeat every 3 s while they run (activities/liveness.ts).
    heartbeatTimeout: '20 seconds',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: [FailureType.StepInvalid] },
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  // Best effort and off the run's path: the activity never throws, and bounds its own HTTP time.
  const lineage = proxyActivities<Pick<ControlActivities, 'emitOpenLineage'>>({
    taskQueue: options.controlQueue,
    startToCloseTimeout: '2 minutes',
    retry: { maximumAttempts: 2 },
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  // patched: histories recorded before OpenLineage events replay unchanged (no activity call).
  const lineagePatched = patched('openlineage-events');

  const steps: StepRecords = carry?.steps ?? initialSteps(pipeline);
  const waiting: Record<string, string[]> = carry?.waiting ?? {};
  const attemptOffset: Record<string, number> = carry?.attemptOffset ?? {};
  const earlierAttempts: Record<string, AttemptRecord[]> = {};
  const startedAt = carry?.startedAt ?? new Date().toISOString();
  const prepared = new Map<string, Prepared>();
  const finished: StepFinished[] = [];
  const hostOf = new Map<string, HostRecord>();
  let cancelRequested = false;
  let supersededBy: SupersededBy | undefined;
  let wake = false;
  let acquiring = 0;
  /** Keys whose execution is not started yet (waiting for a host). */
  const notStarted = new Set<string>();
  let runState: RunStatus['state'] = 'running';
  let lineageKey: string | undefined;
  let reportKey: string | undefined;
  // OpenLineage: unknown until the first send answers whether the worker has an endpoint.
  let lineageOn: boolean | undefined = !lineagePatched ? false : carry ? carry.openLineage === true : undefined;
  const lineageFacts = new LineageFacts(Boolean(carry), carry?.steps);
  let lineageSending: Promise<void> | undefined;

  const kubernetesMachine = (step: string) => kubernetesMachineOf(pipeline, step);
  // EC2 machines come from the run's host pool; Kubernetes machines are a Job per attempt.
  const pool = needsHostPool(pipeline)
    ? new HostPool({
        runId: input.runId,
        workflowId: myId,
        machines: pipeline.machines,
        stepTimeoutSeconds: Object.fromEntries(Object.values(pipeline.steps).map((s) => [s.name, s.timeoutSeconds])),
        ...(carry?.pool ? { restore: carry.pool } : {}),
      })
    : undefined;

  const snapshot = (): RunStatus => ({
    runId: input.runId,
    pipeline: pipeline.name,
    state: runState,
    startedAt,
    ...(runState !== 'running' ? { finishedAt: new Date().toISOString() } : {}),
    steps: pipeline.order.map((n) => steps[n]!),
    ...(lineageKey ? { lineageKey } : {}),
    ...(reportKey ? { reportKey } : {}),
    continuedAsNew: carry?.continuedAsNew ?? 0,
    ...(supersededBy ? { supersededBy } : {}),
  });

  setHandler(cancelSignal, () => {
    cancelRequested = true;
  });
  // A newer run of the same concurrency group started: stop as a Cancel would, and say why.
  setHandler(supersedeSignal, (by) => {
    supersededBy ??= by;
    cancelRequested = true;
  });
  setHandler(statusQuery, snapshot);
  let lastNews = Date.now();
  setHandler(stepFinishedSignal, (f) => {
    finished.push(f);
    lastNews = Date.now();
  });

  /**
   * Sends the OpenLineage facts owed since the last send, unless a send is still going (its
   * end wakes the loop, which sends the rest). Never blocks the run and never fails it.
   */
  const sendLineage = (extra: LineageFact[] = []): void => {
    if (lineageOn === false || lineageSending) return;
    const facts = [
      ...lineageFacts.take(
        pipeline.order.map((n) => steps[n]!),
        startedAt,
      ),
      ...extra,
    ];
    if (facts.length === 0) return;
    const request = {
      workflowId: myId,
      runId: input.runId,
      repository: repositoryOf(input.source) + (input.source.subdir ? `/${input.source.subdir}` : ''),
      pipeline: pipeline.name,
    };
    lineageSending = CancellationScope.nonCancellable(async () => {
      for (let i = 0; i < facts.length && lineageOn !== false; i += LINEAGE_BATCH) {
        try {
          lineageOn = (await lineage.emitOpenLineage({ ...request, facts: facts.slice(i, i + LINEAGE_BATCH) })).enabled;
        } catch (err) {
          log.warn('OpenLineage events were not sent; the run goes on', { error: String(err) });
        }
      }
    }).finally(() => {
      lineageSending = undefined;
      wake = true;
    });
  };
  /** Waits for the send going on, then sends (and waits for) everything owed. */
  const drainLineage = async (extra: LineageFact[] = []): Promise<void> => {
    while (lineageSending) await lineageSending;
    sendLineage(extra);
    while (lineageSending) await lineageSending;
  };

  let lastPublish = 0;
  let dirty = true;
  const publish = async (force: boolean): Promise<void> => {
    if (input.status.kind === 'none' || (!dirty && !force)) return;
    const now = Date.now();
    if (!force && now - lastPublish < options.statusIntervalMs) return;
    lastPublish = now;
    dirty = false;
    try {
      await control.publishStatus({ target: input.status, runId: input.runId, workflowId: myId, status: snapshot() });
    } catch (err) {
      log.warn('status publication failed; the run goes on', { error: String(err) });
    }
  };

  const applyFinished = async (f: StepFinished): Promise<void> => {
    const names = waiting[f.key] ?? [];
    delete waiting[f.key];
    for (const name of names) {
      const st = steps[name]!;
      const spec = pipeline.steps[name]!;
      const host = hostOf.get(name);
      hostOf.delete(name);
      const last = f.outcome.attempts.at(-1);
      const hostLost = lostItsHost(f.outcome);
      // Real GPU samples make the idle-GPU accounting exact.
      if (host && last?.gpu) host.gpu = last.gpu;
      if (host?.kind === 'kubernetes')
        chargeKubernetes(host, [...(earlierAttempts[name] ?? []), ...f.outcome.attempts]);
      if (pool && host && host.kind === 'ec2')
        await pool.release(host, pendingOnMachine(pipeline, steps, spec.machine!) + (hostLost ? 1 : 0), hostLost);
      const settled = settleStep(st, {
        runId: input.runId,
        outcome: f.outcome,
        ...(host ? { host } : {}),
        earlierAttempts: earlierAttempts[name] ?? [],
        attemptOffset: attemptOffset[name] ?? 0,
        retries: spec.retries,
        mayRetryOnNewHost: Boolean(spec.machine) && !kubernetesMachine(name) && !cancelRequested,
        now: new Date().toISOString(),
      });
      if (settled.kind === 'retry') {
        // The host died under the step: it goes back to pending and asks for a new one.
        attemptOffset[name] = settled.attemptOffset;
        (earlierAttempts[name] ??= []).push(...settled.attempts);
      }
    }
    dirty = true;
  };

  const startPrepared = async (items: Prepared[]): Promise<void> => {
    const execs: StepExecInput[] = [];
    const byKey = new Map<string, StepExecInput>();
    for (const p of items) {
      const spec = pipeline.steps[p.step]!;
      const st = steps[p.step]!;
      const joined = waiting[p.key] ?? (byKey.has(p.key) ? [] : undefined);
      markStarted(st, p, new Date().toISOString());
      if (joined !== undefined) {
        // Same key as a step already running in this run: one execution serves both.
        (waiting[p.key] ??= []).push(p.step);
        continue;
      }
      const execFor = (host: HostRecord): StepExecInput => ({
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
          pipeline: pipeline.name,
          finishedAt: '',
        },
        retries: spec.machine ? spec.retries - (attemptOffset[p.step] ?? 0) : spec.retries,
        heartbeatTimeoutMs: options.heartbeatTimeoutMs,
        // Local steps go to a shared queue: a lost runner (killed agent, a Temporal outage
        // longer than the heartbeat timeout) costs an attempt that any other agent can retry.
        sameHostRetries: spec.machine ? 0 : 4,
        attemptOffset: attemptOffset[p.step] ?? 0,
      });
      waiting[p.key] = [p.step];
      const kube = kubernetesMachine(p.step);
      if (kube) {
        // A Job per attempt, created and watched by the Kubernetes runner: no host to wait for.
        const host: HostRecord = {
          kind: 'kubernetes',
          queue: options.kubernetesQueue ?? 'trainyard-kubernetes',
          machineClass: kube.name,
          kubernetesClass: kube.spec.kubernetes,
          gpus: kube.spec.gpus,
        };
        hostOf.set(p.step, host);
        st.host = host;
        const exec = { ...execFor(host), retries: spec.retries, sameHostRetries: 2, attemptOffset: 0 };
        byKey.set(p.key, exec);
        execs.push(exec);
        continue;
      }
      if (spec.machine && pool) {
        // Getting a host may wait for another step to release one: never block the loop on it.
        acquiring++;
        notStarted.add(p.key);
        void (async () => {
          try {
            const host = await pool.acquire(spec.machine!, p.step, (attemptOffset[p.step] ?? 0) + 1);
            hostOf.set(p.step, host);
            st.host = host;
            await control.startSteps({
              runWorkflowId: myId,
              controlQueue: options.controlQueue,
              execs: [execFor(host)],
            });
            notStarted.delete(p.key);
          } catch (err) {
            if (isCancellation(err)) {
              cancelRequested = true;
              return;
            }
            const names = waiting[p.key] ?? [p.step];
            delete waiting[p.key];
            failSteps(steps, names, `no host: ${failureMessage(err)}`, new Date().toISOString());
          } finally {
            acquiring--;
            notStarted.delete(p.key);
            wake = dirty = true;
          }
        })();
        continue;
      }
      const host: HostRecord = { kind: 'local', queue: options.localHostQueue };
      hostOf.set(p.step, host);
      st.host = host;
      const exec = execFor(host);
      byKey.set(p.key, exec);
      execs.push(exec);
    }
    if (execs.length > 0) await control.startSteps({ runWorkflowId: myId, controlQueue: options.controlQueue, execs });
    dirty = true;
  };

  const mainLoop = async (): Promise<void> => {
    for (;;) {
      while (finished.length > 0) await applyFinished(finished.shift()!);
      if (skipBlocked(pipeline, steps)) dirty = true;
      if (cancelRequested) return;
      const ready = readySteps(pipeline, steps);
      const running = runningCount(pipeline, steps);
      const slots = options.parallelism - running;
      if (failWithheld(pipeline, steps, ready, input.secretsWithheld, new Date().toISOString()).length > 0) {
        dirty = true;
        continue;
      }
      if (ready.length > 0 && slots > 0) {
        const toPrepare = ready.filter((n) => !prepared.has(n)).slice(0, PREPARE_BATCH);
        if (toPrepare.length > 0) {
          const items: PrepareItem[] = toPrepare.map((n) => {
            const m = pipeline.steps[n]!.machine;
            return {
              step: n,
              spec: pipeline.steps[n]!,
              upstream: upstreamOf(pipeline, steps, n),
              gpus: m ? (pipeline.machines[m]?.gpus ?? 0) > 0 : false,
            };
          });
          let results: Prepared[];
          try {
            results = await control.prepareSteps({
              runId: input.runId,
              pipeline: pipeline.name,
              source: input.source,
              params: input.params,
              noCache: options.noCache,
              items,
            });
          } catch (err) {
            if (isCancellation(err)) throw err;
            const why = failureMessage(err);
            failSteps(steps, toPrepare, `could not prepare the step: ${why}`, new Date().toISOString());
            dirty = true;
            continue;
          }
          for (const r of results) {
            if (r.hit) {
              applyCacheHit(steps[r.step]!, { ...r, hit: r.hit }, new Date().toISOString());
              dirty = true;
            } else {
              prepared.set(r.step, r);
            }
          }
        }
        const startable = ready.filter((n) => prepared.has(n) && steps[n]!.state === 'pending').slice(0, slots);
        if (startable.length > 0) {
          const items = startable.map((n) => prepared.get(n)!);
          startable.forEach((n) => prepared.delete(n));
          await startPrepared(items);
        }
        if (toPrepare.length > 0 || startable.length > 0) continue;
      }
      if (running === 0 && finished.length === 0) {
        if (ready.length === 0) return;
      }
      await publish(false);
      sendLineage();
      if (shouldContinueAsNew()) {
        // The next execution takes every fact up to here as sent.
        await drainLineage();
        await continueAsNew<typeof pipelineRun>(input, {
          steps,
          waiting,
          attemptOffset,
          startedAt,
          continuedAsNew: (carry?.continuedAsNew ?? 0) + 1,
          ...(pool ? { pool: pool.state() } : {}),
          ...(lineageOn ? { openLineage: true } : {}),
        });
      }
      const woke = await condition(
        () => finished.length > 0 || cancelRequested || wake,
        input.status.kind === 'none' ? PROBE_AFTER_MS : Math.min(options.statusIntervalMs, PROBE_AFTER_MS),
      );
      wake = false;
      if (!woke && Date.now() - lastNews >= PROBE_AFTER_MS && Object.keys(waiting).length > 0) {
        // Nothing heard for a while: ask whether an execution closed without its signal reaching us.
        lastNews = Date.now();
        finished.push(...(await control.probeSteps({ keys: Object.keys(waiting).filter((k) => !notStarted.has(k)) })));
      }
    }
  };

  const shouldContinueAsNew = (): boolean => {
    const info = workflowInfo();
    if (info.historyLength < options.historyEventLimit && !info.continueAsNewSuggested) return false;
    if (acquiring > 0) return false;
    // Hosts being provisioned or running hold in-flight operations that do not carry over.
    return !pool || pool.state().hosts.every((h) => h.state === 'terminated' || h.state === 'failed');
  };

  if (input.concurrency && !carry) {
    const c = input.concurrency;
    try {
      await control.claimConcurrency({
        groupId: c.groupId,
        controlQueue: options.controlQueue,
        claim: { workflowId: myId, runId: input.runId, sha: input.source.commit, requestedAt: c.requestedAt },
      });
    } catch (err) {
      if (!isCancellation(err))
        log.warn('could not claim the concurrency group; this run supersedes nothing', {
          group: c.group,
          error: String(err),
        });
    }
  }
  await publish(true);
  sendLineage();
  try {
    await mainLoop();
  } catch (err) {
    if (!isCancellation(err)) throw err;
    cancelRequested = true;
  }

  return await CancellationScope.nonCancellable(async () => {
    if (cancelRequested) await cancelEverything();
    if (pool) await pool.shutdownAll();
    const outcome = runOutcome(pipeline, steps, cancelRequested);
    runState = outcome;
    if (input.concurrency) {
      try {
        await getExternalWorkflowHandle(input.concurrency.groupId).signal(releaseSignal, myId);
      } catch {
        // The group has closed (this run was superseded and a newer one released it).
      }
    }
    // Every step's last event, then the run's; sent while the lineage and the report are written.
    while (lineageSending) await lineageSending;
    sendLineage([runEnd(runState, new Date().toISOString())]);
    const recorded = await control.recordRunLineage({ input, status: snapshot() });
    lineageKey = recorded.lineageKey;
    reportKey = recorded.reportKey;
    // The conclusion for `trainyard runs --status`, only where the namespace has the attributes
    // (the run started with them); patched: histories recorded before this replay unchanged.
    if (workflowInfo().searchAttributes?.[SEARCH_ATTRIBUTES.pipeline] && patched('conclusion-search-attribute')) {
      upsertSearchAttributes({ [SEARCH_ATTRIBUTES.conclusion]: [runState] });
    }
    // Cost and the lineage document's digest for `trainyard runs`, read back from visibility's memo.
    if (patched('run-memo-lineage')) {
      upsertMemo({
        lineageKey: recorded.lineageKey,
        ...(recorded.lineageDigest ? { lineageDigest: recorded.lineageDigest } : {}),
        ...(recorded.costUsd !== undefined ? { costUsd: recorded.costUsd } : {}),
      });
    }
    if (input.status.kind !== 'none') {
      const conclusion = checkConclusion(pipeline, steps, outcome);
      try {
        await control.publishStatus({
          target: input.status,
          runId: input.runId,
          workflowId: myId,
          status: snapshot(),
          final: {
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
          },
        });
      } catch (err) {
        log.error('final status publication failed', { error: String(err) });
      }
    }
    await drainLineage();
    return snapshot();
  });

  async function cancelEverything(): Promise<void> {
    const keys = Object.keys(waiting);
    for (const key of keys) {
      try {
        await getExternalWorkflowHandle(stepExecWorkflowId(key)).signal(detachSignal, myId);
      } catch {
        // Already closed: its result is on its way or was delivered.
      }
    }
    // Each execution answers once its container is gone (or says another run still needs it).
    await condition(() => keys.every((k) => !waiting[k] || finished.some((f) => f.key === k)), '3 minutes');
    while (finished.length > 0) await applyFinished(finished.shift()!);
    cancelUnfinished(pipeline, steps, supersededBy);
  }
}

function failureMessage(err: unknown): string {
  let e: unknown = err;
  // ActivityFailure wraps the activity's own error as its cause.
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return boundMessage(e instanceof Error ? e.message : String(e));
}
