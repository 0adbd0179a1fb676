// The cache lookup activity (activities/prepare.ts) with look-ahead, on a real local store: a
// step after a hit is prepared in the same call with its upstream's cached outputs as inputs,
// one after a miss is left for later, and a look-ahead step's own error never fails the steps
// prepared with it (it is named on that step once the step is ready).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookup, record } from '../../activities/cache.js';
import { createPrepareSteps } from '../../activities/prepare.js';
import { cacheRecordKey } from '../../activities/store/keys.js';
import { LocalStore } from '../../activities/store/local.js';
import type { PrepareAnswer, PrepareItem, PrepareRequest, Prepared, PreparedHit } from '../../model/contracts.js';
import { parsePipeline } from '../../pipeline/parse.js';
import type { Pipeline } from '../../pipeline/types.js';

let root: string;
let store: LocalStore;
let pipeline: Pipeline;
let prepareSteps: (req: PrepareRequest) => Promise<PrepareAnswer[]>;

const request = (items: PrepareItem[]): PrepareRequest => ({
  runId: 'run-1',
  pipeline: 'la',
  source: { kind: 'git', repoPath: '/unused', commit: 'c1', subdir: '' },
  params: {},
  noCache: false,
  items,
});
const item = (step: string, extra: Partial<PrepareItem> = {}): PrepareItem => ({
  step,
  spec: pipeline.steps[step]!,
  gpus: false,
  upstream: {},
  ...extra,
});
/** `prepareSteps`' answers, none refused (a refusal fails the test with its message). */
async function prepare(req: PrepareRequest): Promise<(Prepared | PreparedHit)[]> {
  return (await prepareSteps(req)).map((p) => {
    if (p.invalid !== undefined) throw new Error(`${p.step} refused: ${p.invalid}`);
    return p;
  });
}
/** Records `p`'s execution as having written `text` to its output `o`. */
async function recordRun(p: Prepared | PreparedHit, text: string): Promise<void> {
  if (p.hit) throw new Error(`${p.step} is a cache hit already`);
  const source = { runId: 'run-0', commit: 'c0', step: p.step, pipeline: 'la', finishedAt: '2026-11-30T12:00:00Z' };
  await record(store, { key: p.key, outputs: { o: await store.putBytes(text) }, attempts: [], source, parts: p.parts });
}

/** The file of the cache record of `p`'s key in the local store. */
const recordFile = (p: Prepared | PreparedHit): string =>
  `${join(root, 'store', 'records', ...cacheRecordKey(p.key).split('/'))}.json`;
