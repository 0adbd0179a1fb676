// Metrics against the base: the table (values, signed changes, params that differ) and the
// choice of the base run through the branch index, on a real folder store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MarkdownIt from 'markdown-it';
import { afterAll, describe, expect, it } from 'vitest';
import {
  changeText,
  diffMarkdown,
  diffMarker,
  diffText,
  findBaseRun,
  metricsDiff,
} from '../../activities/lineage/compare.js';
import { LINEAGE_SCHEMA_ID, type LineageDoc, type LineageStep } from '../../activities/lineage/document.js';
import { saveLineage } from '../../activities/lineage/storage.js';
import { createLineageActivities } from '../../activities/lineage/activity.js';
import { COMMIT_NEW, currentRun, putFixtureMetrics } from './fixture.js';
import type { MetricSeriesSummary } from '../../activities/runner/summary.js';
import { createStore } from '../../activities/store/factory.js';
import type { MetricValue, ParamValue, Trigger } from '../../model/types.js';

const salt = Math.random().toString(36).slice(2, 8);
const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'compare-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const REPO = 'https://github.com/octo-org/models.git';
const sha = (n: number): string => n.toString(16).padStart(40, 'a');
let clock = Date.parse('2026-11-01T10:00:00Z');

function metric(name: string, last: MetricValue): MetricSeriesSummary {
  return {
    name,
    count: 3,
    finite: 3,
    firstT: 0,
    lastT: 10,
    last,
    min: null,
    max: null,
    nonFinite: [],
    exactText: 0,
    points: [],
    counter: false,
    downsampled: false,
  };
}

/** A finished run's lineage document with just what a comparison reads. */
function doc(o: {
  runId: string;
  trigger: Trigger;
  commit: string;
  conclusion?: LineageDoc['conclusion'];
  params?: Record<string, ParamValue>;
  metrics?: Record<string, Record<string, MetricValue>>;
  pipeline?: string;
}): LineageDoc {
  clock += 60_000;
  const steps = Object.entries(o.metrics ?? {}).map(
    ([name, values]) =>
      ({
        name,
        state: 'succeeded',
        metrics: {
          samples: 3,
          series: null,
          summary: null,
          names: Object.keys(values).length,
          metrics: Object.entries(values).map(([k, v]) => metric(k, v)),
          unsummarised: 0,
          rejected: null,
          problem: null,
        },
        inputs: {},
        outputs: {},
        attempts: [],
        cache: null,
        executedHere: true,
        producedBy: null,
        image: { ref: 'x', resolved: null, digest: null },
      }) as unknown as LineageStep,
  );
  return {
    schema: LINEAGE_SCHEMA_ID,
    runId: o.runId,
    pipeline: { name: o.pipeline ?? 'flowers', file: '.trainyard/flowers.yaml', digest: `sha256:${'0'.repeat(64)}` },
    trigger: o.trigger,
    source: { kind: 'remote', commit: o.commit, dirtyBase: null, repo: REPO, subdir: '', host: 'github' },
    params: o.params ?? {},
    startedAt: new Date(clock - 30_000).toISOString(),
    finishedAt: new Date(clock).toISOString(),
    conclusion: o.conclusion ?? 'succeeded',
    totals: {
      steps: steps.length,
      ran: steps.length,
      succeeded: steps.length,
      cached: 0,
      failed: 0,
      skipped: 0,
      cancelled: 0,
      incomplete: 0,
      durationMs: 30_000,
      computeMs: 0,
      costUsd: null,
      cacheSavings: { steps: 0, durationMs: null, costUsd: null },
    },
    steps,
  };
}

const push = (branch: string): Trigger => ({ kind: 'push', ref: `refs/heads/${branch}`, actor: 'alice' });
const pr = (baseSha?: string): Trigger => ({
  kind: 'comment',
  pr: 7,
  actor: 'alice',
  commentId: 1,
  baseRef: 'main',
  headRef: 'feature',
  ...(baseSha ? { baseSha } : {}),
});

