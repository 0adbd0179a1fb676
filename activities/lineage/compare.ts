// Metrics against the base: which earlier run a run is compared with, and the table of
// what moved. Everything comes from lineage documents in the store (never from files
// committed to git), found through a small index of runs by repository, pipeline and branch.
//
// Record layout (JSON records of the ArtifactStore, next to those of index.ts):
//   index/branch/<h>/<finished>.<conclusion>.<commit>.<runId>   BranchRunEntry
// where <h> is the first 32 hex digits of SHA-256 over "repo\npipeline\nbranch" (branch
// names hold characters record keys may not) and <finished> is the finish time as
// YYYYMMDDTHHMMSSmmmZ, so one listing answers "the newest successful run of this pipeline
// on that branch, or the one at that commit" without reading a single document.
import { branchIndexPrefix } from '../store/keys.js';
import type { ArtifactStore } from '../store/types.js';
import type { MetricValue, ParamValue } from '../../model/types.js';
import type { LineageConclusion, LineageDoc } from './document.js';
import { mdCode, mdText } from '../report/escape.js';
import { downsample, xyChart } from '../report/markdown.js';

export interface BranchRunEntry {
  runId: string;
  repo: string;
  pipeline: string;
  branch: string;
  commit: string;
  conclusion: LineageConclusion;
  finishedAt: string;
}

/** The branch a run belongs to: a push's branch, a local run's checked-out branch, a PR's head branch. */
export function branchOf(doc: LineageDoc): string | undefined {
  const t = doc.trigger;
  switch (t.kind) {
    case 'push':
      return t.ref.startsWith('refs/heads/') ? t.ref.slice('refs/heads/'.length) : undefined;
    case 'cli':
      return t.branch;
    case 'comment':
      return t.headRef;
    default:
      return undefined;
  }
}

const compactTime = (iso: string): string => iso.replace(/[-:.]/g, '');
const CONCLUSIONS = new Set<string>(['succeeded', 'failed', 'cancelled']);

/** Records the run under its branch (no-op when it has none). Call after the lineage document is saved. */
export async function recordBranchRun(store: ArtifactStore, doc: LineageDoc): Promise<void> {
  const branch = branchOf(doc);
  if (!branch || !/^[0-9a-f]{7,64}$/.test(doc.source.commit)) return;
  const entry: BranchRunEntry = {
    runId: doc.runId,
    repo: doc.source.repo,
    pipeline: doc.pipeline.name,
    branch,
    commit: doc.source.commit,
    conclusion: doc.conclusion,
    finishedAt: doc.finishedAt,
  };
  await store.putRecord(
    `${branchIndexPrefix(doc.source.repo, doc.pipeline.name, branch)}${compactTime(doc.finishedAt)}.${doc.conclusion}.${doc.source.commit}.${doc.runId}`,
    entry,
  );
}

/** A branch run as its index key says it: `finished` is the compact finish time (YYYYMMDDTHHMMSSmmmZ). */
export interface BranchRunKey {
  runId: string;
  commit: string;
  conclusion: LineageConclusion;
  finished: string;
}

/** A branch's recorded runs of one pipeline, newest first, from one listing. */
export async function runsOnBranch(
  store: ArtifactStore,
  repo: string,
  pipeline: string,
  branch: string,
): Promise<BranchRunKey[]> {
  const prefix = branchIndexPrefix(repo, pipeline, branch);
  const out: BranchRunKey[] = [];
  for (const key of await store.listRecords(prefix)) {
    const tail = key.startsWith(prefix) ? key.slice(prefix.length) : key;
    const [finished, conclusion, commit, ...rest] = tail.split('.');
    const runId = rest.join('.');
    if (!finished || !commit || !runId || !CONCLUSIONS.has(conclusion ?? '')) continue;
    out.push({ runId, commit, conclusion: conclusion as LineageConclusion, finished });
  }
  return out.sort((a, b) => b.finished.localeCompare(a.finished));
}

export interface BaseRun {
  runId: string;
  /** Plain words: which run this is and why it was chosen. */
  why: string;
  branch: string;
  commit: string;
}

/**
 * The run `doc` is compared with:
 * - a PR/MR run (`/train`, trigger `comment` with `baseRef`): the same pipeline's successful
 *   run at the merge base on the base branch when there is one, else the newest successful
 *   run on the base branch;
 * - any other run with a branch (push, local run): the previous successful run on that branch.
 * Undefined when there is none (or the run has no branch).
 */
