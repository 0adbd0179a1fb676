// The glue of pipelineRun (workflows/pipeline.ts) around the pure scheduler: the real workflow
// code on the test run's Temporal dev server, with stub control activities (no containers, no
// store) that answer cache lookups and signal executions back as a step-execution workflow would.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlActivities } from '../../activities/engine.js';
import type { RecordedLineage } from '../../activities/lineage/activity.js';
import { withUpstreamHits } from '../../activities/prepare.js';
import { dataConverter } from '../../app/codec.js';
import { defaultRunOptions } from '../../app/engine.js';
import { workflowBundle } from '../../app/worker.js';
import { parsePipeline } from '../../pipeline/parse.js';
import {
  cancelSignal,
  statusQuery,
  stepFinishedSignal,
  type PrepareAnswer,
  type Prepared,
  type PreparedHit,
  type StartRequest,
} from '../../model/contracts.js';
import type { RunInput, RunStatus, StepOutcome } from '../../model/types.js';
import { temporalAddress } from '../setup/services.js';

const NOW = '2026-11-30T12:00:00.000Z';
const queue = `glue-${randomUUID().slice(0, 8)}`;
let client: Client;
let native: NativeConnection;
let worker: Worker;
let running: Promise<void>;
/** Step → what its stub execution does. */
const behaviour = new Map<string, 'succeed' | 'fail' | 'hang' | 'cached' | 'cancel-while-prepared'>();
const started: string[] = [];
/** The items of each `prepareSteps` call: a step, or `step<after` for a look-ahead item. */
const prepareCalls: string[][] = [];
/** Step → the cache key of its execution. */
const keys = new Map<string, string>();

const prepared = (step: string): Prepared => ({
  step,
  key: `sha256:${step}-${randomUUID()}`,
  useCache: true,
  parts: {} as Prepared['parts'],
  inputs: {},
  spec: { image: 'busybox' } as Prepared['spec'],
  decision: { decision: 'miss', key: 'sha256:k', reason: 'no earlier run' },
});

const stubs: ControlActivities = {
  async prepareSteps(req) {
    // The run is cancelled while its cache lookup is in flight (a newer run superseding it).
    if (req.items.some(({ step }) => behaviour.get(step) === 'cancel-while-prepared'))
      await client.workflow.getHandle(`glue-${req.runId}`).signal(cancelSignal);
    prepareCalls.push(req.items.map(({ step, after }) => (after ? `${step}<${after.join('+')}` : step)));
    // As activities/prepare.ts does: a look-ahead item only when the steps it waits for hit here.
    const hits = new Map<string, PreparedHit>();
    const answer: PrepareAnswer[] = [];
    for (const item of req.items) {
      const ready = item.after ? withUpstreamHits(item, hits) : item;
      if (!ready) continue;
      const { step } = ready;
      const p = { ...prepared(step), inputs: ready.upstream };
      if (behaviour.get(step) !== 'cached') {
        answer.push(p);
        continue;
      }
      const source = { runId: 'earlier', commit: 'c0', step, pipeline: 'p', finishedAt: NOW };
      const hit: PreparedHit = {
        step,
        key: p.key,
        inputs: p.inputs,
        image: p.spec.image,
        decision: { decision: 'hit', key: p.key, reason: 'same inputs', source },
        hit: {
          key: p.key,
          outputs: { out: { digest: 'sha256:0', size: 0, kind: 'file', uri: 'file:///0' } },
          attempts: [],
          source,
        },
      };
      hits.set(step, hit);
      answer.push(hit);
    }
    return answer;
  },
  async startSteps(req: StartRequest) {
    for (const exec of req.execs) {
      const step = exec.producedBy.step;
      started.push(step);
      keys.set(step, exec.key);
      const b = behaviour.get(step);
      if (b === 'hang') continue;
      const outcome: StepOutcome = {
        state: b === 'fail' ? 'failed' : 'succeeded',
        outputs: { out: { digest: 'sha256:1', size: 1, kind: 'file', uri: 'file:///1' } },
        attempts: [
          {
            attempt: 1,
            host: 'stub',
            startedAt: NOW,
            finishedAt: NOW,
            exitCode: b === 'fail' ? 1 : 0,
            outcome: b === 'fail' ? 'failed' : 'succeeded',
          },
        ],
        producedBy: { ...exec.producedBy, finishedAt: NOW },
        ...(b === 'fail' ? { message: 'exit code 1' } : {}),
      };
      await client.workflow.getHandle(req.runWorkflowId).signal(stepFinishedSignal, { key: exec.key, outcome });
    }
  },
  async probeSteps() {
    return [];
  },
  async lookupCache() {
    return undefined;
  },
  async recordCache() {},
  async recordRunLineage(): Promise<RecordedLineage> {
    return { lineageKey: 'lineage/x', reportKey: 'report/x', reportMarkdown: '', conclusion: 'succeeded', title: '' };
  },
  async publishStatus() {},
  async claimConcurrency() {},
  async emitOpenLineage() {
    return { enabled: false };
  },
};

