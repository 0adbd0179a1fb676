// Data crossing the workflow boundary. Types only: workflows/ must stay deterministic.
import type { Pipeline, ParamValue, StepSpec } from '../pipeline/types.js';
import type { AttemptCompute, HostRecord } from './hosttypes.js';

export type { Pipeline, ParamValue, StepSpec };

/** Where the commit's files come from. */
export type SourceRef =
  | {
      kind: 'git';
      /** Absolute path of a local git repository the workers can read. */
      repoPath: string;
      commit: string;
      /** Project root inside the repository ('' = repository root). */
      subdir: string;
      /** Set when `commit` is a snapshot of a dirty working tree: the HEAD it was made on (app/local/project.ts). */
      dirtyBase?: string;
    }
  | {
      kind: 'remote';
      /** e.g. https://github.com/o/r.git — fetched by activities with a host token. */
      cloneUrl: string;
      commit: string;
      subdir: string;
      host: 'github' | 'gitlab';
      installationId?: number;
      projectId?: number;
    };

export type Trigger =
  /** `branch`: the checked-out branch (absent on a detached HEAD); runs are compared by branch (activities/lineage/compare.ts). */
  | { kind: 'cli'; user: string; branch?: string }
  | { kind: 'push'; ref: string; actor: string; deliveryId?: string }
  /**
   * `baseRef`/`baseSha`: the PR's base branch and the merge base of head and base (when the
   * host said), `headRef`: its head branch; they choose the run the metrics are compared with.
   */
  | {
      kind: 'comment';
      pr: number;
      actor: string;
      commentId: number;
      commentUrl?: string;
      baseRef?: string;
      baseSha?: string;
      headRef?: string;
    }
  | { kind: 'rerun'; actor: string; previousRunId?: string };

/** Where live status and the final report go (none for local runs). */
export type StatusTarget =
  | { kind: 'none' }
  | { kind: 'github'; installationId: number; owner: string; repo: string; checkRunId?: number; headSha: string }
  | { kind: 'gitlab'; projectId: number; sha: string; mergeRequestIid?: number };

export interface RunOptions {
  noCache: boolean;
  /** Task queue of the control worker (workflows and control activities). */
  controlQueue: string;
  /** Least time between two live status publications (check-run updates), ms. */
  statusIntervalMs: number;
  /** Most steps running at once. */
  parallelism: number;
  /** Task queue of the compute host that runs `machine`-less steps. */
  localHostQueue: string;
  /** Continue-as-new once the history passes this many events. */
  historyEventLimit: number;
  /** Heartbeat timeout of step activities, ms (a lost host is noticed after this). */
  heartbeatTimeoutMs: number;
  /** Task queue of the Kubernetes runner (default `trainyard-kubernetes`). */
  kubernetesQueue?: string;
}

export interface RunInput {
  runId: string;
  pipeline: Pipeline;
  params: Record<string, ParamValue>;
  source: SourceRef;
  trigger: Trigger;
  status: StatusTarget;
  options: RunOptions;
  /**
   * Set when the run may not receive secrets (a pull request from a fork, and the server does
   * not allow it): why, as a sentence. A step that names secrets then fails before it starts;
   * the others run.
   */
  secretsWithheld?: string;
  /**
   * The concurrency group this run supersedes older runs of (pipeline/concurrency.ts), set by
   * the intake; absent = none. `groupId` is the group workflow's id (per repository).
   */
  concurrency?: RunConcurrency;
}

export interface RunConcurrency {
  /** The expanded group, for messages (`tiny-pr-12`). */
  group: string;
  /** Workflow id of the group (workflows/concurrency.ts): `concurrency:<host>:<repo>:<group>`. */
  groupId: string;
  /** When the intake asked for the run (ISO 8601): of two runs of a group, the later one wins, whichever claims first. */
  requestedAt: string;
}

/** The newer run that cancelled this one (same concurrency group). */
export interface SupersededBy {
  workflowId: string;
  runId: string;
  /** The commit the newer run runs. */
  sha: string;
}

export type Digest = string; // `sha256:<64 hex>`

export interface ArtifactRef {
  digest: Digest;
  size: number;
  /** `file` = a blob; `dir` = the digest is that of a directory manifest. */
  kind: 'file' | 'dir';
  /** Where it lives: file:///… or s3://bucket/key. */
  uri: string;
}

export type InputOrigin =
  | { kind: 'step'; step: string; output: string }
  | { kind: 'uri'; uri: string }
  | { kind: 'repo'; path: string; commit: string };

export interface ResolvedInput {
  artifact: ArtifactRef;
  origin: InputOrigin;
}

