// What the run page shows, as JSON (GET /runs/<id>/data): gathered from the run record of
// the git host (app/intake), Temporal's status of a running run and, once the run ended, its
// lineage document, which also finds the base run the metrics are compared with (the same
// findBaseRun / metricsDiff as the check, the PR comment and `trainyard diff`). Every string
// in it may come from a user; the page only ever puts them into the DOM as text.
import type { RunMeta } from '../../activities/githost/records.js';
import { diffMarkdown, findBaseRun, metricsDiff, branchOf } from '../../activities/lineage/compare.js';
import type { LineageDoc } from '../../activities/lineage/document.js';
import { loadLineage } from '../../activities/lineage/storage.js';
import { lineageKeyOf } from '../../activities/store/keys.js';
import { markdownToHtml } from '../../activities/report/html.js';
import { mermaidGraph } from '../../activities/report/markdown.js';
import { stepDetail } from '../../activities/report/statetext.js';
import type { MetricSeriesSummary } from '../../activities/runner/summary.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import type { ArtifactRef, CacheDecision, RunStatus, StepState, Trigger } from '../../model/types.js';
import { logTail, type PageLog } from './logs.js';

/** How often the page asks again while the run goes on, ms. */
export const PAGE_POLL_MS = 3000;

export interface PageOutput {
  name: string;
  digest: string;
  size: number;
  kind: 'file' | 'dir';
  /** Signed download link (files only); null for a folder (`trainyard get` rebuilds those). */
  href: string | null;
}

export interface PageStep {
  name: string;
  state: StepState;
  startedAt: string | null;
  durationMs: number | null;
  /** `ran` (this run executed it), `cached` (a cache hit or joined execution), `not run`. */
  execution: 'ran' | 'cached' | 'not run';
  /** Why it ran or was reused (the cache decision's reason), and what went wrong. */
  why: string;
  costUsd: number | null;
  outputs: PageOutput[];
  log: PageLog;
}

export interface PageSeries {
  step: string;
  metric: string;
  /** [n, value]: the n-th point of the lineage summary's series (a sample, or the mean of consecutive samples when `averaged`). */
  points: [number, number][];
  averaged: boolean;
  /** The same metric of the same step in the base run; null when there is no comparison or the base has no such series. */
  base: [number, number][] | null;
}

export interface RunPageData {
  workflowId: string;
  runId: string;
  pipeline: string;
  repo: string | null;
  commit: string | null;
  branch: string | null;
  trigger: string | null;
  state: RunStatus['state'];
  /** True once nothing on the page changes any more: the page stops polling. */
  final: boolean;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  costUsd: number | null;
  steps: PageStep[];
  /** Mermaid `graph LR` source; null while the graph's edges are not known (running) or too big. */
  graph: string | null;
  graphNote: string | null;
  metrics: PageSeries[];
  params: { name: string; value: string }[];
  /** The metrics-against-the-base section as HTML (markdown-it), and the base run's id. */
  comparison: { baseRunId: string; why: string; html: string } | null;
  /** The stored final report as HTML (markdown-it); null while running. */
  reportHtml: string | null;
  pollMs: number;
}

export interface PageSources {
  store: ArtifactStore;
  meta: RunMeta | undefined;
  /** Temporal's answer; undefined when it has none (closed and past retention, or unreachable). */
  status: RunStatus | undefined;
  /** Signed path of an artifact of this run. */
  artifactHref(digest: string): string;
  now?: () => number;
}

const MAX_CHARTED = 12;

function triggerText(t: Trigger): string {
  switch (t.kind) {
    case 'cli':
      return `local run by ${t.user}`;
    case 'push':
      return `push to ${t.ref} by ${t.actor}`;
    case 'comment':
      return `/train comment on #${t.pr} by ${t.actor}`;
    case 'rerun':
      return `re-run by ${t.actor}${t.previousRunId ? ` of ${t.previousRunId}` : ''}`;
  }
}

const paramText = (v: unknown): string =>
  v !== null && typeof v === 'object' && 'number' in v ? String((v as { number: string }).number) : String(v);

function execution(
  state: StepState,
  executedHere: boolean,
  cache: Pick<CacheDecision, 'decision'> | null | undefined,
): PageStep['execution'] {
  if (
    state === 'cached' ||
    cache?.decision === 'joined' ||
    (!executedHere && (state === 'succeeded' || state === 'failed'))
  )
    return 'cached';
  if (state === 'pending' || state === 'skipped' || (state === 'cancelled' && !executedHere)) return 'not run';
  return 'ran';
}

