// The report is checked the way a reader sees it: parsed by a real CommonMark + GFM-table
// parser (markdown-it), cells compared by their displayed text.
import MarkdownIt, { type Token } from 'markdown-it';
import { describe, expect, it } from 'vitest';
import { buildLineage, type LineageDoc } from '../../activities/lineage/document.js';
import { GITHUB_SUMMARY_MAX_BYTES, renderReport } from '../../activities/report/markdown.js';
import type { RunInput, RunStatus, StepSpec } from '../../model/types.js';
import { A, COMMIT_NEW, currentRun, fixtureMetricSummaries, hugeRun, metricsOf } from '../lineage/fixture.js';

const md = new MarkdownIt({ html: true });
const DETAILS = 'https://trainyard.example/runs/run-0008';

function build(run: { input: RunInput; status: RunStatus }): LineageDoc {
  return buildLineage(run.input, run.status, {
    pipelineFileDigest: run.input.pipeline.digest,
    finishedAt: '2030-01-01T00:00:00.000Z',
    metricSummaries: fixtureMetricSummaries(),
  });
}

/** What a reader sees in an inline token: text and code, no markup. */
function shown(t: Token): string {
  return (t.children ?? [])
    .map((c) => (c.type === 'text' || c.type === 'code_inline' ? c.content : c.type === 'softbreak' ? ' ' : ''))
    .join('');
}

interface Table {
  head: string[];
  rows: string[][];
}

/** Every GFM table of the document, in order, after the heading text that precedes it. */
function tables(markdown: string): Map<string, Table> {
  const tokens = md.parse(markdown, {});
  const out = new Map<string, Table>();
  let heading = '';
  let current: Table | null = null;
  let row: string[] | null = null;
  for (let i = 0; i < tokens.length; i += 1) {
    const t = tokens[i]!;
    if (t.type === 'heading_open') heading = shown(tokens[i + 1]!);
    else if (t.type === 'table_open') current = { head: [], rows: [] };
    else if (t.type === 'tr_open') row = [];
    else if ((t.type === 'th_open' || t.type === 'td_open') && row) row.push(shown(tokens[i + 1]!));
    else if (t.type === 'tr_close' && current && row) {
      if (current.head.length === 0) current.head = row;
      else current.rows.push(row);
      row = null;
    } else if (t.type === 'table_close' && current) {
      out.set(heading, current);
      current = null;
    }
  }
  return out;
}

function rowsByFirst(t: Table | undefined): Map<string, Record<string, string>> {
  if (!t) throw new Error('table missing');
  return new Map(t.rows.map((r) => [r[0]!, Object.fromEntries(t.head.map((h, i) => [h, r[i] ?? '']))]));
}

function fences(markdown: string, lang: string): string[] {
  return md
    .parse(markdown, {})
    .filter((t) => t.type === 'fence' && t.info.trim() === lang)
    .map((t) => t.content);
}

interface Graph {
  nodes: Map<string, { label: string; cls: string }>;
  edges: string[];
  classDefs: Map<string, string>;
}

function graphOf(markdown: string): Graph {
  const g = fences(markdown, 'mermaid').find((c) => c.startsWith('graph LR'));
  if (!g) throw new Error('no mermaid graph');
  const nodes = new Map<string, { label: string; cls: string }>();
  const names = new Map<string, string>();
  const edges: string[] = [];
  const classDefs = new Map<string, string>();
  for (const line of g.split('\n')) {
    let m = /^ {2}(s\d+)\["([^"]*)"\]:::(\w+)$/.exec(line);
    if (m) {
      nodes.set(m[2]!, { label: m[2]!, cls: m[3]! });
      names.set(m[1]!, m[2]!);
      continue;
    }
    m = /^ {2}(s\d+) -->\|"([^"]*)"\| (s\d+)$/.exec(line);
    if (m) {
      edges.push(`${names.get(m[1]!)} -${m[2]}-> ${names.get(m[3]!)}`);
      continue;
    }
    m = /^ {2}(s\d+) -\.-> (s\d+)$/.exec(line);
    if (m) {
      edges.push(`${names.get(m[1]!)} ..> ${names.get(m[2]!)}`);
      continue;
    }
    m = /^ {2}classDef (\w+) (.*)$/.exec(line);
    if (m) classDefs.set(m[1]!, m[2]!);
  }
  return { nodes, edges, classDefs };
}

