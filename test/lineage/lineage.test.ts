import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLineageActivities } from '../../activities/lineage/activity.js';
import { buildLineage, type LineageDoc } from '../../activities/lineage/document.js';
import { listRuns, saveLineage } from '../../activities/lineage/storage.js';
import { lineageOf, type LineageAnswer } from '../../activities/lineage/query.js';
import { formatLineageAnswer } from '../../activities/lineage/text.js';
import {
  A,
  COMMIT_NEW,
  COMMIT_OLD,
  currentRun,
  earlierRun,
  fixtureMetricSummaries,
  hugeRun,
  putFixtureMetrics,
} from './fixture.js';
import { MemStore } from './memstore.js';

const here = dirname(fileURLToPath(import.meta.url));
const schema = JSON.parse(readFileSync(join(here, '../../schema/lineage.schema.json'), 'utf8')) as Record<
  string,
  unknown
>;
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validate = ajv.compile(schema);

function build(run: ReturnType<typeof currentRun>): LineageDoc {
  return buildLineage(run.input, run.status, {
    pipelineFileDigest: run.input.pipeline.digest,
    finishedAt: '2030-01-01T00:00:00.000Z',
    metricSummaries: fixtureMetricSummaries(),
  });
}

type Artifact = Extract<LineageAnswer, { kind: 'artifact' }>;
function asArtifact(a: LineageAnswer): Artifact {
  if (a.kind !== 'artifact') throw new Error(`expected an artifact answer, got ${a.kind}: ${formatLineageAnswer(a)}`);
  return a;
}

