// A realistic pair of runs of one 5-step pipeline with fan-out and fan-in:
//
//   prepare ──dataset──▶ train_small ──model_small──▶ evaluate
//      │                                                ▲   ▲
//      └──dataset──▶ featurize ──features──▶ train_big ──model_big
//      └─────────────────────── needs ─────────────────────┘ (prepare ⇢ evaluate)
//
// run-0007 ran prepare and featurize, then was cancelled. run-0008 (the one under test):
// prepare re-ran and wrote byte-identical data, featurize was reused from run-0007,
// train_small succeeded with metrics, train_big lost its spot host then failed, evaluate
// was skipped.
import { boundedLastValues } from '../../activities/runner/output.js';
import { summariseSamples, type MetricsSummary } from '../../activities/runner/summary.js';
import { sha256Bytes } from '../../activities/store/digest.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import type { HostRecord } from '../../model/hosttypes.js';
import type {
  ArtifactRef,
  CacheSource,
  MetricSample,
  StepMetrics,
  Pipeline,
  RunInput,
  RunStatus,
  StepSpec,
  StepStatus,
} from '../../model/types.js';

export const COMMIT_OLD = '1111111111111111111111111111111111111111';
export const COMMIT_NEW = '2222222222222222222222222222222222222222';

export const digestOf = (label: string): string => sha256Bytes(label);
const art = (label: string, size: number, kind: 'file' | 'dir' = 'file'): ArtifactRef => ({
  digest: digestOf(label),
  size,
  kind,
  uri: `s3://trainyard-artifacts/sha256/${digestOf(label).slice(7)}`,
});

export const A = {
  raw: art('raw.tar.gz', 11_594_722),
  labels: art('labels.csv@1111', 2_048),
  dataset: art('dataset-v1', 54_525_952, 'dir'),
  features: art('features-v1', 8_388_608),
  modelSmall: art('model-small-2222', 1_258_291),
  log: {
    prepare: digestOf('log prepare 0008'),
    trainSmall: digestOf('log train_small 0008'),
    featurize: digestOf('log featurize 0007'),
    trainBig: digestOf('log train_big 0008'),
  },
  key: (step: string, v: string): string => digestOf(`key ${step} ${v}`),
  image: {
    python: `python@${digestOf('python:3.12-slim')}`,
    torch: `pytorch/pytorch@${digestOf('torch-2.4')}`,
  },
};

const summaries = new Map<string, { bytes: string; summary: MetricsSummary }>();

/** A step's metrics as the runner reports them: series and summary by digest (summary kept for build()). */
export function metricsOf(samples: MetricSample[]): StepMetrics {
  const summary = summariseSamples(samples);
  const bytes = JSON.stringify(summary);
  const digest = sha256Bytes(bytes);
  summaries.set(digest, { bytes, summary });
  const series = samples.map((x) => `${JSON.stringify(x)}\n`).join('');
  const seriesDigest = sha256Bytes(series);
  return {
    samples: samples.length,
    series: {
      digest: seriesDigest,
      size: Buffer.byteLength(series),
      kind: 'file',
      uri: `s3://trainyard-artifacts/sha256/${seriesDigest.slice(7)}`,
    },
    summary: digest,
    names: summary.metrics.length,
    last: boundedLastValues(summary.metrics.map((m) => [m.name, m.last])),
  };
}

/** Every summary metricsOf() made, by digest: BuildExtra.metricSummaries. */
export const fixtureMetricSummaries = (): Record<string, MetricsSummary> =>
  Object.fromEntries([...summaries].map(([d, v]) => [d, v.summary]));

/** Puts the summaries metricsOf() made into a store, where the lineage activity reads them. */
export async function putFixtureMetrics(store: ArtifactStore): Promise<void> {
  for (const v of summaries.values()) await store.putBytes(v.bytes);
}

function step(name: string, line: number, extra: Partial<StepSpec>): StepSpec {
  return {
    name,
    image: 'python:3.12-slim',
    run: `python src/${name}.py`,
    env: {},
    inputs: {},
    outputs: [],
    needs: [],
    timeoutSeconds: 3600,
    retries: 0,
    cache: true,
    line,
    ...extra,
  };
}

