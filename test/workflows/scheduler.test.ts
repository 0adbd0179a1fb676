// Table tests of the pure scheduler (workflows/scheduler.ts): readiness, skip propagation,
// finished executions, host-loss retries, cancellation and the run's conclusion — without
// Temporal, containers or a store.
import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../pipeline/parse.js';
import type { Pipeline } from '../../pipeline/types.js';
import type { HostRecord } from '../../model/hosttypes.js';
import {
  applyCacheHit,
  cancelUnfinished,
  checkConclusion,
  dependenciesOf,
  failWithheld,
  initialSteps,
  needsHostPool,
  readySteps,
  runOutcome,
  settleStep,
  skipBlocked,
  upstreamOf,
  type StepRecords,
} from '../../workflows/scheduler.js';
import type { AttemptRecord, StepOutcome, StepStatus } from '../../model/types.js';

const NOW = '2026-11-30T12:00:00.000Z';

/** prepare → train (reads prepare's output) → evaluate (needs train); lint stands alone; publish needs evaluate and lint. */
function pipeline(extra = ''): Pipeline {
  const { pipeline: p, errors } = parsePipeline(
    `name: p
machines:
  gpu: { instance: [g5.xlarge], gpus: 1 }
steps:
  prepare: { image: busybox, run: x, outputs: [data] }
  train: { image: busybox, run: x, machine: gpu, retries: 2, inputs: { data: steps.prepare.outputs.data }, outputs: [model] }
  evaluate: { image: busybox, run: x, needs: [train] }
  lint: { image: busybox, run: x${extra} }
  publish: { image: busybox, run: x, needs: [evaluate, lint] }
`,
    '.trainyard/p.yaml',
  );
  expect(errors).toEqual([]);
  return p!;
}

const states = (steps: StepRecords) => Object.fromEntries(Object.entries(steps).map(([n, s]) => [n, s.state]));
const with_ = (p: Pipeline, set: Record<string, StepStatus['state']>): StepRecords => {
  const steps = initialSteps(p);
  for (const [n, state] of Object.entries(set)) steps[n]!.state = state;
  return steps;
};
const artifact = (d: string) => ({
  digest: `sha256:${d.repeat(64).slice(0, 64)}`,
  size: 1,
  kind: 'file' as const,
  uri: `file:///s/${d}`,
});
const attempt = (n: number, outcome: AttemptRecord['outcome']): AttemptRecord => ({
  attempt: n,
  host: 'h',
  startedAt: NOW,
  finishedAt: NOW,
  exitCode: outcome === 'succeeded' ? 0 : null,
  outcome,
});
const outcome = (state: StepOutcome['state'], attempts: AttemptRecord[], runId = 'run-1'): StepOutcome => ({
  state,
  outputs: { model: artifact('b') },
  attempts,
  producedBy: { runId, commit: 'c', step: 'train', pipeline: 'p', finishedAt: NOW },
});

describe('readiness', () => {
  it.each([
    ['nothing finished', {}, ['prepare', 'lint']],
    ['prepare succeeded', { prepare: 'succeeded' }, ['train', 'lint']],
    ['prepare cached', { prepare: 'cached' }, ['train', 'lint']],
    ['prepare running', { prepare: 'running' }, ['lint']],
    ['prepare failed', { prepare: 'failed' }, ['lint']],
    [
      'all but publish done',
      { prepare: 'cached', train: 'succeeded', evaluate: 'succeeded', lint: 'cached' },
      ['publish'],
    ],
  ] as const)('%s → ready: %j', (_, set, ready) => {
    const p = pipeline();
    expect(readySteps(p, with_(p, set))).toEqual(ready);
  });

  it('a step depends on its needs and on the steps whose outputs it reads, once each', () => {
    const p = pipeline();
    expect(dependenciesOf(p, 'train')).toEqual(['prepare']);
    expect(dependenciesOf(p, 'publish')).toEqual(['evaluate', 'lint']);
  });

  it('an EC2 machine needs the host pool', () => {
    expect(needsHostPool(pipeline())).toBe(true);
  });
});