describe('lineage document', () => {
  it('validates against the published schema, which documents every field', () => {
    const doc = build(currentRun());
    // JSON round trip: what is validated is what the store keeps
    const stored = JSON.parse(JSON.stringify(doc)) as unknown;
    expect(validate(stored), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(validate(JSON.parse(JSON.stringify(build(earlierRun()))))).toBe(true);
    expect(validate(JSON.parse(JSON.stringify(build(hugeRun(30)))))).toBe(true);

    const undocumented: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}/${i}`));
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (o.properties && typeof o.properties === 'object') {
        for (const [k, v] of Object.entries(o.properties as Record<string, Record<string, unknown>>)) {
          const ref =
            typeof v.$ref === 'string'
              ? (schema.$defs as Record<string, Record<string, unknown>>)[v.$ref.split('/').pop()!]
              : undefined;
          if (typeof v.description !== 'string' && typeof ref?.description !== 'string')
            undocumented.push(`${path}/properties/${k}`);
        }
      }
      for (const [k, v] of Object.entries(o)) walk(v, `${path}/${k}`);
    };
    walk(schema, '#');
    expect(undocumented).toEqual([]);
  });

  it('the schema rejects a document that lies about its shape', () => {
    const doc = JSON.parse(JSON.stringify(build(currentRun()))) as Record<string, unknown> & {
      steps: Record<string, unknown>[];
    };
    expect(validate({ ...doc, schema: 'trainyard.lineage/v1' })).toBe(false);
    const badStep = { ...doc.steps[0], outputs: { dataset: { digest: 'md5:abc', size: 1, kind: 'file', uri: 'x' } } };
    expect(validate({ ...doc, steps: [badStep] })).toBe(false);
    expect(validate({ ...doc, surprise: true })).toBe(false);
  });

  it('records run facts, totals and per-step provenance', () => {
    const doc = build(currentRun());
    expect(doc.schema).toBe('trainyard.lineage/v2');
    expect(doc.runId).toBe('run-0008');
    expect(doc.pipeline).toEqual({
      name: 'mnist',
      file: '.trainyard/mnist.yaml',
      digest: currentRun().input.pipeline.digest,
    });
    expect(doc.source).toEqual({
      kind: 'git',
      commit: COMMIT_NEW,
      dirtyBase: null,
      repo: '/srv/repos/mnist',
      subdir: '',
      host: null,
    });
    expect(doc.trigger).toMatchObject({ kind: 'comment', pr: 42, actor: 'alice' });
    expect(doc.params).toEqual({ epochs: 20, lr: 0.0003 });
    expect(doc.conclusion).toBe('failed');
    expect(doc.steps.map((s) => [s.name, s.state])).toEqual([
      ['prepare', 'succeeded'],
      ['train_small', 'succeeded'],
      ['featurize', 'cached'],
      ['train_big', 'failed'],
      ['evaluate', 'skipped'],
    ]);
    const t = doc.totals;
    expect([t.steps, t.ran, t.succeeded, t.cached, t.failed, t.skipped, t.cancelled]).toEqual([5, 3, 2, 1, 1, 1, 0]);
    expect(t.durationMs).toBe(1_900_000);
    expect(t.costUsd).toBeCloseTo(0.73, 10);
    // compute: prepare 92s + train_small 1190s + train_big (570s lost + 1160s) — the reused featurize is not ours
    expect(t.computeMs).toBe((92 + 1190 + 570 + 1160) * 1000);
    // without the source run's lineage, savings come from the reused outcome's own attempts (602s), cost unknown
    expect(t.cacheSavings).toEqual({ steps: 1, durationMs: 602_000, costUsd: null });

    const byName = new Map(doc.steps.map((s) => [s.name, s]));
    const featurize = byName.get('featurize')!;
    expect(featurize.executedHere).toBe(false);
    expect(featurize.cache).toMatchObject({
      decision: 'hit',
      source: { runId: 'run-0007', commit: COMMIT_OLD, step: 'featurize' },
    });
    expect(featurize.outputs.features).toEqual(A.features);
    expect(featurize.host).toBeNull();

    const prepare = byName.get('prepare')!;
    expect(prepare.image).toEqual({
      ref: 'python:3.12-slim',
      resolved: A.image.python,
      digest: A.image.python.split('@')[1],
    });
    expect(prepare.inputs.raw).toMatchObject({
      digest: A.raw.digest,
      origin: { kind: 'uri', uri: 's3://datasets/mnist/raw.tar.gz' },
    });
    expect(prepare.inputs.labels?.origin).toEqual({ kind: 'repo', path: 'data/labels.csv', commit: COMMIT_NEW });
    expect(prepare.logDigest).toBe(A.log.prepare);
    expect(prepare.line).toBe(12);
    expect(prepare.code).toEqual(['src/prepare.py']);

    const big = byName.get('train_big')!;
    expect(big.attempts.map((a) => [a.attempt, a.outcome, a.exitCode])).toEqual([
      [1, 'host_lost', null],
      [2, 'failed', 1],
    ]);
    expect(big.host).toMatchObject({ kind: 'ec2', instanceType: 'g6.xlarge', market: 'on-demand', costUsd: 0.31 });
    expect(big.host?.provisioning?.[0]).toMatchObject({ instanceType: 'g5.xlarge', outcome: 'capacity' });
    expect(big.env.NOTE).toContain('`--fast`');
    expect(big.command).toBe('python src/train.py --size big');

    const small = byName.get('train_small')!;
    expect(small.command).toEqual(['python', 'src/train.py', '--size', 'small']);
    expect(small.metrics).toMatchObject({ samples: 5, names: 4, problem: null });
    expect(small.metrics?.metrics.map((m) => [m.name, m.count, m.last])).toEqual([
      ['epoch', 5, 20],
      ['loss', 5, 0.2412],
      ['acc', 5, 0.9531],
      ['phase', 1, 'done'],
    ]);
    expect(small.params).toEqual(['epochs', 'lr']);

    expect(byName.get('evaluate')!.upstream).toEqual([
      { from: 'train_small', input: 'small', output: 'model_small' },
      { from: 'train_big', input: 'big', output: 'model_big' },
      { from: 'prepare', input: null, output: null },
    ]);
    expect(byName.get('evaluate')!.message).toBe('not run: train_big failed');
  });

  it('records a dirty-tree snapshot and a remote source', () => {
    const run = currentRun();
    run.input.source = { kind: 'git', repoPath: '/w', commit: COMMIT_NEW, subdir: 'ml', dirtyBase: COMMIT_OLD };
    expect(build(run).source).toMatchObject({ commit: COMMIT_NEW, dirtyBase: COMMIT_OLD, subdir: 'ml' });
    run.input.source = {
      kind: 'remote',
      cloneUrl: 'https://github.com/acme/mnist.git',
      commit: COMMIT_NEW,
      subdir: '',
      host: 'github',
      installationId: 1,
    };
    expect(build(run).source).toEqual({
      kind: 'remote',
      commit: COMMIT_NEW,
      dirtyBase: null,
      repo: 'https://github.com/acme/mnist.git',
      subdir: '',
      host: 'github',
    });
  });
});

describe('stored lineage and `trainyard lineage`', () => {
  const store = new MemStore();
  const { recordRunLineage } = createLineageActivities({ store, now: () => new Date('2030-01-01T00:00:00.000Z') });
  let recorded: Awaited<ReturnType<typeof recordRunLineage>>;

  beforeAll(async () => {
    await putFixtureMetrics(store);
    await recordRunLineage(earlierRun());
    recorded = await recordRunLineage({ ...currentRun(), detailsUrl: 'https://trainyard.example/runs/run-0008' });
  });

  it('stores the document, the report and a run listing under the documented keys', async () => {
    expect(recorded.lineageKey).toBe('runs/run-0008/lineage');
    expect(recorded.reportKey).toBe('runs/run-0008/report');
    expect(recorded.conclusion).toBe('failed');
    expect(recorded.failedStep).toEqual({ name: 'train_big', logDigest: A.log.trainBig });
    expect(recorded.title).toBe('mnist failed: 3 ran, 1 cached, 1 failed, 1 skipped');
    const doc = await store.getRecord<LineageDoc>('runs/run-0008/lineage');
    expect(validate(doc)).toBe(true);
    expect(doc?.steps.find((s) => s.name === 'train_big')?.state).toBe('failed');
    const report = await store.getRecord<{ markdown: string }>('runs/run-0008/report');
    expect(report?.markdown).toBe(recorded.reportMarkdown);
    expect(report?.markdown).toContain('https://trainyard.example/runs/run-0008');
    const runs = await listRuns(store);
    expect(runs.map((r) => [r.runId, r.conclusion, r.commit])).toEqual([
      ['run-0008', 'failed', COMMIT_NEW],
      ['run-0007', 'cancelled', COMMIT_OLD],
    ]);
  });

  it("prices the cache's savings from the source run's lineage", async () => {
    const doc = await store.getRecord<LineageDoc>('runs/run-0008/lineage');
    // featurize took 604s on a $0.17 spot host in run-0007
    expect(doc?.totals.cacheSavings).toEqual({ steps: 1, durationMs: 604_000, costUsd: 0.17 });
  });

  it('answers where a dataset came from and what was trained on it', async () => {
    const a = asArtifact(await lineageOf(store, A.dataset.digest));
    expect(a).toMatchObject({
      digest: A.dataset.digest,
      size: A.dataset.size,
      artifactKind: 'dir',
      uri: A.dataset.uri,
    });
    // both runs executed prepare and wrote identical bytes
    expect(a.producers.map((p) => [p.runId, p.step, p.output, p.reused, p.commit])).toEqual([
      ['run-0007', 'prepare', 'dataset', false, COMMIT_OLD],
      ['run-0008', 'prepare', 'dataset', false, COMMIT_NEW],
    ]);
    // one hop upstream: what prepare itself read, and from where
    const ups = a.producers[1]!.inputs;
    expect(ups).toContainEqual({
      name: 'raw',
      digest: A.raw.digest,
      origin: { kind: 'uri', uri: 's3://datasets/mnist/raw.tar.gz' },
    });
    expect(ups).toContainEqual({
      name: 'labels',
      digest: A.labels.digest,
      origin: { kind: 'repo', path: 'data/labels.csv', commit: COMMIT_NEW },
    });
    expect(a.producers[1]!.image).toBe(A.image.python);
    // fan-out: two steps of run-0008 consumed it
    expect(a.consumers.map((c) => [c.runId, c.step, c.input])).toEqual([
      ['run-0007', 'featurize', 'dataset'],
      ['run-0008', 'train_small', 'dataset'],
      ['run-0008', 'featurize', 'dataset'],
    ]);

    const text = formatLineageAnswer(a);
    expect(text).toContain(`artifact ${A.dataset.digest}`);
    expect(text).toMatch(/produced by:\n {2}run run-0007 .*step prepare output dataset/);
    expect(text).toContain(`from raw ${A.raw.digest} ← s3://datasets/mnist/raw.tar.gz`);
    expect(text).toContain(`from labels ${A.labels.digest} ← repo data/labels.csv @ ${COMMIT_NEW.slice(0, 12)}`);
    expect(text).toMatch(/consumed by:[\s\S]*run run-0008 .*step train_small input dataset \[succeeded\]/);
  });

  it('tells a reused artifact from the run that made it', async () => {
    const a = asArtifact(await lineageOf(store, A.features.digest));
    expect(a.producers.map((p) => [p.runId, p.reused, p.producedBy?.runId])).toEqual([
      ['run-0007', false, 'run-0007'],
      ['run-0008', true, 'run-0007'],
    ]);
    expect(a.consumers.map((c) => [c.runId, c.step, c.state])).toEqual([['run-0008', 'train_big', 'failed']]);
    const text = formatLineageAnswer(a);
    expect(text).toMatch(/produced by:\n {2}run run-0007 .*step featurize output features/);
    expect(text).toMatch(/reused \(cache\) by:\n {2}run run-0008 .*step featurize output features from run run-0007/);
  });

  it('answers for a run id', async () => {
    const a = await lineageOf(store, 'run-0008');
    expect(a.kind).toBe('run');
    if (a.kind !== 'run') return;
    expect(a.steps.find((s) => s.name === 'featurize')).toMatchObject({
      state: 'cached',
      cacheDecision: 'hit',
      outputs: { features: A.features.digest },
    });
    const text = formatLineageAnswer(a);
    expect(text.split('\n')[0]).toBe('run run-0008: failed');
    expect(text).toContain(`commit    ${COMMIT_NEW}`);
    expect(text).toContain('params    epochs=20 lr=0.0003');
    expect(text).toContain('- train_big: failed [cache miss] — no earlier result for this key');
    expect(text).toContain('reused from run run-0007 step featurize');
    expect(text).toContain(`out model_small ${A.modelSmall.digest}`);
  });

  it('resolves a digest prefix of 12+ hex digits through one listing, and refuses shorter ones', async () => {
    const hex = A.features.digest.slice(7);
    store.listed.length = 0;
    for (const q of [hex.slice(0, 12), `sha256:${hex.slice(0, 20)}`, hex.toUpperCase().slice(0, 16)]) {
      expect(asArtifact(await lineageOf(store, q)).digest).toBe(A.features.digest);
    }
    // no answer listed a whole index folder: only the one prefix bucket and this digest's own folders
    const allowed = [
      `index/digest-prefix/${hex.slice(0, 12)}/`,
      `index/produced/${A.features.digest}/`,
      `index/consumed/${A.features.digest}/`,
    ];
    expect(
      store.listed.every((p) => allowed.includes(p)),
      store.listed.join(', '),
    ).toBe(true);

    const short = await lineageOf(store, hex.slice(0, 8));
    expect(short.kind).toBe('not_found');
    expect(formatLineageAnswer(short)).toContain('at least 12 hex digits');
  });

  it('says when a prefix is ambiguous or nothing matches', async () => {
    const s = new MemStore();
    const doc = build(currentRun());
    const twin = (tail: string): string => `sha256:abcdefabcdef${tail.repeat(52)}`;
    doc.steps[0]!.outputs = { a: { ...A.dataset, digest: twin('1') }, b: { ...A.dataset, digest: twin('2') } };
    await saveLineage(s, doc);
    const amb = await lineageOf(s, 'abcdefabcdef');
    expect(amb).toEqual({ kind: 'ambiguous', query: 'abcdefabcdef', candidates: [twin('1'), twin('2')] });
    expect(formatLineageAnswer(amb)).toContain('matches 2 artifacts');
    expect(asArtifact(await lineageOf(s, 'abcdefabcdef2')).digest).toBe(twin('2'));

    const none = await lineageOf(s, `sha256:${'0'.repeat(64)}`);
    expect(none.kind).toBe('not_found');
    expect(formatLineageAnswer(none)).toContain(`no run in mem://test produced or consumed sha256:${'0'.repeat(64)}`);
    expect((await lineageOf(s, 'no-such-run')).kind).toBe('not_found');
  });

  it('refuses a run id that would shape a store key', async () => {
    const doc = build(currentRun());
    for (const runId of ['../etc', 'a/b', '', '.hidden']) {
      await expect(saveLineage(new MemStore(), { ...doc, runId })).rejects.toThrow(/not usable as a store key/);
    }
    expect((await lineageOf(store, '../runs/run-0008')).kind).toBe('not_found');
  });

  it('keeps terminal control sequences of hostile names out of CLI output', async () => {
    const s = new MemStore();
    const run = currentRun();
    run.status.steps[0]!.name = 'prep\u001b[2J\u001b]0;pwned\u0007\u202Eevil';
    run.input.pipeline.order[0] = run.status.steps[0]!.name;
    await saveLineage(s, build(run));
    const text = formatLineageAnswer(await lineageOf(s, A.dataset.digest));
    expect(text).toContain('step prep [2J ]0;pwned [U+202E]evil output dataset');
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f]|\p{Bidi_Control}/u);
  });
});

