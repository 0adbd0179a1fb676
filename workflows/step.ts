// One execution of one cache key, shared by every run that needs it at the same time
// (single flight: the workflow id is the key). Runs the container, retries failures with
// backoff, records the cache entry, and signals the result to every waiting run. When the
// last waiter detaches (its run was cancelled) the container is stopped; while any other
// run still waits, it keeps going.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities, HostActivities } from '../activities/engine.js';
import {
  attachSignal,
  detachSignal,
  execStateQuery,
  stepFinishedSignal,
  type RunStepResult,
  type StepExecInput,
  type StepFailureDetails,
} from '../model/contracts.js';
import { boundMessage } from '../model/bounds.js';
import type { AttemptRecord, StepMetrics, StepOutcome } from '../model/types.js';
import { FailureType } from '../model/failures.js';

export async function stepExecution(input: StepExecInput): Promise<StepOutcome> {
  const waiters = new Set<string>();
  const detached = new Set<string>();
  const notified = new Set<string>();
  const attempts: AttemptRecord[] = [];
  let everAttached = false;
  let phase = 'starting';

  // The cache lookup and record are one read or write of the store each: local activities, run
  // by the worker that runs this workflow (which registers the control activities), without
  // a round trip through a task queue per step. They retry as regular activities would.
  // Executions started before this change replay with the regular activities they recorded.
  const control: Pick<ControlActivities, 'lookupCache' | 'recordCache'> = patched('cache-local-activities')
    ? proxyLocalActivities<ControlActivities>({ startToCloseTimeout: '2 minutes', retry: { maximumAttempts: 5 } })
    : proxyActivities<ControlActivities>({
        taskQueue: workflowInfo().taskQueue,
        startToCloseTimeout: '2 minutes',
        // Control activities heartbeat every 3 s while they run (activities/liveness.ts).
        heartbeatTimeout: '20 seconds',
        retry: { maximumAttempts: 5 },
        cancellationType: ActivityCancellationType.TRY_CANCEL,
      });

  const notify = async (w: string, outcome: StepOutcome): Promise<void> => {
    notified.add(w);
    try {
      await getExternalWorkflowHandle(w).signal(stepFinishedSignal, { key: input.key, outcome });
    } catch {
      // The waiter closed meanwhile (finished or terminated): nobody to tell.
    }
  };

  setHandler(attachSignal, (w) => {
    everAttached = true;
    waiters.add(w);
    detached.delete(w);
  });
  setHandler(detachSignal, async (w) => {
    if (!waiters.delete(w)) return;
    if (waiters.size === 0) {
      detached.add(w); // told once the container is gone
      return;
    }
    await notify(w, {
      state: 'cancelled',
      outputs: {},
      attempts: [...attempts],
      producedBy: input.producedBy,
      message: `left running: still needed by ${[...waiters].join(', ')}`,
    });
  });
  setHandler(execStateQuery, () => ({ state: phase, waiters: [...waiters], attempts }));

  const work = new CancellationScope();
  const running = work.run(() => execute(input, attempts, control, (p) => (phase = p)));
  // Abandoned: every run that wanted the result was cancelled.
  const abandoned = condition(() => everAttached && waiters.size === 0);
  let outcome: StepOutcome;
  const first = await Promise.race([
    running.then(
      () => 'done' as const,
      () => 'done' as const,
    ),
    abandoned.then(() => 'abandoned' as const),
  ]);
  if (first === 'abandoned') work.cancel();
  try {
    outcome = await running;
  } catch (err) {
    if (!isCancellation(err)) throw err;
    outcome = {
      state: 'cancelled',
      outputs: {},
      attempts,
      producedBy: input.producedBy,
      message: 'cancelled: no run needs this step any more',
    };
  }
  phase = outcome.state;
  // Detached runs are told too, once the container is gone, so a cancelled run can
  // report that nothing it started is still running.
  const tell = (): string[] => [...waiters, ...detached].filter((w) => !notified.has(w));
  for (let pending = tell(); pending.length > 0; pending = tell()) {
    await Promise.all(pending.map((w) => notify(w, outcome)));
  }
  return outcome;
}