/**
 * A metric value as the step printed it. A number that a JSON double cannot carry exactly
 * (`NaN`, `Infinity`, `-Infinity` as Python's json.dumps writes them, `1e400`, an integer
 * past 2^53 that would be rounded) is kept as its printed text: `{ "number": "NaN" }`.
 * `null` only ever means the step printed `null`.
 */
export type MetricValue = number | string | boolean | null | { number: string };

/** One metrics sample: one line of a step's metrics series (NDJSON in the artifact store). */
export interface MetricSample {
  /** ms since the step started. */
  t: number;
  values: Record<string, MetricValue>;
}

/**
 * A step's metrics as they cross the workflow boundary: references into the artifact store
 * and a summary bounded in count and size (model/bounds.ts), never the series itself,
 * so no step output can push a Temporal payload past its size limit.
 */
export interface StepMetrics {
  /** Samples recorded (lines of the series). */
  samples: number;
  /** The whole series: NDJSON, one MetricSample per line, in the order printed. Absent when no sample. */
  series?: ArtifactRef;
  /** Digest of the per-metric summary (statistics and a downsampled series; activities/runner/summary.ts). */
  summary?: Digest;
  /** Distinct metric names seen. */
  names: number;
  /** Last value of the first LAST_VALUES_MAX metrics (strings clipped); the rest are in the summary. */
  last: Record<string, MetricValue>;
  /** stdout lines that looked like a sample (`{…}`) but were not recorded, and the first reason. */
  rejected?: { lines: number; reason: string };
}

export interface AttemptRecord {
  attempt: number;
  host: string;
  startedAt: string;
  finishedAt: string;
  exitCode: number | null;
  outcome: 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'host_lost';
  message?: string;
  logDigest?: Digest;
  /** GPU utilisation sampled during the attempt (nvidia-smi), when the host has GPUs. */
  gpu?: HostRecord['gpu'];
  /** Kubernetes: the attempt's pod, node, billed time and cost. */
  compute?: AttemptCompute;
}

export type StepState = 'pending' | 'running' | 'succeeded' | 'cached' | 'failed' | 'skipped' | 'cancelled';

/** The parts a cache key is a digest of, kept so a miss can say what changed. */
export interface CacheKeyParts {
  image: string;
  command: string[];
  env: Record<string, string>;
  cacheVersion: string | null;
  params: Record<string, ParamValue>;
  code: Digest;
  inputs: Record<string, Digest>;
  outputs: string[];
  /**
   * The NAMES of the secrets the step receives, sorted; absent when it has none (so keys of
   * steps without secrets are what they were). Never their values: like GitHub Actions'
   * cache and DVC, a rotated token does not re-train anything, while adding or removing a
   * secret changes what the step can do and so changes the key.
   */
  secrets?: string[];
}

export interface CacheSource {
  runId: string;
  commit: string;
  step: string;
  pipeline: string;
  finishedAt: string;
}

export interface CacheDecision {
  decision: 'hit' | 'miss' | 'disabled' | 'joined';
  key: Digest;
  /** Plain sentence: why it ran, or where the reused result came from. */
  reason: string;
  source?: CacheSource;
}

export interface StepOutcome {
  state: 'succeeded' | 'failed' | 'cancelled';
  outputs: Record<string, ArtifactRef>;
  attempts: AttemptRecord[];
  /** Absent when the step printed no sample or never ran. */
  metrics?: StepMetrics;
  logDigest?: Digest;
  /** The run that executed the container (== this run unless joined or cached). */
  producedBy: CacheSource;
  message?: string;
}

export interface StepStatus {
  name: string;
  state: StepState;
  startedAt?: string;
  finishedAt?: string;
  cache?: CacheDecision;
  inputs?: Record<string, ResolvedInput>;
  image?: string;
  outcome?: StepOutcome;
  message?: string;
  /** The host that ran it (absent for cache hits). */
  host?: HostRecord;
}

export interface RunStatus {
  runId: string;
  pipeline: string;
  state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  startedAt: string;
  finishedAt?: string;
  steps: StepStatus[];
  /** Store record keys of the lineage document and report, once written. */
  lineageKey?: string;
  reportKey?: string;
  /** How many times the run continued as new (history kept short). */
  continuedAsNew?: number;
  /** Set when a newer run of the same concurrency group cancelled this one. */
  supersededBy?: SupersededBy;
}

export type Conclusion = 'success' | 'failure' | 'cancelled' | 'timed_out';

/** Live status or the final report, for the git host (check run / commit status). */
export interface PublishRequest {
  target: StatusTarget;
  runId: string;
  workflowId: string;
  status: RunStatus;
  final?: {
    conclusion: Conclusion;
    reportMarkdown: string;
    lineageKey: string;
    failedStep?: { name: string; logDigest?: string };
    /** Metrics against the base run; `pullRequest`: the PR whose one metrics comment shows it (GitHub). */
    comparison?: { markdown: string; pullRequest?: number };
  };
}