/** `step` prepared and recorded anew, with no other cache entry (whatever an earlier test left): a miss, now cached. */
async function freshEntry(step: string): Promise<Prepared | PreparedHit> {
  rmSync(join(root, 'store', 'records', 'cache'), { recursive: true, force: true });
  const [p] = await prepare(request([item(step)]));
  await recordRun(p!, `from ${step}`);
  return p!;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'trainyard-test-prepare-'));
  const checkout = join(root, 'checkout');
  mkdirSync(checkout);
  writeFileSync(join(checkout, 'data.csv'), 'x\n1\n');
  store = new LocalStore(join(root, 'store'));
  const parsed = parsePipeline(
    `name: la
steps:
  a: { image: busybox, run: x, outputs: [o], inputs: { raw: data.csv } }
  b: { image: busybox, run: x, outputs: [o], inputs: { i: steps.a.outputs.o } }
  c: { image: busybox, run: x, outputs: [o], inputs: { i: steps.b.outputs.o } }
  bad: { image: busybox, run: x, needs: [a], inputs: { gone: missing.csv } }
  solo: { image: busybox, run: x, outputs: [o] }
`,
    '.trainyard/la.yaml',
  );
  expect(parsed.errors).toEqual([]);
  pipeline = parsed.pipeline!;
  prepareSteps = createPrepareSteps({ store, sources: { checkout: async () => checkout } });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('prepareSteps with look-ahead', () => {
  it('prepares a chain of hits in one call, each with its upstream cached outputs as inputs, and stops after a miss', async () => {
    const [a] = await prepare(request([item('a')]));
    expect(a!.decision.decision).toBe('miss');
    await recordRun(a!, 'from a');
    const aOut = (await lookup(store, a!.key))!.outputs.o!;

    // a hits; b is prepared from a's cached output (a miss, never run); c waits for b to run.
    const answer = await prepare(request([item('a'), item('b', { after: ['a'] }), item('c', { after: ['b'] })]));
    expect(answer.map((p) => [p.step, p.decision.decision])).toEqual([
      ['a', 'hit'],
      ['b', 'miss'],
    ]);
    const b = answer[1]!;
    expect(b.inputs.i).toEqual({
      artifact: answer[0]!.hit!.outputs.o,
      origin: { kind: 'step', step: 'a', output: 'o' },
    });
    expect(b.inputs.i!.artifact.digest).toBe(aOut.digest);

    // Once b has run, the whole chain is one call: three hits.
    await recordRun(b, 'from b');
    const again = await prepare(request([item('a'), item('b', { after: ['a'] }), item('c', { after: ['b'] })]));
    expect(again.map((p) => [p.step, p.decision.decision])).toEqual([
      ['a', 'hit'],
      ['b', 'hit'],
      ['c', 'miss'],
    ]);
    expect(again[2]!.inputs.i!.artifact).toEqual(again[1]!.hit!.outputs.o);
  });

  it("a look-ahead step's bad input leaves it out; once ready, the error names that step alone", async () => {
    const answer = await prepareSteps(request([item('a'), item('bad', { after: ['a'] })]));
    expect(answer.map((p) => p.step)).toEqual(['a']);
    // Ready beside another step: refused with its own message, the other prepared all the same.
    const ready = await prepareSteps(request([item('a'), item('bad')]));
    expect(ready.map((p) => [p.step, p.invalid ?? 'prepared'])).toEqual([
      ['a', 'prepared'],
      ['bad', 'input gone of step bad: missing.csv does not exist at this commit'],
    ]);
  });

  it('a step whose cache record is damaged is refused alone, naming the record file; the others are prepared', async () => {
    const a = await freshEntry('a');
    const file = recordFile(a);
    writeFileSync(file, '{"key": "sha');
    const answer = await prepareSteps(request([item('a'), item('bad')]));
    expect(answer.map((p) => p.step)).toEqual(['a', 'bad']);
    expect(answer[0]!.invalid).toContain(`(${file}) is not valid JSON`);
    expect(answer[1]!.invalid).toContain('missing.csv does not exist');
  });

  it('a cache record of another shape (valid JSON) is refused on its step alone, never served as a hit', async () => {
    const a = await freshEntry('a');
    const file = recordFile(a);
    const entry = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const shapes: Array<[unknown, string]> = [
      [[], 'not a JSON object'],
      [{}, 'is not the cache entry of'],
      [{ ...entry, key: 'sha256:other' }, 'is not the cache entry of'],
      [{ ...entry, source: undefined }, 'no source run and step'],
      [{ ...entry, outputs: {} }, "lacks the step's output o"],
      [{ ...entry, outputs: { o: {} } }, 'no valid digest for output o'],
    ];
    for (const [value, problem] of shapes) {
      writeFileSync(file, JSON.stringify(value));
      const answer = await prepareSteps(request([item('a'), item('b', { after: ['a'] }), item('solo')]));
      const what = `record ${JSON.stringify(value).slice(0, 60)}`;
      expect(
        answer.map((p) => [p.step, p.invalid === undefined]),
        what,
      ).toEqual([
        ['a', false],
        ['solo', true],
      ]);
      expect(answer[0]!.invalid, what).toContain(problem);
      expect(answer[0]!.invalid, what).toContain(`records/${cacheRecordKey(a!.key)}.json`);
    }
  });
});