export function pipeline(): Pipeline {
  const steps: Record<string, StepSpec> = {
    prepare: step('prepare', 12, {
      code: ['src/prepare.py'],
      inputs: {
        raw: { kind: 'uri', uri: 's3://datasets/mnist/raw.tar.gz' },
        labels: { kind: 'repo', path: 'data/labels.csv' },
      },
      outputs: ['dataset'],
    }),
    train_small: step('train_small', 20, {
      image: 'pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime',
      run: ['python', 'src/train.py', '--size', 'small'],
      machine: 'gpu',
      inputs: { dataset: { kind: 'step', step: 'prepare', output: 'dataset' } },
      outputs: ['model_small'],
      params: ['epochs', 'lr'],
    }),
    featurize: step('featurize', 28, {
      inputs: { dataset: { kind: 'step', step: 'prepare', output: 'dataset' } },
      outputs: ['features'],
      cacheVersion: '2',
    }),
    train_big: step('train_big', 35, {
      image: 'pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime',
      run: 'python src/train.py --size big',
      machine: 'gpu',
      env: { NOTE: 'use `--fast` mode | not "slow"' },
      inputs: { features: { kind: 'step', step: 'featurize', output: 'features' } },
      outputs: ['model_big'],
      retries: 1,
    }),
    evaluate: step('evaluate', 44, {
      inputs: {
        small: { kind: 'step', step: 'train_small', output: 'model_small' },
        big: { kind: 'step', step: 'train_big', output: 'model_big' },
      },
      needs: ['prepare'],
      outputs: ['scores'],
    }),
  };
  return {
    name: 'mnist',
    file: '.trainyard/mnist.yaml',
    digest: digestOf('mnist.yaml@2222'),
    on: { push: { branches: ['main'] }, comment: true },
    params: { epochs: { type: 'integer', default: 3 }, lr: { type: 'number', default: 0.001 } },
    machines: {
      gpu: { instance: ['g5.xlarge', 'g6.xlarge'], gpus: 1, spot: true, on_demand_fallback: true, disk_gb: 100 },
    },
    steps,
    order: ['prepare', 'train_small', 'featurize', 'train_big', 'evaluate'],
  };
}

export function runInput(runId: string, commit: string): RunInput {
  return {
    runId,
    pipeline: pipeline(),
    params: { epochs: 20, lr: 0.0003 },
    source: { kind: 'git', repoPath: '/srv/repos/mnist', commit, subdir: '' },
    trigger: {
      kind: 'comment',
      pr: 42,
      actor: 'alice',
      commentId: 9001,
      commentUrl: 'https://github.com/acme/mnist/pull/42#issuecomment-9001',
    },
    status: { kind: 'none' },
    options: {
      noCache: false,
      controlQueue: 'trainyard-control',
      statusIntervalMs: 2000,
      parallelism: 4,
      localHostQueue: 'host-local',
      historyEventLimit: 10_000,
      heartbeatTimeoutMs: 30_000,
    },
  };
}

const at = (base: string, plusSeconds: number): string => new Date(Date.parse(base) + plusSeconds * 1000).toISOString();
const T7 = '2025-02-27T09:00:00.000Z';
const T8 = '2025-03-01T10:00:00.000Z';

const src = (runId: string, commit: string, stepName: string, finishedAt: string): CacheSource => ({
  runId,
  commit,
  step: stepName,
  pipeline: 'mnist',
  finishedAt,
});

const localHost: HostRecord = { kind: 'local', queue: 'host-local' };

function prepareStatus(runId: string, commit: string, base: string): StepStatus {
  return {
    name: 'prepare',
    state: 'succeeded',
    startedAt: at(base, 1),
    finishedAt: at(base, 95),
    image: A.image.python,
    cache: { decision: 'miss', key: A.key('prepare', commit), reason: 'code changed: src/prepare.py' },
    inputs: {
      raw: { artifact: A.raw, origin: { kind: 'uri', uri: 's3://datasets/mnist/raw.tar.gz' } },
      labels: { artifact: A.labels, origin: { kind: 'repo', path: 'data/labels.csv', commit } },
    },
    host: localHost,
    outcome: {
      state: 'succeeded',
      outputs: { dataset: A.dataset },
      attempts: [
        {
          attempt: 1,
          host: 'host-local',
          startedAt: at(base, 2),
          finishedAt: at(base, 94),
          exitCode: 0,
          outcome: 'succeeded',
        },
      ],
      metrics: metricsOf([{ t: 90_000, values: { rows: 60_000 } }]),
      logDigest: A.log.prepare,
      producedBy: src(runId, commit, 'prepare', at(base, 95)),
    },
  };
}