export async function findBaseRun(store: ArtifactStore, doc: LineageDoc): Promise<BaseRun | undefined> {
  const t = doc.trigger;
  const ok = (e: { runId: string; conclusion: string }) => e.conclusion === 'succeeded' && e.runId !== doc.runId;
  if (t.kind === 'comment' && t.baseRef) {
    const runs = (await runsOnBranch(store, doc.source.repo, doc.pipeline.name, t.baseRef)).filter(ok);
    const atMergeBase = t.baseSha ? runs.find((r) => r.commit === t.baseSha) : undefined;
    const pick = atMergeBase ?? runs[0];
    if (!pick) return undefined;
    return {
      runId: pick.runId,
      branch: t.baseRef,
      commit: pick.commit,
      why: atMergeBase
        ? `the run at the merge base ${pick.commit.slice(0, 12)} on ${t.baseRef}`
        : `the newest successful run on ${t.baseRef}`,
    };
  }
  const branch = branchOf(doc);
  if (!branch) return undefined;
  const own = compactTime(doc.finishedAt);
  const pick = (await runsOnBranch(store, doc.source.repo, doc.pipeline.name, branch)).find(
    (r) => ok(r) && r.finished <= own,
  );
  return pick
    ? { runId: pick.runId, branch, commit: pick.commit, why: `the previous successful run on ${branch}` }
    : undefined;
}

// ---- the table ----

export interface ParamChange {
  name: string;
  /** Undefined when the run has no such parameter. */
  head: ParamValue | undefined;
  base: ParamValue | undefined;
}

export interface MetricRow {
  step: string;
  metric: string;
  head: MetricValue | undefined;
  base: MetricValue | undefined;
  /** head − base when both are finite numbers; else null. */
  change: number | null;
  /** change / |base| when base is a non-zero finite number; else null. */
  relative: number | null;
}

/** A metric both runs recorded as a curve (3+ finite values, not a counter): its points, to overlay. */
export interface SeriesPair {
  step: string;
  metric: string;
  head: number[];
  base: number[];
}

export interface MetricsDiff {
  head: { runId: string; commit: string };
  base: { runId: string; commit: string };
  params: ParamChange[];
  metrics: MetricRow[];
  /** In `metrics` order. */
  series: SeriesPair[];
}

/** Overlaid charts drawn at most, and points per line. */
export const DIFF_MAX_CHARTS = 6;
const DIFF_CHART_POINTS = 60;

const num = (v: MetricValue | undefined): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

function lastValues(
  doc: LineageDoc,
): Map<string, { step: string; metric: string; value: MetricValue; curve?: number[] }> {
  const out = new Map<string, { step: string; metric: string; value: MetricValue; curve?: number[] }>();
  for (const s of doc.steps) {
    for (const m of s.metrics?.metrics ?? []) {
      const curve = m.points.length >= 3 && !m.counter ? m.points.map((p) => p[1]) : undefined;
      out.set(`${s.name}\n${m.name}`, { step: s.name, metric: m.name, value: m.last, ...(curve ? { curve } : {}) });
    }
  }
  return out;
}

/**
 * Every metric's last value in `head` next to `base` (by step and metric name, head's order
 * first, then what only the base has), and the parameters whose values differ.
 */
export function metricsDiff(head: LineageDoc, base: LineageDoc): MetricsDiff {
  const params: ParamChange[] = [];
  for (const name of new Set([...Object.keys(head.params), ...Object.keys(base.params)])) {
    const h = Object.hasOwn(head.params, name) ? head.params[name] : undefined;
    const b = Object.hasOwn(base.params, name) ? base.params[name] : undefined;
    if (JSON.stringify(h) !== JSON.stringify(b)) params.push({ name, head: h, base: b });
  }
  const hv = lastValues(head);
  const bv = lastValues(base);
  const metrics: MetricRow[] = [];
  const series: SeriesPair[] = [];
  for (const key of new Set([...hv.keys(), ...bv.keys()])) {
    const h = hv.get(key);
    const b = bv.get(key);
    if (h?.curve && b?.curve) series.push({ step: h.step, metric: h.metric, head: h.curve, base: b.curve });
    const hn = num(h?.value);
    const bn = num(b?.value);
    const change = hn !== undefined && bn !== undefined ? hn - bn : null;
    metrics.push({
      step: (h ?? b)!.step,
      metric: (h ?? b)!.metric,
      head: h?.value,
      base: b?.value,
      change,
      relative: change !== null && bn !== undefined && bn !== 0 ? change / Math.abs(bn) : null,
    });
  }
  return {
    head: { runId: head.runId, commit: head.source.commit },
    base: { runId: base.runId, commit: base.source.commit },
    params,
    metrics,
    series,
  };
}

/** A value as printed (numbers a double cannot carry are kept as their text). */
export function valueText(v: MetricValue | ParamValue | undefined): string {
  if (v === undefined) return '—';
  if (v !== null && typeof v === 'object') return v.number;
  return typeof v === 'string' ? v : String(v);
}

