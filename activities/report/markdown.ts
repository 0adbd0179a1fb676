// The run report: Markdown for a person, for a local file and for a GitHub check run's
// summary (which GitHub cuts off at 65,535). It is rendered from the lineage document
// alone so any stored run can be re-rendered later.
import type { LineageDoc, LineageEdge, LineageStep } from '../lineage/document.js';
import type { MetricValue, StepState, Trigger } from '../../model/types.js';
import { metricValueText } from '../container/metrics.js';
import { MAX_SUMMARISED_METRICS, SUMMARY_POINTS, type MetricSeriesSummary } from '../runner/summary.js';
import { mdCode, mdLink, mdText, mermaidLabel, mermaidTitle } from './escape.js';
import { outcomeNote, STATE_EMOJI, stepDetail } from './statetext.js';

export interface ReportOptions {
  /** Where the full report / run page lives (shown in the footer and when rows are cut). */
  detailsUrl?: string;
  /** Hard upper bound of the UTF-8 size of the result. */
  maxBytes?: number;
  /** The metrics-against-the-base section (activities/lineage/compare.ts diffMarkdown), shown under the header; bounded there. */
  comparison?: string[];
}

export const GITHUB_SUMMARY_MAX_BYTES = 65_535;
// Mermaid's own defaults (maxEdges 500, maxTextSize 50,000): past them GitHub shows an error box instead of a graph.
const GRAPH_MAX_EDGES = 500;
const GRAPH_MAX_CHARS = 45_000;
const MAX_CHARTS = 6;
const CHART_POINTS = 60;
const SPARK_POINTS = 24;
const SPARK = '▁▂▃▄▅▆▇█';

const CONCLUSION_EMOJI = { succeeded: '✅', failed: '❌', cancelled: '🚫' } as const;

const CLASS_DEFS = [
  'classDef succeeded fill:#dafbe1,stroke:#1a7f37,color:#0d331b',
  'classDef cached fill:#ddf4ff,stroke:#0969da,color:#0a3069',
  'classDef failed fill:#ffebe9,stroke:#cf222e,color:#82071e',
  'classDef skipped fill:#eaeef2,stroke:#8c959f,color:#57606a',
  'classDef cancelled fill:#fff1e5,stroke:#bc4c00,color:#762c00',
  'classDef pending fill:#ffffff,stroke:#8c959f,stroke-dasharray:4 4',
];

/** How much of the report to render; later plans are smaller. */
interface Plan {
  charts: boolean;
  sparklines: boolean;
  details: boolean;
  graph: boolean;
  /** null = every step; otherwise how many step rows (failed ones first). */
  stepLimit: number | null;
}

// ---- formatting helpers ----

export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function humanDuration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return '<1s';
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(sec).padStart(2, '0')}s`;
}

const usd = (n: number | null): string =>
  n === null ? '—' : n < 0.01 && n > 0 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
const shortDigest = (d: string): string => (d.startsWith('sha256:') ? `sha256:${d.slice(7, 19)}` : d.slice(0, 19));
const shortCommit = (c: string): string => c.slice(0, 12);

/** A number to 4 significant digits (integers whole), for charts and tables. */
export function numberText(v: number): string {
  if (Number.isInteger(v)) return String(v);
  const p = Number(v.toPrecision(4));
  return String(p);
}

/** A value as the reader should see it: numbers to 4 significant digits, text-kept numbers (`NaN`, `1e400`, long integers) exactly as printed. */
function valueText(v: MetricValue): string {
  if (typeof v === 'number') return numberText(v);
  return metricValueText(v);
}

function triggerText(t: Trigger): string {
  switch (t.kind) {
    case 'cli':
      return `local run by ${mdText(t.user, 60)}`;
    case 'push':
      return `push to ${mdCode(t.ref, 100, false)} by ${mdText(t.actor, 60)}`;
    case 'comment': {
      const what = `/train comment on #${t.pr}`;
      return `${t.commentUrl ? mdLink(what, t.commentUrl) : mdText(what)} by ${mdText(t.actor, 60)}`;
    }
    case 'rerun':
      return `re-run by ${mdText(t.actor, 60)}${t.previousRunId ? ` of ${mdCode(t.previousRunId, 80, false)}` : ''}`;
  }
}