describe('skip propagation', () => {
  it.each([
    [
      'prepare failed',
      { prepare: 'failed' },
      { train: 'skipped', evaluate: 'skipped', publish: 'skipped', lint: 'pending' },
    ],
    [
      'train cancelled',
      { prepare: 'succeeded', train: 'cancelled' },
      { evaluate: 'skipped', publish: 'skipped', lint: 'pending' },
    ],
    ['lint failed', { lint: 'failed' }, { prepare: 'pending', train: 'pending', publish: 'skipped' }],
  ] as const)('%s', (_, set, expected) => {
    const p = pipeline();
    const steps = with_(p, set);
    expect(skipBlocked(p, steps)).toBe(true);
    expect(states(steps)).toMatchObject(expected);
  });

  it('names the dependency that caused the skip, and changes nothing when nothing failed', () => {
    const p = pipeline();
    const steps = with_(p, { prepare: 'failed' });
    skipBlocked(p, steps);
    expect(steps.train!.message).toBe('skipped: prepare failed');
    expect(steps.evaluate!.message).toBe('skipped: train skipped');
    const fine = with_(p, { prepare: 'succeeded' });
    expect(skipBlocked(p, fine)).toBe(false);
  });
});

describe('settling a finished execution', () => {
  it('a success marks the step succeeded with its outcome, host and time', () => {
    const st: StepStatus = { name: 'train', state: 'running' };
    const host: HostRecord = { kind: 'local', queue: 'q' };
    const r = settleStep(st, {
      runId: 'run-1',
      outcome: outcome('succeeded', [attempt(1, 'succeeded')]),
      host,
      earlierAttempts: [],
      attemptOffset: 0,
      retries: 2,
      mayRetryOnNewHost: false,
      now: NOW,
    });
    expect(r).toEqual({ kind: 'done' });
    expect(st).toMatchObject({
      state: 'succeeded',
      finishedAt: NOW,
      host,
      outcome: { outputs: { model: artifact('b') } },
    });
  });

  it('an execution of another run is recorded as joined', () => {
    const st: StepStatus = {
      name: 'train',
      state: 'running',
      cache: { decision: 'miss', key: 'sha256:k', reason: 'no earlier run' },
    };
    settleStep(st, {
      runId: 'run-1',
      outcome: outcome('succeeded', [attempt(1, 'succeeded')], 'run-0'),
      earlierAttempts: [],
      attemptOffset: 0,
      retries: 0,
      mayRetryOnNewHost: false,
      now: NOW,
    });
    expect(st.cache).toMatchObject({
      decision: 'joined',
      reason: 'no earlier run; executed once for this run and run run-0',
      source: { runId: 'run-0' },
    });
  });

  it.each([
    // result, attempts used before, attempts of this execution, retries, may retry
    ['first attempt lost, retries left', 'retry', 0, 1, 2, true],
    ['third attempt lost, none left', 'done', 2, 1, 2, true],
    ['lost, but the run is being cancelled', 'done', 0, 1, 2, false],
    ['lost, no retries', 'done', 0, 1, 0, true],
  ] as const)('host lost: %s → %s', (_, kind, offset, n, retries, may) => {
    const st: StepStatus = { name: 'train', state: 'running' };
    const attempts = Array.from({ length: n }, (__, i) => attempt(offset + i + 1, 'host_lost'));
    const r = settleStep(st, {
      runId: 'run-1',
      outcome: outcome('failed', attempts),
      host: { kind: 'local', queue: 'q', lostReason: 'spot interruption' } as HostRecord,
      earlierAttempts: [],
      attemptOffset: offset,
      retries,
      mayRetryOnNewHost: may,
      now: NOW,
    });
    expect(r.kind).toBe(kind);
    if (r.kind === 'retry') {
      expect(st.state).toBe('pending');
      expect(r.attemptOffset).toBe(offset + n);
      expect(r.attempts.at(-1)!.message).toBe('host lost: spot interruption');
    } else {
      expect(st.state).toBe('failed');
    }
  });

  it('earlier attempts (lost hosts) are kept in the final outcome', () => {
    const st: StepStatus = { name: 'train', state: 'running' };
    settleStep(st, {
      runId: 'run-1',
      outcome: outcome('succeeded', [attempt(2, 'succeeded')]),
      earlierAttempts: [attempt(1, 'host_lost')],
      attemptOffset: 1,
      retries: 2,
      mayRetryOnNewHost: true,
      now: NOW,
    });
    expect(st.outcome!.attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
  });

  it('a cancelled execution cancels the step with its message', () => {
    const st: StepStatus = { name: 'train', state: 'running' };
    settleStep(st, {
      runId: 'run-1',
      outcome: { ...outcome('cancelled', [attempt(1, 'cancelled')]), message: 'cancelled by the user' },
      earlierAttempts: [],
      attemptOffset: 0,
      retries: 0,
      mayRetryOnNewHost: false,
      now: NOW,
    });
    expect(st).toMatchObject({ state: 'cancelled', message: 'cancelled by the user' });
  });
});

describe('cache hits, inputs and withheld secrets', () => {
  it('a cache hit makes the step cached with the hit outputs, and downstream steps read them', () => {
    const p = pipeline();
    const steps = initialSteps(p);
    const hit = {
      key: 'sha256:k',
      outputs: { data: artifact('a') },
      attempts: [attempt(1, 'succeeded')],
      source: { runId: 'run-0', commit: 'c', step: 'prepare', pipeline: 'p', finishedAt: NOW },
      parts: {} as never,
    };
    applyCacheHit(
      steps.prepare!,
      {
        step: 'prepare',
        key: 'sha256:k',
        useCache: true,
        parts: {} as never,
        inputs: {},
        spec: { image: 'busybox' } as never,
        decision: { decision: 'hit', key: 'sha256:k', reason: 'same inputs' },
        hit,
      },
      NOW,
    );
    expect(steps.prepare).toMatchObject({
      state: 'cached',
      finishedAt: NOW,
      image: 'busybox',
      outcome: { state: 'succeeded', producedBy: { runId: 'run-0' } },
    });
    expect(readySteps(p, steps)).toEqual(['train', 'lint']);
    expect(upstreamOf(p, steps, 'train')).toEqual({
      data: { artifact: artifact('a'), origin: { kind: 'step', step: 'prepare', output: 'data' } },
    });
  });

  it('a missing upstream output is an error naming the step and output', () => {
    const p = pipeline();
    const steps = with_(p, { prepare: 'succeeded' });
    expect(() => upstreamOf(p, steps, 'train')).toThrow('step prepare finished without its output data');
  });

  it('steps with secrets fail before their cache lookup when the run may not have them', () => {
    const p = pipeline(', secrets: [HF_TOKEN]');
    const steps = initialSteps(p);
    expect(failWithheld(p, steps, ['prepare', 'lint'], undefined, NOW)).toEqual([]);
    expect(failWithheld(p, steps, ['prepare', 'lint'], 'the pull request comes from a fork', NOW)).toEqual(['lint']);
    expect(steps.lint).toMatchObject({
      state: 'failed',
      message: 'not started: it needs secrets (HF_TOKEN), and the pull request comes from a fork',
    });
    expect(steps.prepare!.state).toBe('pending');
  });
});

describe('the end of a run', () => {
  it.each([
    [
      'all succeeded or cached',
      { prepare: 'cached', train: 'succeeded', evaluate: 'succeeded', lint: 'succeeded', publish: 'succeeded' },
      false,
      'succeeded',
      'success',
    ],
    [
      'one failed',
      { prepare: 'succeeded', train: 'failed', evaluate: 'skipped', lint: 'succeeded', publish: 'skipped' },
      false,
      'failed',
      'failure',
    ],
    [
      'one never finished',
      { prepare: 'succeeded', train: 'succeeded', evaluate: 'succeeded', lint: 'succeeded', publish: 'pending' },
      false,
      'failed',
      'failure',
    ],
    ['cancelled', { prepare: 'succeeded' }, true, 'cancelled', 'cancelled'],
  ] as const)('%s → %s, check %s', (_, set, cancelled, state, conclusion) => {
    const p = pipeline();
    const steps = with_(p, set);
    expect(runOutcome(p, steps, cancelled)).toBe(state);
    expect(checkConclusion(p, steps, runOutcome(p, steps, cancelled))).toBe(conclusion);
  });

  it('a failed step whose last attempt timed out concludes timed_out', () => {
    const p = pipeline();
    const steps = with_(p, { prepare: 'failed' });
    steps.prepare!.outcome = outcome('failed', [attempt(1, 'timed_out')]);
    expect(checkConclusion(p, steps, 'failed')).toBe('timed_out');
  });

  it('cancelling leaves final steps alone and says who superseded the run', () => {
    const p = pipeline();
    const steps = with_(p, { prepare: 'succeeded', train: 'running' });
    cancelUnfinished(p, steps, { sha: '0123456789abcdef0123', runId: 'run-2' } as never);
    expect(states(steps)).toEqual({
      prepare: 'succeeded',
      train: 'cancelled',
      evaluate: 'cancelled',
      lint: 'cancelled',
      publish: 'cancelled',
    });
    expect(steps.train!.message).toBe('superseded by 0123456789ab (run run-2)');
    const plain = with_(p, {});
    cancelUnfinished(p, plain, undefined);
    expect(plain.lint!.message).toBe('run cancelled');
  });
});