describe('the metrics table', () => {
  const base = doc({
    runId: 'run-base',
    trigger: push('main'),
    commit: sha(1),
    params: { lr: 0.5, epochs: 200 },
    metrics: { train: { loss: 0.25, acc: 0.8, note: 'ok' }, evaluate: { f1: 0.5 } },
  });
  const head = doc({
    runId: 'run-head',
    trigger: pr(sha(1)),
    commit: sha(2),
    params: { lr: 0.1, epochs: 200, seed: 3 },
    metrics: { train: { loss: 0.2, acc: 0.8, note: 'better' }, evaluate: { f1: 0, auc: { number: 'NaN' } } },
  });
  const diff = metricsDiff(head, base);

  it("lists exactly the parameters whose values differ, and every metric's last value next to the base's", () => {
    expect(diff.params).toEqual([
      { name: 'lr', head: 0.1, base: 0.5 },
      { name: 'seed', head: 3, base: undefined },
    ]);
    expect(diff.metrics.map((r) => [`${r.step}.${r.metric}`, r.head, r.base])).toEqual([
      ['train.loss', 0.2, 0.25],
      ['train.acc', 0.8, 0.8],
      ['train.note', 'better', 'ok'],
      ['evaluate.f1', 0, 0.5],
      ['evaluate.auc', { number: 'NaN' }, undefined],
    ]);
  });

  it('gives each change with its sign and relative size, and says what cannot be subtracted', () => {
    const byName = Object.fromEntries(diff.metrics.map((r) => [`${r.step}.${r.metric}`, changeText(r)]));
    expect(byName).toEqual({
      'train.loss': '-0.05 (-20.0%)',
      'train.acc': '0',
      'train.note': 'changed',
      'evaluate.f1': '-0.5 (-100.0%)',
      'evaluate.auc': 'new',
    });
    expect(changeText({ change: 3, relative: null, head: 3, base: 0 })).toBe('+3');
    expect(changeText({ change: null, relative: null, head: undefined, base: 1 })).toBe('only in base');
  });

  it('renders a Markdown table (params above it) that GFM reads as one row per metric, with user text escaped', () => {
    const md = diffMarkdown(diff, { why: 'the run at the merge base on main' }).join('\n');
    const html = new MarkdownIt().render(md);
    expect(md.indexOf('Parameters that differ')).toBeLessThan(md.indexOf('| metric |'));
    expect(md).toContain('- `lr`: `0.5` → `0.1`');
    expect((html.match(/<tr>/g) ?? []).length).toBe(1 + diff.metrics.length);
    expect(html).toMatch(
      /<td><code>train.loss<\/code><\/td>\s*<td style="text-align:right">0.2<\/td>\s*<td style="text-align:right">0.25<\/td>\s*<td style="text-align:right">-0.05 \(-20.0%\)<\/td>/,
    );
    const hostile = metricsDiff(
      doc({ runId: 'r1', trigger: push('x'), commit: sha(3), metrics: { s: { 'a|b': '<img src=x>' } } }),
      base,
    );
    const hostileHtml = new MarkdownIt().render(diffMarkdown(hostile, { why: 'x' }).join('\n'));
    expect(hostileHtml).not.toContain('<img');
    expect(hostileHtml).toContain('<code>s.a|b</code>');
  });

  it('overlays the curves both runs recorded in one chart each, this run first; a metric without a curve gets none', () => {
    const withCurve = (d: LineageDoc, values: number[]): LineageDoc => {
      const copy = structuredClone(d);
      copy.steps[0]!.metrics!.metrics[0]!.points = values.map((v, i) => [i * 1000, v]);
      return copy;
    };
    const curves = metricsDiff(withCurve(head, [1, 0.5, 0.2]), withCurve(base, [1, 0.6, 0.4, 0.25]));
    expect(curves.series).toEqual([{ step: 'train', metric: 'loss', head: [1, 0.5, 0.2], base: [1, 0.6, 0.4, 0.25] }]);
    const md = diffMarkdown(curves, { why: 'x' }).join('\n');
    const blocks = md.split('```mermaid').slice(1);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toContain('title "train: loss, this run vs base"');
    expect(blocks[0]!.match(/^ {2}line \[.*\]$/gm)).toEqual(['  line [1, 0.5, 0.2]', '  line [1, 0.6, 0.4, 0.25]']);
    expect(diffMarkdown(diff, { why: 'x' }).join('\n')).not.toContain('```mermaid');
  });

  it('prints an aligned plain-text table for the terminal', () => {
    const text = diffText(diff);
    expect(text).toContain('params that differ:\n  lr: 0.5 -> 0.1\n  seed: — -> 3');
    expect(text).toMatch(/^METRIC\s+THIS RUN\s+BASE\s+CHANGE$/m);
    expect(text).toMatch(/^train\.loss\s+0\.2\s+0\.25\s+-0\.05 \(-20\.0%\)$/m);
  });

  it('the PR comment marker names the pipeline and is hidden HTML', () => {
    expect(diffMarker('flowers')).toBe('<!-- trainyard:metrics-diff pipeline=flowers -->');
    expect(new MarkdownIt({ html: true }).render(diffMarker('flowers'))).not.toMatch(/<p>/);
  });
});