function reusedFromElsewhere(s: LineageStep, runId: string): boolean {
  return !s.executedHere && s.producedBy !== null && s.producedBy.runId !== runId;
}

function stateCell(s: LineageStep): string {
  let text = `${STATE_EMOJI[s.state]} ${s.state}`;
  if (s.cache?.decision === 'joined') text += ' (joined)';
  if (s.state === 'failed') {
    const last = s.attempts[s.attempts.length - 1];
    if (last?.exitCode !== null && last?.exitCode !== undefined) text += ` (exit ${last.exitCode})`;
    else if (last && outcomeNote(s.state, last.outcome)) text += ` ${outcomeNote(s.state, last.outcome)}`;
  }
  if (s.attempts.length > 1 && s.executedHere) text += `, ${s.attempts.length} attempts`;
  return text;
}

function whyCell(s: LineageStep): string {
  const parts: string[] = [];
  if (s.cache) parts.push(s.cache.reason);
  if (s.state === 'failed' || s.state === 'skipped' || s.state === 'cancelled') {
    const last = s.attempts[s.attempts.length - 1];
    const msg =
      stepDetail(s.state, s.message ?? last?.message) ||
      (s.state === 'skipped' ? 'not run: an upstream step did not succeed' : '');
    if (msg) parts.push(msg);
  }
  return parts.length ? mdText(parts.join(' — '), 400) : '—';
}

function machineCell(s: LineageStep, runId: string): string {
  const h = s.host;
  if (!h) return reusedFromElsewhere(s, runId) ? 'reused' : '—';
  if (h.kind === 'local') return 'this host';
  const type = h.instanceType ?? h.machineClass ?? 'ec2';
  return mdText(`${type}${h.market ? ` ${h.market}` : ''}`, 60);
}

// ---- sections ----

function header(doc: LineageDoc): string[] {
  const t = doc.totals;
  const src = doc.source;
  const commit = `${mdCode(src.commit, 64, false)}${src.dirtyBase ? ` (uncommitted changes on ${mdCode(shortCommit(src.dirtyBase), 64, false)})` : ''}`;
  const counts = [`${t.ran} ran`, `${t.cached} cached`, `${t.failed} failed`, `${t.skipped} skipped`];
  if (t.cancelled) counts.push(`${t.cancelled} cancelled`);
  if (t.incomplete) counts.push(`${t.incomplete} not finished`);
  const money = t.costUsd !== null ? ` · ${usd(t.costUsd)}` : '';
  const saved = t.cacheSavings.steps
    ? ` · cache saved ${humanDuration(t.cacheSavings.durationMs)}${t.cacheSavings.costUsd !== null ? ` (${usd(t.cacheSavings.costUsd)})` : ''}`
    : '';
  return [
    `## ${CONCLUSION_EMOJI[doc.conclusion]} ${mdText(doc.pipeline.name, 100)} ${doc.conclusion}`,
    '',
    `**Commit** ${commit} · **Trigger** ${triggerText(doc.trigger)} · **Pipeline** ${mdCode(doc.pipeline.file, 120, false)} ${mdCode(shortDigest(doc.pipeline.digest), 30, false)} · **Run** ${mdCode(doc.runId, 120, false)}`,
    '',
    `${t.steps} steps: ${counts.join(', ')} · ${humanDuration(t.durationMs)}${money}${saved}`,
  ];
}

/** A step's row of the steps table. */
function stepRow(doc: LineageDoc, s: LineageStep): string {
  return `| ${mdCode(s.name, 100)} | ${stateCell(s)} | ${whyCell(s)} | ${humanDuration(s.durationMs)} | ${machineCell(s, doc.runId)} | ${usd(s.costUsd)} |`;
}

function stepTable(shown: LineageStep[], row: (s: LineageStep) => string): string[] {
  return [
    '| Step | State | Why | Duration | Machine | Cost |',
    '| --- | --- | --- | --- | --- | --- |',
    ...shown.map(row),
  ];
}