describe('on the real folder store', () => {
  it('saves and answers the same way (key alphabet, listing semantics)', async () => {
    const { LocalStore } = await import('../../activities/store/local.js');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const root = await mkdtemp(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'lineage-'));
    try {
      const store = new LocalStore(root);
      const { recordRunLineage } = createLineageActivities({ store });
      await putFixtureMetrics(store);
      await recordRunLineage(earlierRun());
      await recordRunLineage(currentRun());
      const a = asArtifact(await lineageOf(store, A.features.digest.slice(7, 7 + 14)));
      expect(a.producers.map((p) => [p.runId, p.reused])).toEqual([
        ['run-0007', false],
        ['run-0008', true],
      ]);
      expect(a.consumers.map((c) => c.step)).toEqual(['train_big']);
      expect((await listRuns(store)).map((r) => r.runId)).toEqual(['run-0008', 'run-0007']);
      expect((await lineageOf(store, 'run-0007')).kind).toBe('run');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('GPU time in the totals', () => {
  it('sums billed GPU-seconds and their idle part over GPU hosts, and the report shows it', async () => {
    const { lineageSchemaErrors } = await import('./schema.js');
    const { renderReport } = await import('../../activities/report/markdown.js');
    const run = currentRun();
    const executed = run.status.steps.filter(
      (s) => s.outcome && s.outcome.producedBy.runId === run.input.runId && s.host,
    );
    expect(executed.length).toBeGreaterThan(0);
    for (const s of executed) s.host = { ...s.host!, gpus: 2, billedSeconds: 100, idleGpuSeconds: 50 };
    const doc = buildLineage(run.input, run.status, {
      pipelineFileDigest: run.input.pipeline.digest,
      finishedAt: '2030-01-01T00:00:00.000Z',
      metricSummaries: fixtureMetricSummaries(),
    });
    expect(doc.totals.gpu).toEqual({
      billedGpuSeconds: 200 * executed.length,
      idleGpuSeconds: 50 * executed.length,
      idleFraction: 0.25,
    });
    expect(lineageSchemaErrors(doc)).toEqual([]);
    expect(renderReport(doc)).toMatch(/\| GPU time \| .* billed, 25\.0% idle \|/);
  });
});