/** run-0007: prepare and featurize ran (featurize on a spot GPU host), then the run was cancelled. */
export function earlierRun(): { input: RunInput; status: RunStatus } {
  const runId = 'run-0007';
  const featurizeEnd = at(T7, 700);
  const status: RunStatus = {
    runId,
    pipeline: 'mnist',
    state: 'cancelled',
    startedAt: T7,
    finishedAt: at(T7, 760),
    steps: [
      prepareStatus(runId, COMMIT_OLD, T7),
      {
        name: 'featurize',
        state: 'succeeded',
        startedAt: at(T7, 96),
        finishedAt: featurizeEnd,
        image: A.image.python,
        cache: { decision: 'miss', key: A.key('featurize', 'v2'), reason: 'no earlier result for this key' },
        inputs: { dataset: { artifact: A.dataset, origin: { kind: 'step', step: 'prepare', output: 'dataset' } } },
        host: {
          kind: 'ec2',
          queue: 'host-i-0aa',
          machineClass: 'gpu',
          instanceId: 'i-0aa',
          instanceType: 'g5.xlarge',
          market: 'spot',
          billedSeconds: 604,
          costUsd: 0.17,
        },
        outcome: {
          state: 'succeeded',
          outputs: { features: A.features },
          attempts: [
            {
              attempt: 1,
              host: 'host-i-0aa',
              startedAt: at(T7, 97),
              finishedAt: at(T7, 699),
              exitCode: 0,
              outcome: 'succeeded',
            },
          ],
          logDigest: A.log.featurize,
          producedBy: src(runId, COMMIT_OLD, 'featurize', featurizeEnd),
        },
      },
      { name: 'train_small', state: 'cancelled', message: 'run cancelled by alice' },
      { name: 'train_big', state: 'cancelled', message: 'run cancelled by alice' },
      { name: 'evaluate', state: 'cancelled', message: 'run cancelled by alice' },
    ],
  };
  return { input: runInput(runId, COMMIT_OLD), status };
}

export function currentRun(): { input: RunInput; status: RunStatus } {
  const runId = 'run-0008';
  const old = earlierRun().status.steps.find((s) => s.name === 'featurize')!;
  const status: RunStatus = {
    runId,
    pipeline: 'mnist',
    state: 'failed',
    startedAt: T8,
    finishedAt: at(T8, 1900),
    steps: [
      prepareStatus(runId, COMMIT_NEW, T8),
      {
        name: 'train_small',
        state: 'succeeded',
        startedAt: at(T8, 96),
        finishedAt: at(T8, 1296),
        image: A.image.torch,
        cache: {
          decision: 'miss',
          key: A.key('train_small', 'p'),
          reason: 'params changed: epochs 3 → 20, lr 0.001 → 0.0003',
        },
        inputs: { dataset: { artifact: A.dataset, origin: { kind: 'step', step: 'prepare', output: 'dataset' } } },
        host: {
          kind: 'ec2',
          queue: 'host-i-0bb',
          machineClass: 'gpu',
          instanceId: 'i-0bb',
          instanceType: 'g5.xlarge',
          market: 'spot',
          billedSeconds: 1210,
          costUsd: 0.42,
          gpu: { samples: 240, meanUtilisation: 0.87, maxMemoryMiB: 14_000, idleFraction: 0.04 },
        },
        outcome: {
          state: 'succeeded',
          outputs: { model_small: A.modelSmall },
          attempts: [
            {
              attempt: 1,
              host: 'host-i-0bb',
              startedAt: at(T8, 100),
              finishedAt: at(T8, 1290),
              exitCode: 0,
              outcome: 'succeeded',
            },
          ],
          metrics: metricsOf([
            { t: 60_000, values: { epoch: 1, loss: 0.92, acc: 0.71 } },
            { t: 300_000, values: { epoch: 5, loss: 0.51, acc: 0.86 } },
            { t: 600_000, values: { epoch: 10, loss: 0.33, acc: 0.92 } },
            { t: 900_000, values: { epoch: 15, loss: 0.27, acc: 0.94 } },
            { t: 1_180_000, values: { epoch: 20, loss: 0.2412, acc: 0.9531, phase: 'done' } },
          ]),
          logDigest: A.log.trainSmall,
          producedBy: src(runId, COMMIT_NEW, 'train_small', at(T8, 1296)),
        },
      },
      {
        name: 'featurize',
        state: 'cached',
        startedAt: at(T8, 96),
        finishedAt: at(T8, 97),
        cache: {
          decision: 'hit',
          key: A.key('featurize', 'v2'),
          reason: 'reused from run run-0007 (commit 1111111): prepare wrote identical data',
          source: old.outcome!.producedBy,
        },
        inputs: { dataset: { artifact: A.dataset, origin: { kind: 'step', step: 'prepare', output: 'dataset' } } },
        outcome: { ...old.outcome!, outputs: { ...old.outcome!.outputs } },
      },
      {
        name: 'train_big',
        state: 'failed',
        startedAt: at(T8, 98),
        finishedAt: at(T8, 1890),
        image: A.image.torch,
        message: 'python exited with code 1 (CUDA out of memory)',
        cache: { decision: 'miss', key: A.key('train_big', 'x'), reason: 'no earlier result for this key' },
        inputs: { features: { artifact: A.features, origin: { kind: 'step', step: 'featurize', output: 'features' } } },
        host: {
          kind: 'ec2',
          queue: 'host-i-0cc',
          machineClass: 'gpu',
          instanceId: 'i-0cc',
          instanceType: 'g6.xlarge',
          market: 'on-demand',
          billedSeconds: 1500,
          costUsd: 0.31,
          provisioning: [
            {
              instanceType: 'g5.xlarge',
              market: 'spot',
              outcome: 'capacity',
              message: 'InsufficientInstanceCapacity',
              at: at(T8, 99),
            },
            { instanceType: 'g6.xlarge', market: 'on-demand', outcome: 'launched', at: at(T8, 120) },
          ],
        },
        outcome: {
          state: 'failed',
          outputs: {},
          attempts: [
            {
              attempt: 1,
              host: 'host-i-0dd',
              startedAt: at(T8, 130),
              finishedAt: at(T8, 700),
              exitCode: null,
              outcome: 'host_lost',
              message: 'spot instance reclaimed',
            },
            {
              attempt: 2,
              host: 'host-i-0cc',
              startedAt: at(T8, 720),
              finishedAt: at(T8, 1880),
              exitCode: 1,
              outcome: 'failed',
              message: 'python exited with code 1',
              logDigest: A.log.trainBig,
            },
          ],
          metrics: metricsOf([{ t: 30_000, values: { epoch: 1, loss: 1.4 } }]),
          logDigest: A.log.trainBig,
          producedBy: src(runId, COMMIT_NEW, 'train_big', at(T8, 1890)),
          message: 'python exited with code 1 (CUDA out of memory)',
        },
      },
      { name: 'evaluate', state: 'skipped', message: 'not run: train_big failed' },
    ],
  };
  return { input: runInput(runId, COMMIT_NEW), status };
}