/** What the graph needs of a run: its steps' names, states and edges. */
export interface GraphSteps {
  steps: { name: string; state: StepState; upstream: Pick<LineageEdge, 'from' | 'input'>[] }[];
}

/**
 * The step graph as Mermaid `graph LR` source (without the fence), one node per step in
 * pipeline order (ids s0, s1, …, labels escaped by mermaidLabel), classed by state; or a
 * sentence saying why it is not drawn (past Mermaid's default maxEdges / maxTextSize).
 */
export function mermaidGraph(doc: GraphSteps): string | { notDrawn: string } {
  const g = graphLines(doc);
  return typeof g === 'string' ? { notDrawn: g } : g.slice(1, -1).join('\n');
}

function graphLines(doc: GraphSteps): string[] | string {
  const ids = new Map(doc.steps.map((s, i) => [s.name, `s${i}`]));
  const edges: string[] = [];
  for (const s of doc.steps) {
    const to = ids.get(s.name)!;
    for (const e of s.upstream) {
      const from = ids.get(e.from);
      if (!from) continue;
      edges.push(e.input === null ? `  ${from} -.-> ${to}` : `  ${from} -->|"${mermaidLabel(e.input, 40)}"| ${to}`);
    }
  }
  if (edges.length > GRAPH_MAX_EDGES)
    return `graph not drawn: ${edges.length} edges is more than GitHub's Mermaid draws (${GRAPH_MAX_EDGES})`;
  const cls = (st: StepState): string => (st === 'running' ? 'pending' : st);
  const lines = [
    '```mermaid',
    'graph LR',
    ...doc.steps.map((s) => `  ${ids.get(s.name)}["${mermaidLabel(s.name)}"]:::${cls(s.state)}`),
    ...edges,
    ...CLASS_DEFS.map((c) => `  ${c}`),
    '```',
  ];
  if (lines.reduce((n, l) => n + l.length + 1, 0) > GRAPH_MAX_CHARS) {
    return `graph not drawn: ${doc.steps.length} steps is more than GitHub's Mermaid draws`;
  }
  return lines;
}

interface Series {
  step: string;
  m: MetricSeriesSummary;
}

function seriesOf(steps: LineageStep[]): Series[] {
  return steps.flatMap((s) => (s.metrics?.metrics ?? []).map((m) => ({ step: s.name, m })));
}

/** Averages a series down to at most n points, keeping its shape. */
/** At most `n` values: the means of `n` equal runs of `values` (the whole list when shorter). */
export function downsample(values: number[], n: number): number[] {
  if (values.length <= n) return values;
  const out: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const a = Math.floor((i * values.length) / n);
    const b = Math.floor(((i + 1) * values.length) / n);
    const chunk = values.slice(a, Math.max(b, a + 1));
    // Weighted so that no sum of huge values overflows.
    out.push(chunk.reduce((x, y) => x + y / chunk.length, 0));
  }
  return out;
}

export function sparkline(values: number[]): string {
  const v = downsample(values, SPARK_POINTS);
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  if (hi === lo || !Number.isFinite(hi - lo)) return SPARK[3]!.repeat(v.length);
  return v.map((x) => SPARK[Math.min(SPARK.length - 1, Math.floor(((x - lo) / (hi - lo)) * SPARK.length))]).join('');
}

const count = (n: number): string => n.toLocaleString('en-US');
const seconds = (ms: number): string => `${numberText(Math.round(ms / 100) / 10)}s`;

/**
 * What a reader must not miss about a step's metrics: values that are not finite numbers,
 * charts that average many samples per point (and where the whole series is), lines that
 * looked like samples but were not read, names past the summary's limit.
 */