function renameStep(run: { input: RunInput; status: RunStatus }, from: string, to: string): void {
  const p = run.input.pipeline;
  const spec = p.steps[from]!;
  delete p.steps[from];
  p.steps[to] = { ...spec, name: to };
  p.order = p.order.map((n) => (n === from ? to : n));
  for (const s of Object.values(p.steps) as StepSpec[]) {
    for (const src of Object.values(s.inputs)) if (src.kind === 'step' && src.step === from) src.step = to;
    s.needs = s.needs.map((n) => (n === from ? to : n));
  }
  for (const st of run.status.steps) if (st.name === from) st.name = to;
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

describe('run report', () => {
  const doc = build(currentRun());
  const report = renderReport(doc, { detailsUrl: DETAILS });
  const t = tables(report);

  it('opens with the conclusion, pipeline, commit and trigger', () => {
    const tokens = md.parse(report, {});
    expect(shown(tokens[1]!)).toBe('❌ mnist failed');
    const html = md.render(report);
    expect(html).toContain(`<code>${COMMIT_NEW}</code>`);
    expect(html).toContain(
      '<a href="https://github.com/acme/mnist/pull/42#issuecomment-9001">/train comment on #42</a> by alice',
    );
    expect(html).toContain('<code>.trainyard/mnist.yaml</code>');
    expect(html).toContain('5 steps: 3 ran, 1 cached, 1 failed, 1 skipped · 31m 40s · $0.73 · cache saved 10m 02s');
    expect(html).toContain(`<a href="${DETAILS}">full report</a>`);
    expect(bytes(report)).toBeLessThan(GITHUB_SUMMARY_MAX_BYTES);
  });

  it('has a row per step with its state, why it ran or was reused, time, machine and cost', () => {
    const steps = rowsByFirst(t.get('Steps'));
    expect(t.get('Steps')!.head).toEqual(['Step', 'State', 'Why', 'Duration', 'Machine', 'Cost']);
    expect([...steps.keys()]).toEqual(['prepare', 'train_small', 'featurize', 'train_big', 'evaluate']);
    expect(steps.get('prepare')).toEqual({
      Step: 'prepare',
      State: '✅ succeeded',
      Why: 'code changed: src/prepare.py',
      Duration: '1m 34s',
      Machine: 'this host',
      Cost: '—',
    });
    expect(steps.get('train_small')).toMatchObject({
      State: '✅ succeeded',
      Why: 'params changed: epochs 3 → 20, lr 0.001 → 0.0003',
      Duration: '20m 00s',
      Machine: 'g5.xlarge spot',
      Cost: '$0.42',
    });
    expect(steps.get('featurize')).toMatchObject({
      State: '♻️ cached',
      Why: 'reused from run run-0007 (commit 1111111): prepare wrote identical data',
      Machine: 'reused',
    });
    expect(steps.get('train_big')).toMatchObject({
      State: '❌ failed (exit 1), 2 attempts',
      Why: 'no earlier result for this key — python exited with code 1 (CUDA out of memory)',
      Machine: 'g6.xlarge on-demand',
      Cost: '$0.31',
    });
    expect(steps.get('evaluate')).toMatchObject({
      State: '⏭️ skipped',
      Why: 'not run: train_big failed',
      Duration: '—',
    });
  });

  it('draws the DAG with every input and needs edge, nodes coloured by outcome', () => {
    const g = graphOf(report);
    expect(g.edges.sort()).toEqual(
      [
        'prepare -dataset-> train_small',
        'prepare -dataset-> featurize',
        'featurize -features-> train_big',
        'train_small -small-> evaluate',
        'train_big -big-> evaluate',
        'prepare ..> evaluate',
      ].sort(),
    );
    expect(Object.fromEntries([...g.nodes].map(([n, v]) => [n, v.cls]))).toEqual({
      prepare: 'succeeded',
      train_small: 'succeeded',
      featurize: 'cached',
      train_big: 'failed',
      evaluate: 'skipped',
    });
    expect(g.classDefs.get('succeeded')).toMatch(/fill:#dafbe1/); // green
    expect(g.classDefs.get('cached')).toMatch(/fill:#ddf4ff/); // blue
    expect(g.classDefs.get('failed')).toMatch(/fill:#ffebe9/); // red
    expect(g.classDefs.get('skipped')).toMatch(/fill:#eaeef2/); // grey
    expect(g.classDefs.get('cancelled')).toMatch(/fill:#fff1e5/); // orange
  });

  it('shows the last value of each metric, a trend, and charts for series worth plotting', () => {
    const metrics = t.get('Metrics')!;
    const row = (step: string, metric: string): string[] | undefined =>
      metrics.rows.find((r) => r[0] === step && r[1] === metric);
    expect(row('train_small', 'loss')?.slice(2)).toEqual(['0.2412', '█▄▂▁▁']);
    expect(row('train_small', 'acc')?.[2]).toBe('0.9531');
    expect(row('train_small', 'phase')?.[2]).toBe('done');
    expect(row('train_big', 'loss')?.slice(2)).toEqual(['1.4', '']); // one sample: no trend
    const charts = fences(report, 'mermaid').filter((c) => c.startsWith('xychart-beta'));
    expect(
      charts.some(
        (c) => c.includes('title "train_small: loss"') && c.includes('line [0.92, 0.51, 0.33, 0.27, 0.2412]'),
      ),
    ).toBe(true);
    expect(charts.some((c) => c.includes(': epoch"'))).toBe(false); // a counter is not a chart
  });

  it('shows NaN, Infinity and exact numbers as printed, charts a long series downsampled and says so', () => {
    const run = currentRun();
    const small = run.status.steps.find((s) => s.name === 'train_small')!;
    const samples = Array.from({ length: 5000 }, (_, i) => ({
      t: i * 100,
      values: {
        loss: i < 4990 ? 1 / (1 + i) : { number: 'NaN' },
        grad: i === 10 ? { number: 'Infinity' } : i,
        id: { number: '12345678901234567890' },
      },
    }));
    small.outcome = {
      ...small.outcome!,
      metrics: {
        ...metricsOf(samples),
        rejected: {
          lines: 2,
          reason: 'line 7: not a metrics sample: a key must be a double-quoted string at column 2',
        },
      },
    };
    const r = renderReport(build(run));
    const rows = tables(r).get('Metrics')!.rows;
    expect(rows.find((x) => x[0] === 'train_small' && x[1] === 'loss')?.[2]).toBe('NaN');
    expect(rows.find((x) => x[0] === 'train_small' && x[1] === 'id')?.[2]).toBe('12345678901234567890');
    const text = md
      .parse(r, {})
      .filter((t) => t.type === 'inline')
      .map(shown)
      .join('\n');
    expect(text).toContain('⚠️ train_small loss: NaN ×10 (first at 499s)');
    expect(text).toContain('⚠️ train_small grad: Infinity ×1 (first at 1s)');
    expect(text).toMatch(
      /train_small: 5,000 samples; charts and trends are downsampled: each shows at most 60 points, each the mean of consecutive samples \(up to 5,000 values per metric\)\. Full series \(\d+ KiB\): s3:\/\/trainyard-artifacts\/sha256\/[0-9a-f]{64}/,
    );
    expect(text).toContain(
      '⚠️ train_small: 2 stdout lines look like a metrics sample but were not read (line 7: not a metrics sample: a key must be a double-quoted string at column 2); they are in the log.',
    );
    const chart = fences(r, 'mermaid').find((c) => c.includes('title "train_small: loss"'))!;
    const points = chart
      .match(/line \[(.*)\]/)![1]!
      .split(', ')
      .map(Number);
    expect(points.length).toBeGreaterThan(30);
    expect(points.length).toBeLessThanOrEqual(60);
    expect(points.every((p) => Number.isFinite(p))).toBe(true);
    expect(chart).toContain('x-axis "seconds" 0 --> 500');
  });

  it('lists outputs with short digest, readable size and location; params and totals', () => {
    const outputs = t.get('Outputs')!;
    expect(outputs.rows).toContainEqual([
      'prepare',
      'dataset',
      `sha256:${A.dataset.digest.slice(7, 19)}`,
      '52 MiB',
      A.dataset.uri,
    ]);
    expect(outputs.rows).toContainEqual([
      'train_small',
      'model_small',
      `sha256:${A.modelSmall.digest.slice(7, 19)}`,
      '1.2 MiB',
      A.modelSmall.uri,
    ]);
    expect(outputs.rows).toContainEqual([
      'featurize',
      'features (reused)',
      `sha256:${A.features.digest.slice(7, 19)}`,
      '8.0 MiB',
      A.features.uri,
    ]);
    expect(outputs.rows).toHaveLength(3);
    expect(t.get('Parameters')!.rows).toEqual([
      ['epochs', '20'],
      ['lr', '0.0003'],
    ]);
    const totals = Object.fromEntries(t.get('Totals')!.rows.map((r) => [r[0], r[1]]));
    expect(totals).toMatchObject({
      'Wall time': '31m 40s',
      Cost: '$0.73',
      'Cache savings': '1 step reused, 10m 02s, —',
    });
  });

  it('neutralises bidirectional controls in names, env values, params, messages and metrics', () => {
    const run = currentRun();
    const evil = 'train\u202Egnp.exe\u2066x\u2069';
    renameStep(run, 'train_small', evil);
    run.input.pipeline.steps[evil]!.env = { MODE: 'a\u202Db' };
    run.input.params = { note: 'n\u200Fo\u061Ct\u202Ae' };
    const big = run.status.steps.find((x) => x.name === 'train_big')!;
    big.message = `exited with code 1: \u202Eevil`;
    big.outcome = { ...big.outcome!, metrics: metricsOf([{ t: 1, values: { 'lo\u2067ss': 'x\u2068y' } }]) };
    run.input.trigger = {
      kind: 'comment',
      pr: 42,
      actor: 'al\u202Eice',
      commentId: 1,
      commentUrl: 'https://github.com/o/r/pull/42#\u202Eissuecomment-1',
    };
    const r = renderReport(build(run));
    expect(r).not.toMatch(/\p{Bidi_Control}/u);
    const text = md
      .parse(r, {})
      .filter((t) => t.type === 'inline')
      .map(shown)
      .join('\n');
    for (const visible of [
      'train[U+202E]gnp.exe[U+2066]x[U+2069]',
      'MODE=a[U+202D]b',
      'n[U+200F]o[U+061C]t[U+202A]e',
      '[U+202E]evil',
      'lo[U+2067]ss',
      'x[U+2068]y',
      'al[U+202E]ice',
    ]) {
      expect(text).toContain(visible);
    }
    // A link whose URL hides a control is not made a link.
    expect(md.render(r)).not.toContain('href="https://github.com/o/r/pull/42#');
  });

  it('escapes hostile step names, env values and params in tables and Mermaid', () => {
    const run = currentRun();
    const evil = 'train|small `x` <img src=x onerror=alert(1)>]';
    renameStep(run, 'train_small', evil);
    run.input.pipeline.steps[evil]!.env = { MODE: 'a`b``c|d\n```\ne<f]' };
    run.input.params = { note: '| col `tick` <b>x</b>' };
    const r = renderReport(build(run));
    const tt = tables(r);

    const steps = rowsByFirst(tt.get('Steps'));
    expect([...steps.keys()]).toContain(evil);
    for (const row of tt.get('Steps')!.rows) expect(row).toHaveLength(6);
    expect(steps.get(evil)).toMatchObject({ State: '✅ succeeded', Machine: 'g5.xlarge spot' });

    const defs = rowsByFirst(tt.get('Step definitions'));
    expect(defs.get(evil)?.Environment).toBe('MODE=a`b``c|d⏎```⏎e<f]');
    expect(tt.get('Parameters')!.rows).toEqual([['note', '| col `tick` <b>x</b>']]);

    const html = md.render(r);
    expect(html).not.toMatch(/<img|<b>x/);

    // The graph fence survives, and the label carries no character Mermaid would read as syntax.
    const g = graphOf(r);
    expect(g.nodes.size).toBe(5);
    const label = [...g.nodes.keys()].find((l) => l.startsWith('train'))!;
    expect(label).not.toMatch(/[|`<>\]"\n]/);
    expect(label).toBe('train#124;small #96;x#96; #lt;img src=x onerror=alert#40;1#41;#gt;#93;');
    expect(g.edges).toContain(`prepare -dataset-> ${label}`);
    expect(g.edges).toContain(`${label} -small-> evaluate`);
  });

  it("stays under GitHub's limit for a 2,000-step run, keeping failures and saying what was cut", () => {
    const big = build(hugeRun(2000));
    const r = renderReport(big, { detailsUrl: DETAILS });
    expect(bytes(r)).toBeLessThanOrEqual(GITHUB_SUMMARY_MAX_BYTES);
    const steps = tables(r).get('Steps')!;
    const more = /^… (\d+) more steps — full report: (\S+)$/m.exec(r);
    expect(more, 'truncation line').not.toBeNull();
    expect(Number(more![1]) + steps.rows.length).toBe(2000);
    expect(steps.rows.length).toBeGreaterThan(100); // cut, not emptied
    expect(md.render(more![0])).toContain(`<a href="${DETAILS}">${DETAILS}</a>`);
    const failed = steps.rows.find((row) => row[1]!.startsWith('❌'));
    expect(failed?.[0]).toBe('shard_1993');
    expect(fences(r, 'mermaid')).toEqual([]); // charts and the graph went first
    expect(r).toContain('### Totals');

    for (const max of [30_000, 4_000, 1_200, 300, 40]) {
      const small = renderReport(big, { detailsUrl: DETAILS, maxBytes: max });
      expect(bytes(small), `maxBytes ${max}`).toBeLessThanOrEqual(max);
      expect(small.length).toBeGreaterThan(max / 4);
    }
  });

  it('shrinks in order: charts first, the graph only when needed', () => {
    const full = renderReport(doc);
    const r = renderReport(doc, { maxBytes: bytes(full) - 1 });
    expect(bytes(r)).toBeLessThan(bytes(full));
    expect(fences(r, 'mermaid').some((c) => c.startsWith('xychart-beta'))).toBe(false);
    expect(graphOf(r).nodes.size).toBe(5);
    expect(tables(r).get('Steps')!.rows).toHaveLength(5);

    // Past Mermaid's edge limit the graph is replaced by a sentence, even when bytes allow it.
    const wide = renderReport(build(hugeRun(600)), { maxBytes: 10_000_000 });
    expect(wide).toContain("graph not drawn: 599 edges is more than GitHub's Mermaid draws (500)");
    expect(tables(wide).get('Steps')!.rows).toHaveLength(600);
  });
});
