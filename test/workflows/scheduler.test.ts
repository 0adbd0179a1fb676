// Table tests of the pure scheduler (workflows/scheduler.ts and workflows/runstate.ts):
// readiness, skip propagation, finished executions, host-loss retries, cancellation, what to
// prepare and start next, cache joins within a run, host release, probes, publication,
// continue-as-new and the run's conclusion — without Temporal, containers or a store.
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
import {
  acquisitionEnded,
  acquisitionFailed,
  applyPrepared,
  carryOf,
  detachAnswered,
  detachHost,
  finalReport,
  initialRunState,
  lookaheadItems,
  mayContinueAsNew,
  planPreparation,
  planStarts,
  prepareItems,
  probeKeys,
  publishDue,
  requestCancel,
  runIsDone,
  runSnapshot,
  settleWaiting,
  takeStartable,
  takeWaiting,
  wakeAfterMs,
  type RunState,
} from '../../workflows/runstate.js';
import type { Prepared, PreparedHit, StepFinished } from '../../model/contracts.js';
import type { RecordedLineage } from '../../activities/lineage/activity.js';
import type { AttemptRecord, RunInput, StepOutcome, StepStatus } from '../../model/types.js';

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
    };
    applyCacheHit(
      steps.prepare!,
      {
        step: 'prepare',
        key: 'sha256:k',
        inputs: {},
        image: 'busybox',
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

  it('a step refused by prepareSteps fails alone, with its own message; the others of the call go on', () => {
    const p = pipeline();
    const s = initialRunState(p, undefined, 0, NOW);
    applyPrepared(
      s,
      [
        { step: 'prepare', invalid: 'input raw of step prepare: data/missing.csv does not exist at this commit' },
        { ...prep('lint') },
      ],
      NOW,
    );
    expect(s.steps.prepare).toMatchObject({
      state: 'failed',
      message: 'could not prepare the step: input raw of step prepare: data/missing.csv does not exist at this commit',
    });
    expect(s.steps.lint!.state).toBe('pending');
    expect([...s.prepared.keys()]).toEqual(['lint']);
  });

  it('a hit answered before answers were slimmed (the whole spec, the parts) records the same step', () => {
    const p = pipeline();
    const steps = initialSteps(p);
    const source = { runId: 'run-0', commit: 'c', step: 'prepare', pipeline: 'p', finishedAt: NOW };
    const recorded = {
      step: 'prepare',
      key: 'sha256:k',
      useCache: true,
      parts: {},
      inputs: {},
      spec: { image: 'busybox:1.36', command: ['x'] },
      decision: { decision: 'hit' as const, key: 'sha256:k', reason: 'same inputs' },
      hit: { key: 'sha256:k', outputs: { data: artifact('a') }, attempts: [], source, parts: {} },
    };
    applyCacheHit(steps.prepare!, recorded, NOW);
    expect(steps.prepare).toMatchObject({ state: 'cached', image: 'busybox:1.36', outcome: { producedBy: source } });
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

/** A run of: local `prep` → `fit` on an EC2 GPU machine → `score` on a Kubernetes machine; `lint` (local) and `etl` (EC2, no GPU) alone. */
function runInput(over: Partial<RunInput> = {}, parallelism = 4): RunInput {
  const { pipeline: p, errors } = parsePipeline(
    `name: r
machines:
  gpu: { instance: [g5.xlarge], gpus: 1 }
  kube: { kubernetes: a100, gpus: 1 }
  cpu: { instance: [c5.large] }
steps:
  prep: { image: busybox, run: x, outputs: [data] }
  fit: { image: busybox, run: x, machine: gpu, retries: 3, inputs: { data: steps.prep.outputs.data } }
  score: { image: busybox, run: x, machine: kube, retries: 1, needs: [fit] }
  lint: { image: busybox, run: x }
  etl: { image: busybox, run: x, machine: cpu }
`,
    '.trainyard/r.yaml',
  );
  expect(errors).toEqual([]);
  return {
    runId: 'run-1',
    pipeline: p!,
    params: {},
    source: { kind: 'git', repoPath: '/r', commit: 'c1', subdir: '' },
    trigger: { kind: 'cli', user: 'u' },
    status: { kind: 'none' },
    options: {
      noCache: false,
      controlQueue: 'control',
      statusIntervalMs: 10_000,
      parallelism,
      localHostQueue: 'local-q',
      historyEventLimit: 1000,
      heartbeatTimeoutMs: 30_000,
    },
    ...over,
  };
}
const stateOf = (input: RunInput): RunState => initialRunState(input.pipeline, undefined, 0, NOW);
const prep = (step: string, key = `sha256:${step}`): Prepared => ({
  step,
  key,
  useCache: true,
  parts: {} as Prepared['parts'],
  inputs: {},
  spec: { image: 'busybox' } as Prepared['spec'],
  decision: { decision: 'miss', key, reason: 'no earlier run' },
});
/** A cache hit as prepareSteps answers it (no key parts, no spec). */
const hitOf = (step: string, key = `sha256:${step}`): PreparedHit => ({
  step,
  key,
  inputs: {},
  image: 'busybox',
  decision: { decision: 'hit', key, reason: 'same inputs' },
  hit: {
    key,
    outputs: { data: artifact('a') },
    attempts: [],
    source: { runId: 'run-0', commit: 'c0', step, pipeline: 'r', finishedAt: NOW },
  },
});
const finished = (key: string, o: StepOutcome): StepFinished => ({ key, outcome: o });

describe('what the run prepares and starts next', () => {
  it.each([
    // ready, running, parallelism, batch, already prepared → to prepare, slots
    ['free slots', ['prep', 'lint'], 0, 4, 200, [], ['prep', 'lint'], 4],
    ['prepared already', ['prep', 'lint'], 0, 4, 200, ['prep'], ['lint'], 4],
    ['batch limit', ['prep', 'lint'], 0, 4, 1, [], ['prep'], 4],
    ['no free slot', ['prep', 'lint'], 2, 2, 200, [], [], 0],
    ['nothing ready', [], 0, 4, 200, [], [], 4],
  ] as const)('%s', (_, ready, running, parallelism, batch, done, toPrepare, slots) => {
    const s = stateOf(runInput());
    for (const n of done) s.prepared.set(n, prep(n));
    const plan = planPreparation(s, [...ready], running, parallelism, batch);
    expect(plan.toPrepare).toEqual(toPrepare);
    expect(plan.slots).toBe(slots);
  });

  it.each([
    // case, to prepare, budget, cached already, prepared already, withheld secrets on → look-ahead items
    ['a chain after what is prepared', ['prep', 'lint', 'etl'], 200, [], [], false, ['fit<prep', 'score<fit']],
    ['at most the budget', ['prep', 'lint'], 1, [], [], false, ['fit<prep']],
    ['a ready step is not look-ahead', ['lint'], 200, ['prep'], [], false, []],
    ['after a cached step', ['fit'], 200, ['prep'], [], false, ['score<fit']],
    ['not a step prepared already, nor what follows it', ['prep'], 200, [], ['fit'], false, []],
    ['not a step whose secrets are withheld, nor what follows it', ['prep'], 200, [], [], true, []],
    ['secrets not withheld', ['prep'], 200, [], [], false, ['fit<prep', 'score<fit']],
  ] as const)('look-ahead: %s', (_, toPrepare, budget, cached, preparedAlready, withheld, expected) => {
    const input = runInput();
    input.pipeline.steps.fit!.secrets = ['TOKEN'];
    const s = stateOf(input);
    applyPrepared(s, [...cached.map((n) => hitOf(n)), ...preparedAlready.map((n) => prep(n))], NOW);
    const items = lookaheadItems(input.pipeline, s, [...toPrepare], budget, withheld);
    expect(items.map((i) => `${i.step}<${i.after!.join('+')}`)).toEqual(expected);
  });

  it('a look-ahead item carries the inputs of finished steps and leaves those of the steps it waits for to prepareSteps', () => {
    const { pipeline: p, errors } = parsePipeline(
      `name: la
steps:
  a: { image: busybox, run: x, outputs: [o] }
  b: { image: busybox, run: x, outputs: [o] }
  c: { image: busybox, run: x, outputs: [o], inputs: { fromA: steps.a.outputs.o, fromB: steps.b.outputs.o } }
`,
      '.trainyard/la.yaml',
    );
    expect(errors).toEqual([]);
    const s = initialRunState(p!, undefined, 0, NOW);
    applyPrepared(s, [{ ...hitOf('a'), hit: { ...hitOf('a').hit, outputs: { o: artifact('a') } } }], NOW);
    const [c] = lookaheadItems(p!, s, ['b'], 200, false);
    expect(c).toMatchObject({ step: 'c', after: ['b'], upstream: { fromA: { artifact: artifact('a') } } });
    expect(Object.keys(c!.upstream)).toEqual(['fromA']);
    // A finished upstream without the output c reads: c is left to the run (upstreamOf fails it).
    s.steps.a!.outcome!.outputs = {};
    expect(lookaheadItems(p!, s, ['b'], 200, false)).toEqual([]);
  });

  it('a cache lookup carries the upstream artifacts and whether the machine has GPUs', () => {
    const input = runInput();
    const s = stateOf(input);
    applyPrepared(s, [hitOf('prep', 'sha256:p')], NOW);
    const [item] = prepareItems(input.pipeline, s.steps, ['fit']);
    expect(item).toMatchObject({
      step: 'fit',
      gpus: true,
      upstream: { data: { artifact: artifact('a'), origin: { kind: 'step', step: 'prep', output: 'data' } } },
    });
    expect(prepareItems(input.pipeline, s.steps, ['lint', 'etl']).map((i) => i.gpus)).toEqual([false, false]);
  });

  it('the next preparation looks ahead only after one that found a cached result', () => {
    const s = stateOf(runInput());
    expect(s.lookahead).toBe(true);
    applyPrepared(s, [prep('prep'), prep('lint')], NOW);
    expect(s.lookahead).toBe(false);
    applyPrepared(s, [prep('etl'), hitOf('fit', 'sha256:f')], NOW);
    expect(s.lookahead).toBe(true);
  });

  it('a hit makes its step cached; a miss waits in prepared for a slot', () => {
    const s = stateOf(runInput());
    s.dirty = false;
    applyPrepared(s, [hitOf('prep', 'sha256:p'), prep('lint')], NOW);
    expect(s.steps.prep!.state).toBe('cached');
    expect(s.dirty).toBe(true);
    expect([...s.prepared.keys()]).toEqual(['lint']);
    expect(s.steps.lint!.state).toBe('pending');
  });

  it('starts only prepared pending steps, as many as slots allow, and takes them out of prepared', () => {
    const input = runInput();
    const s = stateOf(input);
    for (const n of ['prep', 'lint']) s.prepared.set(n, prep(n));
    const one = takeStartable(s, planPreparation(s, ['prep', 'lint'], 3, 4, 200));
    expect(one.map((p) => p.step)).toEqual(['prep']);
    expect([...s.prepared.keys()]).toEqual(['lint']);
    s.steps.lint!.state = 'cached';
    expect(takeStartable(s, planPreparation(s, ['lint'], 0, 4, 200))).toEqual([]);
  });

  it.each([
    ['nothing running, ready or finished', 0, [], 0, true],
    ['a step running', 1, [], 0, false],
    ['a step ready', 0, ['lint'], 0, false],
    ['a finished execution to apply', 0, [], 1, false],
  ] as const)('done when %s: %s', (_, running, ready, fin, done) => {
    const input = runInput();
    const s = stateOf(input);
    for (let i = 0; i < fin; i++) s.finished.push(finished('k', outcome('succeeded', [])));
    expect(runIsDone(s, planPreparation(s, [...ready], running, 4, 200))).toBe(done);
  });
});

describe('starting prepared steps', () => {
  it('a local step starts at once on the local queue, with 4 same-host retries', () => {
    const input = runInput();
    const s = stateOf(input);
    const plan = planStarts(input, s, [prep('prep')], true, NOW);
    expect(plan.acquire).toEqual([]);
    expect(plan.execs).toHaveLength(1);
    expect(plan.execs[0]).toMatchObject({
      key: 'sha256:prep',
      hostQueue: 'local-q',
      retries: 0,
      sameHostRetries: 4,
      attemptOffset: 0,
      producedBy: { runId: 'run-1', commit: 'c1', step: 'prep', pipeline: 'r' },
    });
    expect(s.steps.prep).toMatchObject({ state: 'running', startedAt: NOW, host: { kind: 'local' } });
    expect(s.waiting).toEqual({ 'sha256:prep': ['prep'] });
  });

  it('a Kubernetes step runs as Jobs: its whole retries budget, 2 same-host retries, no host to wait for', () => {
    const input = runInput();
    const s = stateOf(input);
    s.attemptOffset.score = 1;
    const plan = planStarts(input, s, [prep('score')], true, NOW);
    expect(plan.execs[0]).toMatchObject({
      hostQueue: 'trainyard-kubernetes',
      host: { kind: 'kubernetes', machineClass: 'kube', kubernetesClass: 'a100', gpus: 1 },
      retries: 1,
      sameHostRetries: 2,
      attemptOffset: 0,
    });
  });

  it('an EC2 step waits for a pool host, counted as an acquisition and not started', () => {
    const input = runInput();
    const s = stateOf(input);
    const plan = planStarts(input, s, [prep('fit')], true, NOW);
    expect(plan.execs).toEqual([]);
    expect(plan.acquire.map((p) => p.step)).toEqual(['fit']);
    expect(s.acquiring).toBe(1);
    expect([...s.notStarted]).toEqual(['sha256:fit']);
    expect(s.steps.fit!.state).toBe('running');
  });

  it('a step with the key of an execution this run already started joins it instead of starting another', () => {
    const input = runInput();
    const s = stateOf(input);
    const plan = planStarts(input, s, [prep('prep', 'sha256:same'), prep('lint', 'sha256:same')], true, NOW);
    expect(plan.execs.map((e) => e.producedBy.step)).toEqual(['prep']);
    expect(s.waiting).toEqual({ 'sha256:same': ['prep', 'lint'] });
    expect(s.steps.lint!.state).toBe('running');
    const later = planStarts(input, s, [prep('fit', 'sha256:same')], true, NOW);
    expect(later).toEqual({ execs: [], acquire: [] });
    expect(s.waiting['sha256:same']).toEqual(['prep', 'lint', 'fit']);
  });

  it('a retried EC2 step gets the retries left and its attempt offset', () => {
    const input = runInput();
    const s = stateOf(input);
    s.attemptOffset.fit = 2;
    // Without a pool the machine step runs locally: the input it gets shows the same budget rule.
    const plan = planStarts(input, s, [prep('fit')], false, NOW);
    expect(plan.execs[0]).toMatchObject({ retries: 1, attemptOffset: 2, sameHostRetries: 0 });
  });

  it('a failed host request fails every step waiting for that execution, and the loop looks again', () => {
    const input = runInput();
    const s = stateOf(input);
    planStarts(input, s, [prep('fit', 'sha256:k'), prep('lint', 'sha256:k')], true, NOW);
    s.wake = s.dirty = false;
    acquisitionFailed(s, 'sha256:k', 'fit', 'no host: capacity', NOW);
    acquisitionEnded(s, 'sha256:k');
    expect(states(s.steps)).toMatchObject({ fit: 'failed', lint: 'failed' });
    expect(s.steps.lint!.message).toBe('no host: capacity');
    expect(s.waiting).toEqual({});
    expect(s).toMatchObject({ acquiring: 0, wake: true, dirty: true });
    expect(s.notStarted.size).toBe(0);
  });
});

describe('applying a finished execution to the run', () => {
  const ec2: HostRecord = { kind: 'ec2', queue: 'host-1' } as HostRecord;

  it.each([
    // lost → hosts to keep (one for its own retry), broken
    ['finished', false, 0, false],
    ['lost its host', true, 1, true],
  ] as const)('EC2 host, nothing else pending: %s', (_, lost, stillNeeded, broken) => {
    const input = runInput();
    const s = stateOf(input);
    s.hostOf.set('fit', ec2);
    s.steps.fit!.state = 'running';
    const o = outcome(lost ? 'failed' : 'succeeded', [attempt(1, lost ? 'host_lost' : 'succeeded')]);
    const d = detachHost(input.pipeline, s, 'fit', finished('k', o));
    expect(d.host).toBe(ec2);
    expect(d.release).toEqual({ host: ec2, stillNeeded, broken });
    expect(s.hostOf.has('fit')).toBe(false);
  });

  it('keeps a host warm per pending step of the same class', () => {
    const { pipeline: p } = parsePipeline(
      `name: r
machines:
  gpu: { instance: [g5.xlarge], gpus: 1 }
steps:
  a: { image: busybox, run: x, machine: gpu }
  b: { image: busybox, run: x, machine: gpu }
  c: { image: busybox, run: x, machine: gpu }
`,
      '.trainyard/r.yaml',
    );
    const s = initialRunState(p!, undefined, 0, NOW);
    s.steps.a!.state = 'running';
    s.hostOf.set('a', ec2);
    expect(detachHost(p!, s, 'a', finished('k', outcome('succeeded', [])))?.release?.stillNeeded).toBe(2);
  });

  it('a local host is not released; a Kubernetes host is billed for every attempt, lost ones too', () => {
    const input = runInput();
    const s = stateOf(input);
    s.hostOf.set('lint', { kind: 'local', queue: 'local-q' });
    expect(detachHost(input.pipeline, s, 'lint', finished('k', outcome('succeeded', [])))).toMatchObject({
      host: { kind: 'local' },
      release: undefined,
    });
    const kube = { kind: 'kubernetes', queue: 'kq', gpus: 1 } as HostRecord;
    s.hostOf.set('score', kube);
    const compute = (sec: number) => ({
      billedSeconds: sec,
      costUsd: sec / 100,
      pricePerHourUsd: 36,
      gpus: 1,
      namespace: 'ns',
      job: `j${sec}`,
    });
    s.earlierAttempts.score = [{ ...attempt(1, 'host_lost'), compute: compute(10) } as AttemptRecord];
    const last = { ...attempt(2, 'succeeded'), compute: compute(20) } as AttemptRecord;
    expect(detachHost(input.pipeline, s, 'score', finished('k', outcome('succeeded', [last]))).release).toBeUndefined();
    expect(kube).toMatchObject({ billedSeconds: 30, costUsd: 0.3, job: 'j20' });
  });

  it.each([
    // step, cancel requested → state, attempt offset carried
    ['an EC2 step with retries left', 'fit', false, 'pending', 1],
    ['an EC2 step while the run is cancelled', 'fit', true, 'failed', undefined],
    ['a Kubernetes step (its runner retries Jobs)', 'score', false, 'failed', undefined],
  ] as const)('host lost: %s → %s', (_, step, cancelled, state, offset) => {
    const input = runInput();
    const s = stateOf(input);
    s.steps[step]!.state = 'running';
    if (cancelled) requestCancel(s);
    settleWaiting(input, s, step, finished('k', outcome('failed', [attempt(1, 'host_lost')])), ec2, NOW);
    expect(s.steps[step]!.state).toBe(state);
    expect(s.attemptOffset[step]).toBe(offset);
    expect(s.earlierAttempts[step]?.length).toBe(offset);
  });

  it('the steps waiting for an execution stop waiting once it is applied', () => {
    const s = stateOf(runInput());
    s.waiting['sha256:k'] = ['prep', 'lint'];
    expect(takeWaiting(s, 'sha256:k')).toEqual(['prep', 'lint']);
    expect(takeWaiting(s, 'sha256:k')).toEqual([]);
  });
});

describe('cancel, probes, publication and continue-as-new', () => {
  it('a cancel or supersede asks to stop; the first run to supersede is the one named', () => {
    const s = stateOf(runInput());
    requestCancel(s, { sha: 'a'.repeat(40), runId: 'run-2' } as never);
    requestCancel(s, { sha: 'b'.repeat(40), runId: 'run-3' } as never);
    expect(s.cancelRequested).toBe(true);
    expect(s.supersededBy?.runId).toBe('run-2');
    const plain = stateOf(runInput());
    requestCancel(plain);
    expect(plain.supersededBy).toBeUndefined();
  });

  it('a detached execution has answered once its result is applied or its signal is in', () => {
    const s = stateOf(runInput());
    s.waiting = { a: ['prep'], b: ['lint'] };
    expect(detachAnswered(s, ['a', 'b'])).toBe(false);
    s.finished.push(finished('a', outcome('cancelled', [])));
    delete s.waiting.b;
    expect(detachAnswered(s, ['a', 'b'])).toBe(true);
  });

  it.each([
    // woke, ms since last news, waiting keys, not started → keys probed
    ['a signal woke the loop', true, 400_000, ['a'], [], undefined],
    ['news came recently', false, 1_000, ['a'], [], undefined],
    ['nothing awaited', false, 400_000, [], [], undefined],
    ['silence: started executions only', false, 400_000, ['a', 'b'], ['b'], ['a']],
  ] as const)('probe when %s', (_, woke, quiet, keys, notStarted, probed) => {
    const s = stateOf(runInput());
    for (const k of keys) s.waiting[k] = ['prep'];
    for (const k of notStarted) s.notStarted.add(k);
    expect(probeKeys(s, woke, quiet, 300_000)).toEqual(probed);
  });

  it.each([
    // status target, dirty, force, ms since last publication → due
    ['no status target', 'none', true, true, 60_000, false],
    ['nothing changed', 'github', false, false, 60_000, false],
    ['changed, interval passed', 'github', true, false, 10_000, true],
    ['changed, too soon', 'github', true, false, 9_999, false],
    ['forced, too soon and unchanged', 'github', false, true, 0, true],
  ] as const)('publish: %s → %s', (_, kind, dirty, force, since, due) => {
    const target =
      kind === 'none' ? { kind } : ({ kind, installationId: 1, owner: 'o', repo: 'r', headSha: 'c' } as const);
    const input = runInput({ status: target });
    const s = stateOf(input);
    s.dirty = dirty;
    s.lastPublish = 100_000;
    expect(publishDue(input, s, force, 100_000 + since)).toBe(due);
  });

  it('the loop wakes at the status interval, or after the probe time when nothing is published', () => {
    expect(wakeAfterMs(runInput(), 300_000)).toBe(300_000);
    const gh = runInput({ status: { kind: 'gitlab', projectId: 1, sha: 'c' } });
    expect(wakeAfterMs(gh, 300_000)).toBe(10_000);
  });

  it.each([
    // history length, suggested, acquiring, pool host states → continue
    ['short history', 10, false, 0, undefined, false],
    ['long history', 1000, false, 0, undefined, true],
    ['server suggests it', 10, true, 0, undefined, true],
    ['a host being acquired', 1000, false, 1, undefined, false],
    ['a pool host still up', 1000, false, 0, ['terminated', 'idle'], false],
    ['every pool host gone', 1000, false, 0, ['terminated', 'failed'], true],
  ] as const)('continue as new: %s → %s', (_, historyLength, suggested, acquiring, hosts, cont) => {
    const s = stateOf(runInput());
    s.acquiring = acquiring;
    const poolHosts = hosts?.map((state) => ({ state })) as never;
    expect(mayContinueAsNew({ historyLength, continueAsNewSuggested: suggested }, 1000, s, poolHosts)).toBe(cont);
  });

  it('what continue-as-new carries starts the next execution where this one stopped', () => {
    const input = runInput();
    const s = stateOf(input);
    s.steps.prep!.state = 'succeeded';
    s.waiting = { k: ['lint'] };
    s.attemptOffset = { fit: 1 };
    const carry = carryOf(s, undefined, true);
    expect(carry).toEqual({
      steps: s.steps,
      waiting: { k: ['lint'] },
      attemptOffset: { fit: 1 },
      startedAt: NOW,
      continuedAsNew: 1,
      openLineage: true,
    });
    expect(carryOf(s, undefined, undefined).openLineage).toBeUndefined();
    const next = initialRunState(input.pipeline, carry, 5, '2026-12-01T00:00:00.000Z');
    expect(next).toMatchObject({ startedAt: NOW, continuedAsNew: 1, waiting: { k: ['lint'] }, acquiring: 0 });
    expect(runSnapshot(input, next, NOW)).toMatchObject({ state: 'running', continuedAsNew: 1, startedAt: NOW });
    expect(runSnapshot(input, next, NOW).finishedAt).toBeUndefined();
  });

  it('the final report links the comparison to the pull request only for a comment-triggered run', () => {
    const recorded: RecordedLineage = {
      lineageKey: 'lineage/x',
      reportKey: 'report/x',
      reportMarkdown: '# r',
      conclusion: 'succeeded',
      title: 't',
      comparison: { baseRunId: 'run-0', markdown: '| m |' },
    };
    expect(finalReport(runInput(), recorded, 'success')).toStrictEqual({
      conclusion: 'success',
      reportMarkdown: '# r',
      lineageKey: 'lineage/x',
      comparison: { markdown: '| m |' },
    });
    const comment = runInput({ trigger: { kind: 'comment', pr: 7 } as RunInput['trigger'] });
    expect(finalReport(comment, recorded, 'failure').comparison).toEqual({ markdown: '| m |', pullRequest: 7 });
  });
});