async function execute(
  input: StepExecInput,
  attempts: AttemptRecord[],
  control: Pick<ControlActivities, 'lookupCache' | 'recordCache'>,
  setPhase: (p: string) => void,
): Promise<StepOutcome> {
  if (input.useCache) {
    setPhase('cache-lookup');
    const hit = await control.lookupCache(input.key);
    if (hit) {
      return {
        state: 'succeeded',
        outputs: hit.outputs,
        attempts: hit.attempts,
        ...(hit.metrics ? { metrics: hit.metrics } : {}),
        logDigest: hit.logDigest,
        producedBy: hit.source,
      };
    }
  }
  const host = proxyActivities<HostActivities>({
    taskQueue: input.hostQueue,
    // The step's own timeout is enforced inside the activity (to report it as such);
    // this one only catches a runner that never answers.
    startToCloseTimeout: (input.spec.timeoutSeconds + 600) * 1000,
    heartbeatTimeout: input.heartbeatTimeoutMs,
    retry: {
      maximumAttempts: 1 + input.sameHostRetries,
      initialInterval: '1 second',
      nonRetryableErrorTypes: [
        FailureType.StepFailed,
        FailureType.StepTimedOut,
        FailureType.StepInvalid,
        FailureType.StepHostLost,
      ],
    },
    // Wait until the runner confirms the container is gone before reporting cancelled.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });

  let maxAttempts = input.retries + 1;
  let lostPods = 0;
  let last: StepOutcome | undefined;
  for (let i = 0; i < maxAttempts; i++) {
    const attempt = input.attemptOffset + attempts.length + 1;
    if (i > 0) await sleep(Math.min(2 ** (i - 1) * 5_000, 300_000));
    setPhase('running');
    const startedAt = new Date().toISOString();
    try {
      const r: RunStepResult = await host.runStep({
        execId: workflowInfo().workflowId,
        attempt,
        spec: input.spec,
        heartbeatTimeoutMs: input.heartbeatTimeoutMs,
        ...(input.host.kind === 'kubernetes' ? { host: input.host, runId: input.producedBy.runId } : {}),
      });
      // Earlier Temporal attempts of this activity were workers lost mid-step.
      for (let lost = 1; lost < r.activityAttempt; lost++) {
        attempts.push({
          attempt: attempts.length + input.attemptOffset + 1,
          host: input.host.queue,
          startedAt,
          finishedAt: r.startedAt,
          exitCode: null,
          outcome: 'host_lost',
          message: 'the runner stopped heartbeating (worker lost); retried',
        });
      }
      attempts.push({
        attempt: attempts.length + input.attemptOffset + 1,
        host: r.host,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
        exitCode: r.exitCode,
        outcome: 'succeeded',
        logDigest: r.logDigest,
        ...(r.gpu ? { gpu: r.gpu } : {}),
        ...(r.compute ? { compute: r.compute } : {}),
      });
      const outcome: StepOutcome = {
        state: 'succeeded',
        outputs: r.outputs,
        attempts,
        ...(r.metrics ? { metrics: r.metrics } : {}),
        logDigest: r.logDigest,
        producedBy: { ...input.producedBy, finishedAt: r.finishedAt },
      };
      const recordKey = input.recordKey ?? (input.useCache ? input.key : undefined);
      if (recordKey) {
        setPhase('recording');
        await control.recordCache({
          key: recordKey,
          outputs: r.outputs,
          ...(r.metrics ? { metrics: r.metrics } : {}),
          logDigest: r.logDigest,
          attempts,
          source: { ...input.producedBy, finishedAt: r.finishedAt },
          parts: input.parts,
        });
      }
      return outcome;
    } catch (err) {
      if (isCancellation(err)) throw err;
      const rec = attemptFromFailure(err, attempts.length + input.attemptOffset + 1, input.host.queue, startedAt);
      attempts.push(rec.attempt);
      last = {
        state: 'failed',
        outputs: {},
        attempts,
        ...(rec.metrics ? { metrics: rec.metrics } : {}),
        logDigest: rec.attempt.logDigest,
        producedBy: input.producedBy,
        ...(rec.attempt.message !== undefined ? { message: rec.attempt.message } : {}),
      };
      // A machine step's host is gone: the run must get it a new one.
      if (rec.final || (rec.attempt.outcome === 'host_lost' && input.host.kind === 'ec2')) break;
      // A Kubernetes pod lost (evicted, deleted, its node gone) is retried on a new pod without
      // using the step's own retries, as a lost local runner is (sameHostRetries).
      if (rec.attempt.outcome === 'host_lost' && input.host.kind === 'kubernetes' && lostPods < input.sameHostRetries) {
        lostPods++;
        maxAttempts++;
      }
    }
  }
  return last!;
}

function attemptFromFailure(
  err: unknown,
  attempt: number,
  queue: string,
  startedAt: string,
): { attempt: AttemptRecord; metrics: StepMetrics | undefined; final: boolean } {
  const now = new Date().toISOString();
  const base: AttemptRecord = { attempt, host: queue, startedAt, finishedAt: now, exitCode: null, outcome: 'failed' };
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    const cause = err.cause;
    const d = (cause.details?.[0] ?? undefined) as StepFailureDetails | undefined;
    const a: AttemptRecord = {
      ...base,
      ...(d ? { host: d.host, startedAt: d.startedAt, finishedAt: d.finishedAt, exitCode: d.exitCode } : {}),
      ...(d?.logDigest ? { logDigest: d.logDigest } : {}),
      ...(d?.compute ? { compute: d.compute } : {}),
      outcome:
        cause.type === FailureType.StepTimedOut
          ? 'timed_out'
          : cause.type === FailureType.StepHostLost
            ? 'host_lost'
            : 'failed',
      message: boundMessage(cause.message),
    };
    // A definition problem (missing image, bad output) will not get better by retrying.
    return { attempt: a, metrics: d?.metrics, final: cause.type === FailureType.StepInvalid };
  }
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) {
    return {
      attempt: {
        ...base,
        outcome: 'host_lost' as const,
        message: `the host stopped answering (${String(err.cause.timeoutType).toLowerCase().replace(/_/g, '-')} timeout)`,
      },
      metrics: undefined,
      final: false,
    };
  }
  const message = boundMessage(err instanceof Error ? err.message : String(err));
  return { attempt: { ...base, message }, metrics: undefined, final: false };
}