function input(yaml: string): RunInput {
  const { pipeline, errors } = parsePipeline(`name: p\nsteps:\n${yaml}`, '.trainyard/p.yaml');
  expect(errors).toEqual([]);
  return {
    runId: randomUUID(),
    pipeline: pipeline!,
    params: {},
    source: { kind: 'git', repoPath: '/nonexistent', commit: 'c1', subdir: '' },
    trigger: { kind: 'cli', user: 'test' },
    status: { kind: 'none' },
    options: defaultRunOptions({ controlQueue: queue, localHostQueue: `${queue}-host` }),
  };
}

beforeAll(async () => {
  client = new Client({ connection: await Connection.connect({ address: temporalAddress() }), dataConverter });
  native = await NativeConnection.connect({ address: temporalAddress() });
  worker = await Worker.create({
    connection: native,
    taskQueue: queue,
    workflowBundle: await workflowBundle(),
    activities: stubs,
    dataConverter,
  });
  running = worker.run();
}, 180_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await native?.close();
  await client?.connection.close();
});

describe('pipelineRun with stub activities', () => {
  it('runs ready steps, skips what follows a failure, takes cache hits without starting them, and concludes failed', async () => {
    behaviour.set('a', 'succeed').set('b', 'fail').set('c', 'succeed').set('d', 'cached').set('e', 'succeed');
    started.length = 0;
    const run = input(`  a: { image: busybox, run: x }
  b: { image: busybox, run: x, needs: [a] }
  c: { image: busybox, run: x, needs: [b] }
  d: { image: busybox, run: x }
  e: { image: busybox, run: x, needs: [d] }
`);
    const status: RunStatus = await client.workflow.execute('pipelineRun', {
      taskQueue: queue,
      workflowId: `glue-${run.runId}`,
      args: [run],
    });
    expect(Object.fromEntries(status.steps.map((s) => [s.name, s.state]))).toEqual({
      a: 'succeeded',
      b: 'failed',
      c: 'skipped',
      d: 'cached',
      e: 'succeeded',
    });
    expect(status.state).toBe('failed');
    expect(status.steps.find((s) => s.name === 'c')!.message).toBe('skipped: b failed');
    expect(status.lineageKey).toBe('lineage/x');
    expect(started.sort()).toEqual(['a', 'b', 'e']);
  }, 120_000);

  it('looks a cached chain up in one prepareSteps call, and a step after a miss once that step has run', async () => {
    behaviour.set('c1', 'cached').set('c2', 'cached').set('c3', 'succeed').set('c4', 'cached').set('c5', 'cached');
    started.length = 0;
    prepareCalls.length = 0;
    const run = input(`  c1: { image: busybox, run: x, outputs: [out] }
  c2: { image: busybox, run: x, outputs: [out], inputs: { i: steps.c1.outputs.out } }
  c3: { image: busybox, run: x, outputs: [out], inputs: { i: steps.c2.outputs.out } }
  c4: { image: busybox, run: x, outputs: [out], inputs: { i: steps.c3.outputs.out } }
  c5: { image: busybox, run: x, needs: [c4] }
`);
    const status: RunStatus = await client.workflow.execute('pipelineRun', {
      taskQueue: queue,
      workflowId: `glue-${run.runId}`,
      args: [run],
    });
    expect(Object.fromEntries(status.steps.map((s) => [s.name, s.state]))).toEqual({
      c1: 'cached',
      c2: 'cached',
      c3: 'succeeded',
      c4: 'cached',
      c5: 'cached',
    });
    // c3 missed, so c4 waits for it to run; c4 and c5 then take one more call.
    expect(prepareCalls).toEqual([
      ['c1', 'c2<c1', 'c3<c2', 'c4<c3', 'c5<c4'],
      ['c4', 'c5<c4'],
    ]);
    expect(started).toEqual(['c3']);
    // Inputs from a look-ahead hit's outputs and from an executed step's outputs.
    const inputsOf = (n: string) => status.steps.find((s) => s.name === n)!.inputs;
    expect(inputsOf('c2')!.i!.artifact.digest).toBe('sha256:0');
    expect(inputsOf('c3')!.i!.artifact.digest).toBe('sha256:0');
    expect(inputsOf('c4')!.i!.artifact.digest).toBe('sha256:1');
  }, 120_000);

  it('after a call that found nothing cached, prepares without look-ahead (a run that executes sends none it cannot use)', async () => {
    behaviour.set('m1', 'succeed').set('m2', 'succeed').set('m3', 'succeed');
    prepareCalls.length = 0;
    const run = input(`  m1: { image: busybox, run: x }
  m2: { image: busybox, run: x, needs: [m1] }
  m3: { image: busybox, run: x, needs: [m2] }
`);
    const status: RunStatus = await client.workflow.execute('pipelineRun', {
      taskQueue: queue,
      workflowId: `glue-${run.runId}`,
      args: [run],
    });
    expect(status.state).toBe('succeeded');
    expect(prepareCalls).toEqual([['m1', 'm2<m1', 'm3<m2'], ['m2'], ['m3']]);
  }, 120_000);

  it('a cancel while a step runs cancels what is left and concludes cancelled', async () => {
    behaviour.set('slow', 'hang').set('after', 'succeed');
    const run = input(`  slow: { image: busybox, run: x }
  after: { image: busybox, run: x, needs: [slow] }
`);
    const handle = await client.workflow.start('pipelineRun', {
      taskQueue: queue,
      workflowId: `glue-${run.runId}`,
      args: [run],
    });
    // The run is waiting on `slow` once its status query says so (an event, not a sleep).
    for (let i = 0; ; i++) {
      const s: RunStatus = await handle.query(statusQuery);
      if (s.steps.find((x) => x.name === 'slow')?.state === 'running') break;
      if (i > 600) throw new Error('slow never started');
      await new Promise((r) => setTimeout(r, 100));
    }
    await handle.signal(cancelSignal);
    // The run detaches from its execution, which answers once its container is gone: as here.
    const key = keys.get('slow')!;
    const attempts = [
      { attempt: 1, host: 'stub', startedAt: NOW, finishedAt: NOW, exitCode: null, outcome: 'cancelled' as const },
    ];
    await handle.signal(stepFinishedSignal, {
      key,
      outcome: {
        state: 'cancelled',
        outputs: {},
        attempts,
        producedBy: { runId: run.runId, commit: 'c1', step: 'slow', pipeline: 'p', finishedAt: NOW },
        message: 'cancelled',
      },
    });
    const status: RunStatus = await handle.result();
    expect(status.state).toBe('cancelled');
    expect(Object.fromEntries(status.steps.map((s) => [s.name, s.state]))).toEqual({
      slow: 'cancelled',
      after: 'cancelled',
    });
  }, 300_000);

  it('a cancel while the cache is looked up starts no execution', async () => {
    behaviour.set('first', 'cancel-while-prepared');
    const run = input(`  first: { image: busybox, run: x }
`);
    const handle = await client.workflow.start('pipelineRun', {
      taskQueue: queue,
      workflowId: `glue-${run.runId}`,
      args: [run],
    });
    const status: RunStatus = await handle.result();
    expect([status.state, status.steps[0]!.state]).toEqual(['cancelled', 'cancelled']);
    expect(started).not.toContain('first');
  }, 300_000);
});
