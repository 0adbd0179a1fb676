// The lineage document: one JSON record per run that says which code, data, parameters,
// image and machine produced which artifact. Pure data transformation (no I/O) so the
// same function serves the activity, the CLI and tests. The documented shape is
// schema/lineage.schema.json; keep both in step.
import type {
  AttemptRecord,
  CacheSource,
  Digest,
  InputOrigin,
  ParamValue,
  RunInput,
  RunStatus,
  StepSpec,
  StepState,
  StepStatus,
  Trigger,
} from '../../model/types.js';
import type { HostRecord } from '../../model/hosttypes.js';
import { METRICS_SUMMARY_SCHEMA, type MetricSeriesSummary, type MetricsSummary } from '../runner/summary.js';

/** v2: a step's metrics are a reference to the stored series plus a summary (v1 held the samples). */
export const LINEAGE_SCHEMA_ID = 'trainyard.lineage/v2' as const;

export interface LineageArtifact {
  digest: Digest;
  size: number;
  kind: 'file' | 'dir';
  uri: string;
}

export interface LineageInput extends LineageArtifact {
  origin: InputOrigin;
}

/** An edge of the step graph: `input` names the consuming input; null for a plain `needs`. */
export interface LineageEdge {
  from: string;
  input: string | null;
  output: string | null;
}

export interface LineageImage {
  /** As written in the pipeline file. */
  ref: string;
  /** As the run resolved it (`name@sha256:…` when the registry answered). */
  resolved: string | null;
  digest: Digest | null;
}

/** A step's metrics: the whole series by digest, and per metric what the report shows. */
export interface LineageMetrics {
  /** Samples the step printed. */
  samples: number;
  /** The whole series: NDJSON, one `{t, values}` per line (values as MetricValue); null when no sample. */
  series: LineageArtifact | null;
  /** Digest of the summary the runner stored (what `metrics` was read from). */
  summary: Digest | null;
  /** Distinct metric names. */
  names: number;
  /** Per metric, in order of first appearance: counts, range, last value, non-finite values, a downsampled series. */
  metrics: MetricSeriesSummary[];
  /** Metric names past the summary's limit: in the series, not summarised. */
  unsummarised: number;
  /** stdout lines that looked like samples but were not read, and the first reason. */
  rejected: { lines: number; reason: string } | null;
  /** Why `metrics` is empty although samples were recorded (the summary could not be read). */
  problem: string | null;
}

export interface LineageCache {
  decision: 'hit' | 'miss' | 'disabled' | 'joined';
  key: Digest;
  reason: string;
  source: CacheSource | null;
}

export interface LineageStep {
  name: string;
  line: number | null;
  state: StepState;
  message: string | null;
  image: LineageImage;
  command: string | string[];
  env: Record<string, string>;
  code: string[] | null;
  machineClass: string | null;
  params: string[] | null;
  timeoutSeconds: number | null;
  retries: number | null;
  cacheEnabled: boolean;
  cacheVersion: string | null;
  upstream: LineageEdge[];
  /** True when this run executed the container (not a cache hit, not a joined execution). */
  executedHere: boolean;
  host: HostRecord | null;
  attempts: AttemptRecord[];
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  costUsd: number | null;
  cache: LineageCache | null;
  inputs: Record<string, LineageInput>;
  outputs: Record<string, LineageArtifact>;
  metrics: LineageMetrics | null;
  logDigest: Digest | null;
  producedBy: CacheSource | null;
}

export interface LineageSource {
  kind: 'git' | 'remote';
  commit: string;
  dirtyBase: string | null;
  repo: string;
  subdir: string;
  host: 'github' | 'gitlab' | null;
}

export interface CacheSavings {
  steps: number;
  durationMs: number | null;
  costUsd: number | null;
}

export interface LineageTotals {
  steps: number;
  ran: number;
  succeeded: number;
  cached: number;
  failed: number;
  skipped: number;
  cancelled: number;
  incomplete: number;
  durationMs: number | null;
  computeMs: number;
  costUsd: number | null;
  cacheSavings: CacheSavings;
  /** Billed GPU time of the steps run here and its idle part; absent without GPU hosts. */
  gpu?: { billedGpuSeconds: number; idleGpuSeconds: number; idleFraction: number };
}

export type LineageConclusion = 'succeeded' | 'failed' | 'cancelled';

export interface LineageDoc {
  schema: typeof LINEAGE_SCHEMA_ID;
  runId: string;
  pipeline: { name: string; file: string; digest: Digest };
  trigger: Trigger;
  source: LineageSource;
  params: Record<string, ParamValue>;
  startedAt: string;
  finishedAt: string;
  conclusion: LineageConclusion;
  totals: LineageTotals;
  steps: LineageStep[];
}

/** What is known about a reused step's original execution (read from its source run's lineage). */
export interface SourceStepFacts {
  durationMs?: number;
  costUsd?: number;
}