function why(state: StepState, reason: string | undefined, message: string | null | undefined): string {
  const parts = [
    reason,
    stepDetail(state, message) || (state === 'skipped' ? 'not run: an upstream step did not succeed' : ''),
  ].filter((x): x is string => Boolean(x));
  return parts.join(' — ');
}

function outputsOf(
  outputs: Record<string, Pick<ArtifactRef, 'digest' | 'size' | 'kind'>>,
  href: (d: string) => string,
): PageOutput[] {
  return Object.entries(outputs).map(([name, o]) => ({
    name,
    digest: o.digest,
    size: o.size,
    kind: o.kind,
    href: o.kind === 'file' ? href(o.digest) : null,
  }));
}

/** Every artifact digest the page of this run may hand out (its steps' outputs). */
export function runArtifacts(
  doc: LineageDoc | undefined,
  status: RunStatus | undefined,
): Map<string, { name: string; kind: 'file' | 'dir'; size: number }> {
  const out = new Map<string, { name: string; kind: 'file' | 'dir'; size: number }>();
  for (const s of doc?.steps ?? [])
    for (const [name, o] of Object.entries(s.outputs))
      if (!out.has(o.digest)) out.set(o.digest, { name, kind: o.kind, size: o.size });
  for (const s of status?.steps ?? [])
    for (const [name, o] of Object.entries(s.outcome?.outputs ?? {}))
      if (!out.has(o.digest)) out.set(o.digest, { name, kind: o.kind, size: o.size });
  return out;
}

/** The run's lineage document, once it ended: by the status's key, else by the run id. */
export async function lineageFor(
  store: ArtifactStore,
  meta: RunMeta | undefined,
  status: RunStatus | undefined,
): Promise<LineageDoc | undefined> {
  const runId = status?.runId ?? meta?.runId;
  if (!runId) return undefined;
  if (status && status.state === 'running') return undefined;
  if (status?.lineageKey && status.lineageKey !== lineageKeyOf(runId))
    return store.getRecord<LineageDoc>(status.lineageKey);
  return loadLineage(store, runId);
}

async function comparisonOf(
  store: ArtifactStore,
  doc: LineageDoc,
): Promise<{ compared: RunPageData['comparison']; base: LineageDoc | undefined }> {
  try {
    const base = await findBaseRun(store, doc);
    const baseDoc = base ? await loadLineage(store, base.runId) : undefined;
    if (!base || !baseDoc) return { compared: null, base: undefined };
    const html = markdownToHtml(diffMarkdown(metricsDiff(doc, baseDoc), base).join('\n'));
    return { compared: { baseRunId: base.runId, why: base.why, html }, base: baseDoc };
  } catch {
    // A page without the comparison beats no page (the check says why it is missing).
    return { compared: null, base: undefined };
  }
}

function seriesOf(doc: LineageDoc, base: LineageDoc | undefined): PageSeries[] {
  const basePoints = new Map<string, MetricSeriesSummary>();
  for (const s of base?.steps ?? [])
    for (const m of s.metrics?.metrics ?? []) basePoints.set(`${s.name}\n${m.name}`, m);
  const out: PageSeries[] = [];
  for (const s of doc.steps) {
    for (const m of s.metrics?.metrics ?? []) {
      // A counter (epoch, step) is the x axis of the others, and one value is no curve: neither is charted.
      if (m.points.length < 2 || m.counter || out.length >= MAX_CHARTED) continue;
      const b = basePoints.get(`${s.name}\n${m.name}`);
      // By position, not time: a run and its base are compared sample for sample, whenever each started.
      const nth = (p: [number, number][]): [number, number][] => p.map(([, v], i) => [i + 1, v]);
      out.push({
        step: s.name,
        metric: m.name,
        points: nth(m.points),
        averaged: m.downsampled || (b?.downsampled ?? false),
        base: b ? nth(b.points) : null,
      });
    }
  }
  return out;
}