describe('the base run, through the branch index', () => {
  it("a PR run: the merge base's run on the base branch, else the newest successful one there", async () => {
    const store = createStore(join(root, 'pr'));
    const atMergeBase = doc({ runId: 'run-main-1', trigger: push('main'), commit: sha(10) });
    const newer = doc({ runId: 'run-main-2', trigger: push('main'), commit: sha(11) });
    const failed = doc({ runId: 'run-main-3', trigger: push('main'), commit: sha(12), conclusion: 'failed' });
    const otherPipeline = doc({ runId: 'run-main-4', trigger: push('main'), commit: sha(13), pipeline: 'other' });
    for (const d of [atMergeBase, newer, failed, otherPipeline]) await saveLineage(store, d);
    expect(await findBaseRun(store, doc({ runId: 'run-pr-1', trigger: pr(sha(10)), commit: sha(20) }))).toMatchObject({
      runId: 'run-main-1',
      why: `the run at the merge base ${sha(10).slice(0, 12)} on main`,
    });
    expect(await findBaseRun(store, doc({ runId: 'run-pr-2', trigger: pr(sha(99)), commit: sha(21) }))).toMatchObject({
      runId: 'run-main-2',
      why: 'the newest successful run on main',
    });
    expect(
      await findBaseRun(
        store,
        doc({ runId: 'run-pr-3', trigger: { ...pr(), baseRef: 'release' } as Trigger, commit: sha(22) }),
      ),
    ).toBeUndefined();
  });

  it("a push run: the previous successful run on its branch, never itself or another branch's", async () => {
    const store = createStore(join(root, 'push'));
    const first = doc({ runId: 'run-f-1', trigger: push('feature'), commit: sha(30) });
    const onMain = doc({ runId: 'run-m-1', trigger: push('main'), commit: sha(31) });
    const broken = doc({ runId: 'run-f-2', trigger: push('feature'), commit: sha(32), conclusion: 'failed' });
    for (const d of [first, onMain, broken]) await saveLineage(store, d);
    const next = doc({ runId: 'run-f-3', trigger: push('feature'), commit: sha(33) });
    expect(await findBaseRun(store, next)).toMatchObject({
      runId: 'run-f-1',
      why: 'the previous successful run on feature',
    });
    await saveLineage(store, next);
    expect(await findBaseRun(store, next)).toMatchObject({ runId: 'run-f-1' });
    expect(
      await findBaseRun(
        store,
        doc({ runId: 'run-t', trigger: { kind: 'push', ref: 'refs/tags/v1', actor: 'a' }, commit: sha(34) }),
      ),
    ).toBeUndefined();
  });

  it('recordRunLineage compares a PR run with its base: the report carries the table, and the result gives it for the PR comment', async () => {
    const store = createStore(join(root, 'activity'));
    const { recordRunLineage } = createLineageActivities({ store });
    const onMain = currentRun();
    await putFixtureMetrics(store); // the summaries currentRun() made
    onMain.input.runId = onMain.status.runId = `run-main-${salt}`;
    onMain.input.trigger = push('main');
    onMain.status.state = 'succeeded';
    const first = await recordRunLineage(onMain);
    expect(first.comparison).toBeUndefined();
    expect(first.reportMarkdown).not.toContain('Metrics against the base');

    const inPr = currentRun();
    inPr.input.runId = inPr.status.runId = `run-pr-${salt}`;
    inPr.input.trigger = {
      kind: 'comment',
      pr: 42,
      actor: 'alice',
      commentId: 9002,
      baseRef: 'main',
      baseSha: COMMIT_NEW,
      headRef: 'feature',
    };
    inPr.input.params = { ...inPr.input.params, lr: 0.01 };
    const recorded = await recordRunLineage(inPr);
    expect(recorded.comparison?.baseRunId).toBe(`run-main-${salt}`);
    expect(recorded.comparison?.markdown).toContain(`the run at the merge base ${COMMIT_NEW.slice(0, 12)} on main`);
    expect(recorded.comparison?.markdown).toContain('- `lr`: `0.0003` → `0.01`');
    expect(recorded.reportMarkdown).toContain(
      recorded.comparison!.markdown.split('\n').find((l) => l.startsWith('| `train_small.'))!,
    );
    expect(recorded.reportMarkdown.indexOf('### Metrics against the base')).toBeLessThan(
      recorded.reportMarkdown.indexOf('### Steps'),
    );
  });
});