export interface BuildExtra {
  pipelineFileDigest: string;
  finishedAt: string;
  /** Keyed by step name; see lookupSourceSteps in index.ts. */
  sourceSteps?: Record<string, SourceStepFacts>;
  /** Metrics summaries by digest (StepMetrics.summary), read from the store; see loadMetricSummaries. */
  metricSummaries?: Record<Digest, MetricsSummary | { problem: string }>;
}

const DIGEST_IN_IMAGE = /@(sha256:[0-9a-f]{64})$/;

function msBetween(start: string | undefined, end: string | undefined): number | null {
  if (!start || !end) return null;
  const ms = Date.parse(end) - Date.parse(start);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}

function attemptsMs(attempts: AttemptRecord[]): number | null {
  let total = 0;
  let known = false;
  for (const a of attempts) {
    const ms = msBetween(a.startedAt, a.finishedAt);
    if (ms !== null) {
      total += ms;
      known = true;
    }
  }
  return known ? total : null;
}

function upstreamOf(spec: StepSpec | undefined): LineageEdge[] {
  if (!spec) return [];
  const edges: LineageEdge[] = [];
  for (const [input, src] of Object.entries(spec.inputs)) {
    if (src.kind === 'step') edges.push({ from: src.step, input, output: src.output });
  }
  for (const need of spec.needs) {
    if (!edges.some((e) => e.from === need)) edges.push({ from: need, input: null, output: null });
  }
  return edges;
}

function sourceOf(input: RunInput): LineageSource {
  const s = input.source;
  if (s.kind === 'git') {
    return {
      kind: 'git',
      commit: s.commit,
      dirtyBase: s.dirtyBase ?? null,
      repo: s.repoPath,
      subdir: s.subdir,
      host: null,
    };
  }
  return { kind: 'remote', commit: s.commit, dirtyBase: null, repo: s.cloneUrl, subdir: s.subdir, host: s.host };
}

function metricsOf(st: StepStatus | undefined, extra: BuildExtra): LineageMetrics | null {
  const m = st?.outcome?.metrics;
  if (!m) return null;
  const loaded = m.summary ? extra.metricSummaries?.[m.summary] : undefined;
  const summary = loaded && 'schema' in loaded && loaded.schema === METRICS_SUMMARY_SCHEMA ? loaded : undefined;
  const problem =
    m.samples === 0 || summary
      ? null
      : loaded && 'problem' in loaded
        ? loaded.problem
        : `the metrics summary ${m.summary ?? '(none)'} was not read`;
  return {
    samples: m.samples,
    series: m.series ? { digest: m.series.digest, size: m.series.size, kind: m.series.kind, uri: m.series.uri } : null,
    summary: m.summary ?? null,
    names: m.names,
    metrics: summary ? summary.metrics : [],
    unsummarised: summary ? summary.unsummarised : 0,
    rejected: m.rejected ? { ...m.rejected } : null,
    problem,
  };
}

function stepOf(
  runId: string,
  spec: StepSpec | undefined,
  st: StepStatus | undefined,
  name: string,
  extra: BuildExtra,
): LineageStep {
  const outcome = st?.outcome;
  const producedBy = outcome?.producedBy ?? null;
  const attempts = outcome?.attempts ?? [];
  const decision = st?.cache?.decision;
  // A hit or a joined execution reports the producing run's attempts; only our own count as run here.
  const executedHere =
    attempts.length > 0 &&
    decision !== 'hit' &&
    decision !== 'joined' &&
    (producedBy === null || producedBy.runId === runId);
  const resolved = st?.image ?? null;
  const inputs: Record<string, LineageInput> = {};
  for (const [n, r] of Object.entries(st?.inputs ?? {})) {
    inputs[n] = {
      digest: r.artifact.digest,
      size: r.artifact.size,
      kind: r.artifact.kind,
      uri: r.artifact.uri,
      origin: r.origin,
    };
  }
  const outputs: Record<string, LineageArtifact> = {};
  for (const [n, a] of Object.entries(outcome?.outputs ?? {})) {
    outputs[n] = { digest: a.digest, size: a.size, kind: a.kind, uri: a.uri };
  }
  return {
    name,
    line: spec?.line ?? null,
    state: st?.state ?? 'pending',
    message: st?.message ?? outcome?.message ?? null,
    image: {
      ref: spec?.image ?? resolved ?? '',
      resolved,
      digest: resolved ? (DIGEST_IN_IMAGE.exec(resolved)?.[1] ?? null) : null,
    },
    command: spec?.run ?? [],
    env: { ...(spec?.env ?? {}) },
    code: spec?.code ? [...spec.code] : null,
    machineClass: spec?.machine ?? null,
    params: spec?.params ? [...spec.params] : null,
    timeoutSeconds: spec?.timeoutSeconds ?? null,
    retries: spec?.retries ?? null,
    cacheEnabled: spec?.cache ?? true,
    cacheVersion: spec?.cacheVersion ?? null,
    upstream: upstreamOf(spec),
    executedHere,
    host: st?.host ?? null,
    attempts: attempts.map((a) => ({ ...a })),
    startedAt: st?.startedAt ?? null,
    finishedAt: st?.finishedAt ?? null,
    durationMs: msBetween(st?.startedAt, st?.finishedAt),
    costUsd: st?.host?.costUsd ?? null,
    cache: st?.cache
      ? { decision: st.cache.decision, key: st.cache.key, reason: st.cache.reason, source: st.cache.source ?? null }
      : null,
    inputs,
    outputs,
    metrics: metricsOf(st, extra),
    logDigest: outcome?.logDigest ?? null,
    producedBy,
  };
}