/** The page's data for a run that ended (from its lineage document). */
async function finishedData(workflowId: string, doc: LineageDoc, src: PageSources): Promise<RunPageData> {
  const { compared, base } = await comparisonOf(src.store, doc);
  const graph = mermaidGraph(doc);
  const steps = await Promise.all(
    doc.steps.map(async (s): Promise<PageStep> => ({
      name: s.name,
      state: s.state,
      startedAt: s.startedAt,
      durationMs: s.durationMs,
      execution: execution(s.state, s.executedHere, s.cache),
      why: why(s.state, s.cache?.reason, s.message ?? s.attempts.at(-1)?.message),
      costUsd: s.costUsd,
      outputs: outputsOf(s.outputs, src.artifactHref),
      log: await logTail(src.store, {
        runId: doc.runId,
        name: s.name,
        state: s.state,
        logDigest: s.logDigest ?? s.attempts.at(-1)?.logDigest,
        cache: s.cache,
      }),
    })),
  );
  return {
    workflowId,
    runId: doc.runId,
    pipeline: doc.pipeline.name,
    repo: doc.source.repo,
    commit: doc.source.commit,
    branch: branchOf(doc) ?? null,
    trigger: triggerText(doc.trigger),
    state: doc.conclusion,
    final: true,
    startedAt: doc.startedAt,
    finishedAt: doc.finishedAt,
    durationMs: doc.totals.durationMs,
    costUsd: doc.totals.costUsd,
    steps,
    graph: typeof graph === 'string' ? graph : null,
    graphNote: typeof graph === 'string' ? null : graph.notDrawn,
    metrics: seriesOf(doc, base),
    params: Object.entries(doc.params).map(([name, v]) => ({ name, value: paramText(v) })),
    comparison: compared,
    reportHtml: src.meta?.final ? markdownToHtml(src.meta.final.report) : null,
    pollMs: PAGE_POLL_MS,
  };
}

/** The page's data for a run that goes on (from Temporal's status): no graph edges, charts or cost yet. */
async function liveData(workflowId: string, status: RunStatus, src: PageSources): Promise<RunPageData> {
  const now = (src.now ?? Date.now)();
  const since = (iso: string | undefined, end: string | undefined): number | null =>
    iso ? Math.max(0, (end ? Date.parse(end) : now) - Date.parse(iso)) : null;
  const steps = await Promise.all(
    status.steps.map(async (s): Promise<PageStep> => ({
      name: s.name,
      state: s.state,
      startedAt: s.startedAt ?? null,
      durationMs: since(s.startedAt, s.finishedAt),
      execution: execution(
        s.state,
        s.outcome ? s.outcome.producedBy.runId === status.runId : s.state === 'running',
        s.cache,
      ),
      why: why(s.state, s.cache?.reason, s.message ?? s.outcome?.message),
      costUsd: null,
      outputs: outputsOf(s.outcome?.outputs ?? {}, src.artifactHref),
      log: await logTail(src.store, {
        runId: status.runId,
        name: s.name,
        state: s.state,
        logDigest: s.outcome?.logDigest ?? s.outcome?.attempts.at(-1)?.logDigest,
        cache: s.cache,
      }),
    })),
  );
  const meta = src.meta;
  // Nodes without edges: the status does not carry the graph; the lineage does once the run ends.
  const graph = mermaidGraph({ steps: status.steps.map((s) => ({ name: s.name, state: s.state, upstream: [] })) });
  return {
    workflowId,
    runId: status.runId,
    pipeline: status.pipeline,
    repo: meta?.repoPath ?? null,
    commit: meta?.sha ?? null,
    branch: meta?.branch ?? null,
    trigger: meta ? triggerText(meta.trigger) : null,
    state: status.state,
    // A closed workflow whose lineage is not (yet) readable: ask again, it is being written.
    final: false,
    startedAt: status.startedAt,
    finishedAt: status.finishedAt ?? null,
    durationMs: since(status.startedAt, status.finishedAt),
    costUsd: null,
    steps,
    graph: typeof graph === 'string' ? graph : null,
    graphNote: typeof graph === 'string' ? 'the edges are drawn when the run ends' : graph.notDrawn,
    metrics: [],
    params: Object.entries(meta?.params ?? {}).map(([name, v]) => ({ name, value: paramText(v) })),
    comparison: null,
    reportHtml: null,
    pollMs: PAGE_POLL_MS,
  };
}

/** The page's data, or undefined when neither the store nor Temporal knows the run. */
export async function runPageData(
  workflowId: string,
  src: PageSources,
  doc?: LineageDoc,
): Promise<RunPageData | undefined> {
  const lineage = doc ?? (await lineageFor(src.store, src.meta, src.status));
  if (lineage) return finishedData(workflowId, lineage, src);
  if (src.status) return liveData(workflowId, src.status, src);
  return undefined;
}