function metricNotes(steps: LineageStep[], charted: Set<MetricSeriesSummary>): string[] {
  const notes: string[] = [];
  for (const s of steps) {
    const lm = s.metrics;
    if (!lm) continue;
    const step = mdCode(s.name, 100, false);
    for (const m of lm.metrics) {
      if (m.nonFinite.length === 0) continue;
      const kinds = m.nonFinite.map(
        (k) =>
          `${k.kind === 'beyond the double range' ? `${mdText(k.example, 40)} (beyond the double range)` : k.kind} ×${count(k.count)} (first at ${seconds(k.firstT)})`,
      );
      notes.push(
        `- ⚠️ ${step} ${mdCode(m.name, 80, false)}: ${kinds.join(', ')}${m.finite === 0 ? '; no finite value' : ''}`,
      );
    }
    const averaged = lm.metrics.filter((m) => m.downsampled && charted.has(m));
    if (averaged.length > 0 || lm.unsummarised > 0) {
      const where = lm.series
        ? ` Full series (${humanBytes(lm.series.size)}): ${mdCode(lm.series.uri, 200, false)}`
        : '';
      const most = Math.max(0, ...averaged.map((m) => m.finite));
      const what =
        averaged.length > 0
          ? `charts and trends are downsampled: each shows at most ${SUMMARY_POINTS} points, each the mean of consecutive samples (up to ${count(most)} values per metric).`
          : '';
      const names =
        lm.unsummarised > 0
          ? ` ${count(lm.unsummarised)} more metric names are in the series but not summarised here (the first ${MAX_SUMMARISED_METRICS} are).`
          : '';
      notes.push(`- ${step}: ${count(lm.samples)} samples; ${what}${names}${where}`);
    }
    if (lm.rejected) {
      notes.push(
        `- ⚠️ ${step}: ${count(lm.rejected.lines)} stdout ${lm.rejected.lines === 1 ? 'line looks' : 'lines look'} like a metrics sample but ${lm.rejected.lines === 1 ? 'was' : 'were'} not read (${mdText(lm.rejected.reason, 300)}); ${lm.rejected.lines === 1 ? 'it is' : 'they are'} in the log.`,
      );
    }
    if (lm.problem) notes.push(`- ⚠️ ${step}: ${count(lm.samples)} samples recorded, but ${mdText(lm.problem, 300)}`);
  }
  return notes;
}

/** At most MAX_CHARTS series worth a chart, taken from each step in turn so one wide step cannot crowd out the rest. */
function chartsToDraw(series: Series[]): Series[] {
  const byStep = new Map<string, Series[]>();
  for (const x of series) if (x.m.finite >= 3 && !x.m.counter) byStep.set(x.step, [...(byStep.get(x.step) ?? []), x]);
  const picked: Series[] = [];
  for (let round = 0; picked.length < MAX_CHARTS; round += 1) {
    const before = picked.length;
    for (const list of byStep.values()) if (list[round] && picked.length < MAX_CHARTS) picked.push(list[round]!);
    if (picked.length === before) break;
  }
  // In report order: by step, then by metric.
  return series.filter((x) => picked.includes(x));
}

/**
 * A Mermaid `xychart-beta` block (GitHub and GitLab render it) with one line per series, drawn
 * in order in the theme's palette; `xAxis` is Mermaid's axis text (`"seconds" 0 --> 40`).
 */
export function xyChart(title: string, xAxis: string, yLabel: string, lines: number[][]): string[] {
  return [
    '```mermaid',
    'xychart-beta',
    `  title "${mermaidTitle(title)}"`,
    `  x-axis ${xAxis}`,
    `  y-axis "${mermaidTitle(yLabel, 30)}"`,
    ...lines.map((values) => `  line [${values.map(numberText).join(', ')}]`),
    '```',
  ];
}