/** Signed, at most 4 significant digits, and the relative change: `-0.0312 (-20.6%)`, `+3`, `0`. */
export function changeText(r: Pick<MetricRow, 'change' | 'relative' | 'head' | 'base'>): string {
  if (r.change === null) {
    if (r.head === undefined) return 'only in base';
    if (r.base === undefined) return 'new';
    return JSON.stringify(r.head) === JSON.stringify(r.base) ? 'same' : 'changed';
  }
  if (r.change === 0) return '0';
  const abs = Number(Math.abs(r.change).toPrecision(4));
  const rel = r.relative !== null ? ` (${r.relative > 0 ? '+' : '-'}${Math.abs(r.relative * 100).toFixed(1)}%)` : '';
  return `${r.change > 0 ? '+' : '-'}${abs}${rel}`;
}

/** Rows shown at most (metrics, params): a report has a size limit; the rest is counted. */
export const DIFF_MAX_ROWS = 100;

/** The hidden marker of the one PR comment / MR note per pipeline that is edited in place. */
export const diffMarker = (pipeline: string): string =>
  `<!-- trainyard:metrics-diff pipeline=${encodeURIComponent(pipeline)} -->`;

/** The Markdown section of the report, check run and PR comment. */
export function diffMarkdown(diff: MetricsDiff, base: Pick<BaseRun, 'why'>): string[] {
  const out = [
    `### Metrics against the base`,
    '',
    `Compared with ${mdText(base.why)}: run ${mdCode(diff.base.runId, 200, false)} at ${mdCode(diff.base.commit.slice(0, 12), 20, false)}.`,
  ];
  if (diff.params.length) {
    out.push('', 'Parameters that differ:', '');
    for (const p of diff.params.slice(0, DIFF_MAX_ROWS))
      out.push(
        `- ${mdCode(p.name, 100, false)}: ${mdCode(valueText(p.base), 100, false)} → ${mdCode(valueText(p.head), 100, false)}`,
      );
    if (diff.params.length > DIFF_MAX_ROWS) out.push(`- … and ${diff.params.length - DIFF_MAX_ROWS} more`);
  }
  if (diff.metrics.length === 0) {
    out.push('', 'Neither run recorded a metric.');
    return out;
  }
  out.push('', '| metric | this run | base | change |', '| --- | ---: | ---: | ---: |');
  for (const r of diff.metrics.slice(0, DIFF_MAX_ROWS)) {
    out.push(
      `| ${mdCode(`${r.step}.${r.metric}`, 120)} | ${mdText(valueText(r.head), 60)} | ${mdText(valueText(r.base), 60)} | ${mdText(changeText(r), 60)} |`,
    );
  }
  if (diff.metrics.length > DIFF_MAX_ROWS)
    out.push(
      '',
      `… and ${diff.metrics.length - DIFF_MAX_ROWS} more metrics (\`trainyard diff ${diff.head.runId} ${diff.base.runId}\` shows all).`,
    );
  const charts = diff.series.slice(0, DIFF_MAX_CHARTS);
  if (charts.length > 0) {
    // Mermaid's xychart has no legend: the order of the lines says which is which.
    out.push('', 'Each chart draws this run first and the base second, sample by sample:');
    for (const c of charts) {
      const lines = [downsample(c.head, DIFF_CHART_POINTS), downsample(c.base, DIFF_CHART_POINTS)];
      const n = Math.max(lines[0]!.length, lines[1]!.length);
      out.push('', ...xyChart(`${c.step}: ${c.metric}, this run vs base`, `"sample" 1 --> ${n}`, c.metric, lines));
    }
  }
  return out;
}

/** The plain-text table `trainyard diff` prints (every row). */
export function diffText(diff: MetricsDiff, plain: (s: string) => string = (s) => s): string {
  const lines = [
    `${plain(diff.head.runId)} (${diff.head.commit.slice(0, 12)}) vs base ${plain(diff.base.runId)} (${diff.base.commit.slice(0, 12)})`,
  ];
  if (diff.params.length) {
    lines.push('', 'params that differ:');
    for (const p of diff.params)
      lines.push(`  ${plain(p.name)}: ${plain(valueText(p.base))} -> ${plain(valueText(p.head))}`);
  }
  lines.push('');
  if (diff.metrics.length === 0) {
    lines.push('no metrics in either run');
    return `${lines.join('\n')}\n`;
  }
  const rows = [
    ['METRIC', 'THIS RUN', 'BASE', 'CHANGE'],
    ...diff.metrics.map((r) => [
      plain(`${r.step}.${r.metric}`),
      plain(valueText(r.head)),
      plain(valueText(r.base)),
      changeText(r),
    ]),
  ];
  const widths = [0, 1, 2].map((i) => Math.min(48, Math.max(...rows.map((r) => r[i]!.length))));
  for (const r of rows)
    lines.push(`${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padStart(widths[1]!)}  ${r[2]!.padStart(widths[2]!)}  ${r[3]}`);
  return `${lines.join('\n')}\n`;
}
