// Messages between the pipeline workflow, the step-execution workflows and the
// activities. Types and signal/query definitions only (deterministic).
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { AttemptCompute, HostRecord } from './hosttypes.js';
import type {
  ArtifactRef,
  AttemptRecord,
  CacheDecision,
  CacheKeyParts,
  CacheSource,
  Digest,
  ParamValue,
  ResolvedInput,
  RunStatus,
  SourceRef,
  StepMetrics,
  StepOutcome,
  StepSpec,
  SupersededBy,
} from './types.js';

/** What a step execution runs: everything resolved, nothing left to look up. */
export interface ExecSpec {
  pipeline: string;
  step: string;
  image: string;
  command: string[];
  env: Record<string, string>;
  params: Record<string, ParamValue>;
  inputs: Record<string, ArtifactRef>;
  outputs: string[];
  source: SourceRef;
  timeoutSeconds: number;
  gpus: boolean;
  /** Names of the secrets the runner fetches from its own secret source (activities/secrets.ts); never values. */
  secrets?: string[];
}

export interface StepExecInput {
  /** Cache key (salted when the cache is off, so nothing is shared). */
  key: string;
  /** Look the key up first. */
  useCache: boolean;
  /** Record the result under this key (set with --no-cache: results still feed later runs). */
  recordKey?: string;
  spec: ExecSpec;
  parts: CacheKeyParts;
  hostQueue: string;
  host: HostRecord;
  /** The run that started this execution (recorded as the producer). */
  producedBy: CacheSource;
  retries: number;
  heartbeatTimeoutMs: number;
  /** Infrastructure retries on the same queue when the worker is lost (local host). */
  sameHostRetries: number;
  /** Attempt numbers already used by earlier executions (host-loss re-tries on a new host). */
  attemptOffset: number;
}

export interface StepFinished {
  key: string;
  outcome: StepOutcome;
}

/** The waiter (a pipeline run's workflow id) wants the result. */
export const attachSignal = defineSignal<[string]>('attach');
/** The waiter no longer wants it (its run was cancelled). */
export const detachSignal = defineSignal<[string]>('detach');
/** Sent by a step execution to every waiter. */
export const stepFinishedSignal = defineSignal<[StepFinished]>('stepFinished');
export const execStateQuery = defineQuery<{ state: string; waiters: string[]; attempts: AttemptRecord[] }>('execState');

export const cancelSignal = defineSignal('cancel');

/** A run of a concurrency group, as it claims the group (workflows/concurrency.ts). */
export interface ConcurrencyClaim extends SupersededBy {
  /** RunConcurrency.requestedAt: orders the claims. */
  requestedAt: string;
}
/** To a group: this run is the group's newest (unless a later one claimed already). */
export const claimSignal = defineSignal<[ConcurrencyClaim]>('claim');
/** To a group: this run has ended. */
export const releaseSignal = defineSignal<[string]>('release');
/** To a run: a newer run of its group started; cancel, clean up, and say so on the check. */
export const supersedeSignal = defineSignal<[SupersededBy]>('supersede');

export interface ClaimRequest {
  groupId: string;
  controlQueue: string;
  claim: ConcurrencyClaim;
}
export const statusQuery = defineQuery<RunStatus>('status');

/**
 * A step to look up in the cache: its spec and its inputs from upstream steps. A step that is
 * ready has every upstream input in `upstream`. A look-ahead step (`after` set) waits for steps
 * of the same request: it is prepared only when each of those is a cache hit there, and its
 * inputs from them come from their cached outputs.
 */
export interface PrepareItem {
  step: string;
  spec: StepSpec;
  gpus: boolean;
  upstream: Record<string, ResolvedInput>;
  /** Earlier steps of the same request this one depends on (look-ahead); absent for a ready step. */
  after?: string[];
}

/**
 * One `prepareSteps` call: the items in topological order (look-ahead items after the steps
 * they wait for). The answer holds every ready item and each look-ahead item whose `after`
 * steps all hit, so a fully cached chain is resolved in one activity rather than one per layer.
 */
export interface PrepareRequest {
  runId: string;
  pipeline: string;
  source: SourceRef;
  params: Record<string, ParamValue>;
  noCache: boolean;
  items: PrepareItem[];
}

/** A step the cache did not answer: what its execution needs (`stepExecInput`). */
export interface Prepared {
  step: string;
  key: string;
  useCache: boolean;
  recordKey?: string;
  parts: CacheKeyParts;
  inputs: Record<string, ResolvedInput>;
  spec: ExecSpec;
  decision: CacheDecision;
  hit?: undefined;
  invalid?: undefined;
}

/**
 * A step the cache answered: only what the run records of a reused step. The key parts and the
 * execution spec stay out (only an execution needs them): a hit is about a tenth of a miss, and
 * a look-ahead answer holds up to 1,000 of them. Answers recorded in histories before carried a
 * whole `Prepared` with `hit` set (the image in `spec`, the parts twice); they replay as this.
 */
export interface PreparedHit {
  step: string;
  key: string;
  inputs: Record<string, ResolvedInput>;
  /** The image as the pipeline names it; absent in answers recorded before, which have `spec.image`. */
  image?: string;
  spec?: { image: string };
  decision: CacheDecision;
  hit: CachedOutcome;
  invalid?: undefined;
}

/**
 * A ready step that a fault of its own stops from being prepared (`StepInvalid`: a repository
 * input missing at this commit, say; `DamagedRecord`: its cache record changed outside
 * Trainyard): it fails alone, with `invalid` as its message, while the other steps of the call
 * are prepared.
 */
export interface PrepareRefused {
  step: string;
  invalid: string;
  hit?: undefined;
}

/** What the cache keeps of a step's result, less the key parts (those the record keeps are in `CachedResult`). */
export type CachedOutcome = Omit<CachedResult, 'parts'>;

/** One answer of `prepareSteps`: a step to start, a cache hit, or a step refused. */
export type PrepareAnswer = Prepared | PreparedHit | PrepareRefused;

/** What the cache keeps per key. */
export interface CachedResult {
  key: string;
  outputs: Record<string, ArtifactRef>;
  metrics?: StepMetrics;
  logDigest?: string;
  attempts: AttemptRecord[];
  source: CacheSource;
  parts: CacheKeyParts;
}

export interface StartRequest {
  runWorkflowId: string;
  controlQueue: string;
  execs: StepExecInput[];
}

export interface RunStepRequest {
  execId: string;
  attempt: number;
  spec: ExecSpec;
  heartbeatTimeoutMs: number;
  /** Where it runs (the Kubernetes runner reads the class and GPUs from it). */
  host?: HostRecord;
  /** The run that started the execution (labels of a Kubernetes Job). */
  runId?: string;
}

export interface RunStepResult {
  exitCode: number;
  outputs: Record<string, ArtifactRef>;
  metrics?: StepMetrics;
  logDigest: string;
  startedAt: string;
  finishedAt: string;
  host: string;
  /** Temporal's attempt number of this activity (>1 after a lost worker). */
  activityAttempt: number;
  gpu?: HostRecord['gpu'];
  /** Kubernetes: what the attempt's pod held and cost. */
  compute?: AttemptCompute;
}

/** Details carried by a StepFailed / StepTimedOut failure. */
export interface StepFailureDetails {
  exitCode: number | null;
  logDigest?: string;
  startedAt: string;
  finishedAt: string;
  host: string;
  metrics?: StepMetrics;
  compute?: AttemptCompute;
}

export const stepExecWorkflowId = (key: string): string => `trainyard-step-${key.replace(/^sha256:/, '')}`;
