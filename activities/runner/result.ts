// The result of one attempt, as every runner reports it to the step workflow: a
// RunStepResult on success, an ApplicationFailure carrying StepFailureDetails otherwise.
// Both hold references and bounded text only (model/bounds.ts).
import { ApplicationFailure } from '@temporalio/activity';
import type { RunStepResult, StepFailureDetails } from '../../model/contracts.js';
import { boundMessage } from '../../model/bounds.js';
import type { HostRecord } from '../../model/hosttypes.js';
import type { ArtifactRef } from '../../model/types.js';
import type { StoredOutput } from './output.js';
import type { FailureType } from '../../model/failures.js';

/** Failure types the step workflow knows; none of them is retried by Temporal itself. */
export type StepFailureType =
  typeof FailureType.StepFailed | typeof FailureType.StepTimedOut | typeof FailureType.StepInvalid;

export interface AttemptFacts {
  startedAt: string;
  /** Defaults to now. */
  finishedAt?: string;
  /** Name of the host in lineage. */
  host: string;
  /** Log and metrics, when the process ran. */
  stored?: StoredOutput;
}

export function failureDetails(exitCode: number | null, facts: AttemptFacts): StepFailureDetails {
  return {
    exitCode,
    ...(facts.stored ? { logDigest: facts.stored.log.digest } : {}),
    startedAt: facts.startedAt,
    finishedAt: facts.finishedAt ?? new Date().toISOString(),
    host: facts.host,
    ...(facts.stored?.metrics ? { metrics: facts.stored.metrics } : {}),
  };
}

/** A non-retryable failure of the attempt; the message is cut to MESSAGE_MAX_CHARS. */
export function stepFailure(
  type: StepFailureType,
  message: string,
  exitCode: number | null,
  facts: AttemptFacts,
): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: boundMessage(message),
    nonRetryable: true,
    details: [failureDetails(exitCode, facts)],
  });
}

export function stepResult(a: {
  outputs: Record<string, ArtifactRef>;
  facts: AttemptFacts & { stored: StoredOutput; finishedAt: string };
  /** Temporal's attempt number of the activity (>1 after a lost worker). */
  activityAttempt: number;
  gpu?: HostRecord['gpu'];
}): RunStepResult {
  const { stored } = a.facts;
  return {
    exitCode: 0,
    outputs: a.outputs,
    logDigest: stored.log.digest,
    startedAt: a.facts.startedAt,
    finishedAt: a.facts.finishedAt,
    host: a.facts.host,
    activityAttempt: a.activityAttempt,
    ...(stored.metrics ? { metrics: stored.metrics } : {}),
    ...(a.gpu ? { gpu: a.gpu } : {}),
  };
}