function conclusionOf(status: RunStatus, steps: LineageStep[]): LineageConclusion {
  if (status.state !== 'running') return status.state;
  if (steps.some((s) => s.state === 'failed')) return 'failed';
  if (steps.some((s) => s.state === 'cancelled' || s.state === 'pending' || s.state === 'running')) return 'cancelled';
  return 'succeeded';
}

function isReused(s: LineageStep, runId: string): boolean {
  return (
    s.cache?.decision === 'hit' ||
    s.cache?.decision === 'joined' ||
    s.state === 'cached' ||
    (s.producedBy !== null && s.producedBy.runId !== runId && s.state !== 'failed')
  );
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;

function totalsOf(
  doc: Pick<LineageDoc, 'runId' | 'startedAt' | 'finishedAt'>,
  steps: LineageStep[],
  extra: BuildExtra,
): LineageTotals {
  const count = (state: StepState): number => steps.filter((s) => s.state === state).length;
  let costUsd: number | null = null;
  let computeMs = 0;
  const savings: CacheSavings = { steps: 0, durationMs: null, costUsd: null };
  let gpuSeconds = 0;
  let idleGpuSeconds = 0;
  for (const s of steps) {
    if (s.costUsd !== null) costUsd = (costUsd ?? 0) + s.costUsd;
    if (s.executedHere && s.host?.gpus && s.host.billedSeconds !== undefined) {
      gpuSeconds += s.host.billedSeconds * s.host.gpus;
      idleGpuSeconds += s.host.idleGpuSeconds ?? 0;
    }
    if (s.executedHere) computeMs += attemptsMs(s.attempts) ?? 0;
    if (!isReused(s, doc.runId)) continue;
    savings.steps += 1;
    const facts = extra.sourceSteps?.[s.name];
    const ms = facts?.durationMs ?? attemptsMs(s.attempts);
    if (ms !== null && ms !== undefined) savings.durationMs = (savings.durationMs ?? 0) + ms;
    if (facts?.costUsd !== undefined) savings.costUsd = (savings.costUsd ?? 0) + facts.costUsd;
  }
  return {
    steps: steps.length,
    ran: steps.filter((s) => s.executedHere).length,
    succeeded: count('succeeded'),
    cached: count('cached'),
    failed: count('failed'),
    skipped: count('skipped'),
    cancelled: count('cancelled'),
    incomplete: count('pending') + count('running'),
    durationMs: msBetween(doc.startedAt, doc.finishedAt),
    computeMs,
    costUsd,
    cacheSavings: savings,
    ...(gpuSeconds > 0
      ? {
          gpu: {
            billedGpuSeconds: r3(gpuSeconds),
            idleGpuSeconds: r3(idleGpuSeconds),
            idleFraction: r3(Math.min(1, idleGpuSeconds / gpuSeconds)),
          },
        }
      : {}),
  };
}

export function buildLineage(input: RunInput, status: RunStatus, extra: BuildExtra): LineageDoc {
  const specs = input.pipeline.steps;
  const byName = new Map(status.steps.map((s) => [s.name, s]));
  // Pipeline order first (dependencies before dependants), then anything the status knows that the spec does not.
  const names = [...input.pipeline.order];
  for (const s of status.steps) if (!names.includes(s.name)) names.push(s.name);
  for (const n of Object.keys(specs)) if (!names.includes(n)) names.push(n);
  const steps = names.map((n) => stepOf(input.runId, specs[n], byName.get(n), n, extra));
  const finishedAt = status.finishedAt ?? extra.finishedAt;
  const head = { runId: input.runId, startedAt: status.startedAt, finishedAt };
  return {
    schema: LINEAGE_SCHEMA_ID,
    runId: input.runId,
    pipeline: { name: input.pipeline.name, file: input.pipeline.file, digest: extra.pipelineFileDigest },
    trigger: { ...input.trigger },
    source: sourceOf(input),
    params: { ...input.params },
    startedAt: status.startedAt,
    finishedAt,
    conclusion: conclusionOf(status, steps),
    totals: totalsOf(head, steps, extra),
    steps,
  };
}