/** A generated chain of n steps, each with an output, metrics and a chart-worthy series. */
export function hugeRun(n: number): { input: RunInput; status: RunStatus } {
  const input = runInput('run-huge', COMMIT_NEW);
  const steps: Record<string, StepSpec> = {};
  const statuses: StepStatus[] = [];
  const order: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const name = `shard_${String(i).padStart(4, '0')}`;
    order.push(name);
    const prev = i > 0 ? order[i - 1]! : undefined;
    steps[name] = step(name, 10 + i, {
      inputs: prev ? { prev: { kind: 'step', step: prev, output: 'out' } } : {},
      outputs: ['out'],
      env: { SHARD: String(i) },
    });
    const failed = i === n - 7; // a failure deep in the list must still be shown when rows are cut
    if (i > n - 7) {
      statuses.push({ name, state: 'skipped', message: `not run: ${order[n - 7]} failed` });
      continue;
    }
    const out = art(`shard-${i}`, 1000 + i);
    statuses.push({
      name,
      state: failed ? 'failed' : 'succeeded',
      startedAt: at(T8, i),
      finishedAt: at(T8, i + 1),
      cache: { decision: 'miss', key: A.key(name, 'h'), reason: `input prev changed (shard ${i})` },
      message: failed ? 'exit code 3' : undefined,
      host: localHost,
      outcome: {
        state: failed ? 'failed' : 'succeeded',
        outputs: failed ? {} : { out },
        attempts: [
          {
            attempt: 1,
            host: 'host-local',
            startedAt: at(T8, i),
            finishedAt: at(T8, i + 1),
            exitCode: failed ? 3 : 0,
            outcome: failed ? 'failed' : 'succeeded',
          },
        ],
        metrics: metricsOf([1, 2, 3, 4].map((k) => ({ t: k * 100, values: { loss: 1 / k + i / 1e4, step: k } }))),
        producedBy: src('run-huge', COMMIT_NEW, name, at(T8, i + 1)),
      },
    });
  }
  input.pipeline = { ...input.pipeline, steps, order };
  return {
    input,
    status: {
      runId: 'run-huge',
      pipeline: 'mnist',
      state: 'failed',
      startedAt: T8,
      finishedAt: at(T8, n + 5),
      steps: statuses,
    },
  };
}