function metricsSection(steps: LineageStep[], plan: Plan): string[] {
  const series = seriesOf(steps);
  const charted = new Set<MetricSeriesSummary>();
  const lines: string[] = [];
  if (series.length > 0) {
    const trend = plan.sparklines;
    lines.push(
      trend ? '| Step | Metric | Last | Trend |' : '| Step | Metric | Last |',
      trend ? '| --- | --- | --- | --- |' : '| --- | --- | --- |',
    );
    for (const { step, m } of series) {
      const cells = [mdCode(step, 100), mdText(m.name, 80), mdText(valueText(m.last), 80)];
      if (trend) {
        const show = m.finite >= 3;
        if (show) charted.add(m);
        cells.push(show ? sparkline(m.points.map((p) => p[1])) : '');
      }
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  if (plan.charts) {
    for (const { step, m } of chartsToDraw(series)) {
      charted.add(m);
      const values = downsample(
        m.points.map((p) => p[1]),
        CHART_POINTS,
      );
      const endS = Math.max(1, Math.round(m.lastT / 1000));
      lines.push('', ...xyChart(`${step}: ${m.name}`, `"seconds" 0 --> ${endS}`, m.name, [values]));
    }
  }
  const notes = metricNotes(steps, charted);
  if (lines.length === 0 && notes.length === 0) return [];
  return ['### Metrics', '', ...lines, ...(notes.length ? ['', ...notes] : [])];
}

function outputsSection(steps: LineageStep[], runId: string): string[] {
  const rows: string[] = [];
  for (const s of steps) {
    for (const [name, o] of Object.entries(s.outputs)) {
      const note = reusedFromElsewhere(s, runId) ? ' (reused)' : '';
      rows.push(
        `| ${mdCode(s.name, 100)} | ${mdCode(name, 80)}${note} | ${mdCode(shortDigest(o.digest))} | ${humanBytes(o.size)} | ${mdCode(o.uri, 200)} |`,
      );
    }
  }
  if (rows.length === 0) return [];
  return [
    '### Outputs',
    '',
    '| Step | Output | Digest | Size | Location |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

function paramsSection(doc: LineageDoc): string[] {
  const entries = Object.entries(doc.params);
  if (entries.length === 0) return [];
  return [
    '### Parameters',
    '',
    '| Parameter | Value |',
    '| --- | --- |',
    ...entries.map(([k, v]) => `| ${mdCode(k, 80)} | ${mdCode(typeof v === 'string' ? v : JSON.stringify(v), 200)} |`),
  ];
}

function detailsSection(steps: LineageStep[]): string[] {
  const rows = steps.map((s) => {
    const command = typeof s.command === 'string' ? s.command : JSON.stringify(s.command);
    const env = Object.entries(s.env).map(([k, v]) => mdCode(`${k}=${v}`, 120));
    const image = s.image.resolved ?? s.image.ref;
    return `| ${mdCode(s.name, 100)} | ${mdCode(image, 120)} | ${mdCode(command, 200)} | ${env.join(' ') || '—'} |`;
  });
  if (rows.length === 0) return [];
  return ['### Step definitions', '', '| Step | Image | Command | Environment |', '| --- | --- | --- | --- |', ...rows];
}

function totalsSection(doc: LineageDoc): string[] {
  const t = doc.totals;
  const sv = t.cacheSavings;
  return [
    '### Totals',
    '',
    '| | |',
    '| --- | --- |',
    `| Steps | ${t.steps} (ran ${t.ran}, succeeded ${t.succeeded}, cached ${t.cached}, failed ${t.failed}, skipped ${t.skipped}, cancelled ${t.cancelled}) |`,
    `| Wall time | ${humanDuration(t.durationMs)} |`,
    `| Compute time | ${humanDuration(t.computeMs)} |`,
    `| Cost | ${usd(t.costUsd)} |`,
    ...(t.gpu
      ? [
          `| GPU time | ${humanDuration(t.gpu.billedGpuSeconds * 1000)} billed, ${(t.gpu.idleFraction * 100).toFixed(1)}% idle |`,
        ]
      : []),
    `| Cache savings | ${sv.steps} ${sv.steps === 1 ? 'step' : 'steps'} reused, ${humanDuration(sv.durationMs)}, ${usd(sv.costUsd)} |`,
  ];
}

function footer(doc: LineageDoc, opts: ReportOptions): string {
  const parts = [`Lineage: ${mdCode(`trainyard lineage ${doc.runId}`, 200, false)}`];
  if (opts.detailsUrl) parts.push(mdLink('full report', opts.detailsUrl));
  return parts.join(' · ');
}

function moreLine(hidden: number, doc: LineageDoc, opts: ReportOptions): string {
  const where = opts.detailsUrl
    ? mdLink(opts.detailsUrl, opts.detailsUrl)
    : mdCode(`trainyard lineage ${doc.runId}`, 200, false);
  return `… ${hidden} more steps — full report: ${where}`;
}

/** Steps to show when only `limit` rows fit: failures first (that is what a reader looks for), in pipeline order. */
function pickSteps(doc: LineageDoc, limit: number | null): LineageStep[] {
  if (limit === null || limit >= doc.steps.length) return doc.steps;
  const bad = (s: LineageStep): boolean => s.state === 'failed' || s.state === 'cancelled';
  const chosen = new Set<LineageStep>();
  for (const s of doc.steps) if (chosen.size < limit && bad(s)) chosen.add(s);
  for (const s of doc.steps) if (chosen.size < limit && !bad(s)) chosen.add(s);
  return doc.steps.filter((s) => chosen.has(s));
}

function renderPlan(doc: LineageDoc, opts: ReportOptions, plan: Plan, row: (s: LineageStep) => string): string {
  const shown = pickSteps(doc, plan.stepLimit);
  const hidden = doc.steps.length - shown.length;
  const out: string[] = [
    ...header(doc),
    ...(opts.comparison?.length ? ['', ...opts.comparison] : []),
    '',
    '### Steps',
    '',
    ...stepTable(shown, row),
  ];
  if (hidden > 0) out.push('', moreLine(hidden, doc, opts));
  if (plan.graph) {
    const g = graphLines(doc);
    out.push('', '### Graph', '', ...(typeof g === 'string' ? [mdText(g)] : g));
  }
  const sections = [
    metricsSection(shown, plan),
    outputsSection(shown, doc.runId),
    paramsSection(doc),
    plan.details ? detailsSection(shown) : [],
    totalsSection(doc),
  ];
  for (const s of sections) if (s.length) out.push('', ...s);
  out.push('', footer(doc, opts), '');
  return out.join('\n');
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Cuts to at most `max` UTF-8 bytes without splitting a character. */
function cutBytes(s: string, max: number): string {
  const buf = Buffer.from(s, 'utf8');
  if (buf.length <= max) return s;
  let end = Math.max(0, max);
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end -= 1;
  return buf.subarray(0, end).toString('utf8');
}

export function renderReport(doc: LineageDoc, opts: ReportOptions = {}): string {
  const max = opts.maxBytes ?? GITHUB_SUMMARY_MAX_BYTES;
  // Each step's row once: a large run's report is rendered a dozen times to find what fits.
  const rows = new Map<LineageStep, string>();
  const row = (s: LineageStep): string => {
    let r = rows.get(s);
    if (r === undefined) rows.set(s, (r = stepRow(doc, s)));
    return r;
  };
  const render = (plan: Plan): string => renderPlan(doc, opts, plan, row);
  // Shrink in the order a reader misses least: charts, definitions and sparklines, the graph, then rows.
  const plans: Plan[] = [
    { charts: true, sparklines: true, details: true, graph: true, stepLimit: null },
    { charts: false, sparklines: true, details: true, graph: true, stepLimit: null },
    { charts: false, sparklines: false, details: false, graph: true, stepLimit: null },
    { charts: false, sparklines: false, details: false, graph: false, stepLimit: null },
  ];
  // Every one of these plans shows every row: when the rows alone do not fit, none does.
  const allRows = doc.steps.reduce((n, s) => n + bytes(row(s)) + 1, 0);
  if (allRows <= max) {
    for (const p of plans) {
      const md = render(p);
      if (bytes(md) <= max) return md;
    }
  }
  const base: Plan = { charts: false, sparklines: false, details: false, graph: false, stepLimit: 0 };
  let lo = 0;
  let hi = doc.steps.length - 1;
  let best: string | null = null;
  // Sizes grow with the number of rows, so the largest row count that fits is found by bisection.
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    const md = render({ ...base, stepLimit: mid });
    if (bytes(md) <= max) {
      best = md;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (best !== null) return best;
  // Not even the header fits: keep what does and say where the rest is.
  const tail = `\n\n… report cut to ${max} bytes — ${footer(doc, opts)}\n`;
  const md = render(base);
  if (bytes(tail) >= max) return cutBytes(md, max);
  return cutBytes(md, max - bytes(tail)) + tail;
}
