// The engine end to end: real Temporal dev server, real podman containers, local store.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookup } from '../../activities/cache.js';
import { cancelSignal } from '../../model/contracts.js';
import { lineageSchemaErrors } from '../lineage/schema.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine, type GitRepo } from './harness.js';

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine();
});
afterAll(async () => {
  await engine?.stop();
});

const diamond = (salt: string) => `
name: diamond
params:
  n: { type: integer, default: 3 }
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: sh src/prepare.sh
    code: [src/prepare.sh]
    env: { SALT: "${salt}" }
    outputs: [data]
    params: [n]
  left:
    image: ${BUSYBOX_IMAGE}
    run: sh src/left.sh
    code: [src/left.sh]
    env: { SALT: "${salt}" }
    inputs: { data: steps.prepare.outputs.data }
    outputs: [out]
  right:
    image: ${BUSYBOX_IMAGE}
    run: sh src/right.sh
    code: [src/right.sh]
    env: { SALT: "${salt}" }
    inputs: { data: steps.prepare.outputs.data }
    outputs: [out]
  join:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/l /inputs/r > /outputs/result
    code: []
    env: { SALT: "${salt}" }
    inputs: { l: steps.left.outputs.out, r: steps.right.outputs.out }
    outputs: [result]
`;

const blob = (engine: Engine, digest: string): string => {
  const hex = digest.replace('sha256:', '');
  return readFileSync(`${engine.root}/store/blobs/sha256/${hex.slice(0, 2)}/${hex}`, 'utf8');
};

describe('a committed pipeline runs, then hits the cache, with early cutoff', () => {
  let repo: GitRepo;
  beforeAll(() => {
    repo = engine.repo().write({
      '.trainyard/diamond.yaml': diamond(engine.salt),
      'src/prepare.sh':
        'echo "n=$PARAM_N"\necho \'{"rows": 3, "phase": "prepare"}\'\necho "n=$PARAM_N" > /outputs/data\n',
      'src/left.sh': 'echo "left of $(cat /inputs/data)" > /outputs/out\n',
      'src/right.sh': 'echo "right of $(cat /inputs/data)" > /outputs/out\n',
      'README.md': 'hello\n',
    });
    repo.commit('first');
  });

  it('runs every step in containers and stores the outputs', async () => {
    const s = await engine.run(repo, '.trainyard/diamond.yaml');
    expect(s.state).toBe('succeeded');
    expect(s.steps.map((x) => [x.name, x.state])).toEqual([
      ['prepare', 'succeeded'],
      ['left', 'succeeded'],
      ['right', 'succeeded'],
      ['join', 'succeeded'],
    ]);
    const result = stepOf(s, 'join').outcome!.outputs.result!;
    expect(blob(engine, result.digest)).toBe('left of n=3\nright of n=3\n');
    expect(stepOf(s, 'prepare').outcome!.metrics).toMatchObject({
      samples: 1,
      names: 2,
      last: { rows: 3, phase: 'prepare' },
    });
    expect(stepOf(s, 'prepare').cache!.reason).toMatch(/^ran: first execution/);
    expect(s.lineageKey).toBe(`runs/${s.runId}/lineage`);
    // The lineage document of a real run conforms to the published schema.
    expect(lineageSchemaErrors(await engine.store.getRecord(s.lineageKey!))).toEqual([]);
    expect(await engine.containers()).toEqual([]);
  });

  it('probeSteps reads the result of a closed execution (the safety net for a lost signal)', async () => {
    const { createControlActivities } = await import('../../activities/engine.js');
    const { LocalGitSource } = await import('../../activities/source/local.js');
    const s = await engine.run(repo, '.trainyard/diamond.yaml', { noCache: true });
    const control = createControlActivities({
      store: engine.store,
      sources: new LocalGitSource(`${engine.root}/probe`),
      client: engine.client,
    });
    // --no-cache executions have keys of their own: probe the one that ran `join`.
    const handles = await engine.client.workflow.list({
      query: `WorkflowType = 'stepExecution' AND ExecutionStatus = 'Completed'`,
    });
    const keys: string[] = [];
    for await (const w of handles)
      if (w.workflowId.startsWith('trainyard-step-'))
        keys.push(`sha256:${w.workflowId.slice('trainyard-step-'.length)}`);
    const found = await control.probeSteps({ keys: [...keys, 'sha256:' + '0'.repeat(64)] });
    const digest = stepOf(s, 'join').outcome!.outputs.result!.digest;
    expect(found.some((f) => f.outcome.outputs.result?.digest === digest)).toBe(true);
    expect(found.some((f) => f.key === 'sha256:' + '0'.repeat(64))).toBe(false);
  });

  it('reuses every step when nothing changed, even after an unrelated commit', async () => {
    repo.write({ 'README.md': 'typo fixed\n' }).commit('docs');
    const s = await engine.run(repo, '.trainyard/diamond.yaml');
    expect(s.state).toBe('succeeded');
    for (const st of s.steps) {
      expect(st.state, st.name).toBe('cached');
      expect(st.cache!.reason).toMatch(/^reused: same key as step /);
    }
  });

  it('after editing one step, only it and the steps whose inputs changed run again', async () => {
    repo.write({ 'src/left.sh': 'echo "LEFT of $(cat /inputs/data)" > /outputs/out\n' }).commit('edit left');
    const s = await engine.run(repo, '.trainyard/diamond.yaml');
    expect(s.steps.map((x) => [x.name, x.state])).toEqual([
      ['prepare', 'cached'],
      ['left', 'succeeded'],
      ['right', 'cached'],
      ['join', 'succeeded'],
    ]);
    expect(stepOf(s, 'left').cache!.reason).toBe('ran: code changed (src/left.sh)');
    expect(stepOf(s, 'join').cache!.reason).toMatch(/^ran: input l changed \(/);
    expect(blob(engine, stepOf(s, 'join').outcome!.outputs.result!.digest)).toBe('LEFT of n=3\nright of n=3\n');
  });

  it('early cutoff: an upstream step that reruns with byte-identical output leaves its dependents cached', async () => {
    repo
      .write({
        'src/prepare.sh':
          '# a comment changes the code, not the output\necho "n=$PARAM_N"\necho \'{"rows": 3, "phase": "prepare"}\'\necho "n=$PARAM_N" > /outputs/data\n',
      })
      .commit('comment');
    const s = await engine.run(repo, '.trainyard/diamond.yaml');
    expect(stepOf(s, 'prepare').state).toBe('succeeded');
    expect(stepOf(s, 'prepare').cache!.reason).toBe('ran: code changed (src/prepare.sh)');
    expect(['left', 'right', 'join'].map((n) => stepOf(s, n).state)).toEqual(['cached', 'cached', 'cached']);
  });

  it('a parameter change reruns the steps that see it and those whose inputs then change', async () => {
    const s = await engine.run(repo, '.trainyard/diamond.yaml', { params: { n: '4' } });
    expect(stepOf(s, 'prepare').cache!.reason).toBe('ran: parameter n changed (3 → 4)');
    expect(s.steps.every((x) => x.state === 'succeeded')).toBe(true);
    expect(blob(engine, stepOf(s, 'join').outcome!.outputs.result!.digest)).toBe('LEFT of n=4\nright of n=4\n');
  });

  it('--no-cache runs everything again', async () => {
    const s = await engine.run(repo, '.trainyard/diamond.yaml', { noCache: true });
    expect(s.steps.map((x) => x.state)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(s.steps.map((x) => x.cache!.decision)).toEqual(['disabled', 'disabled', 'disabled', 'disabled']);
    // Its results are recorded: the next ordinary run reuses them.
    const next = await engine.run(repo, '.trainyard/diamond.yaml');
    for (const st of next.steps) expect(st.cache!.source?.runId, st.name).toBe(s.runId);
  });

  it('cache: false steps run every time and record nothing', async () => {
    const r = engine.repo().write({
      '.trainyard/fresh.yaml': `
name: fresh
steps:
  always:
    image: ${BUSYBOX_IMAGE}
    run: head -c 16 /dev/urandom | od -x > /outputs/t
    env: { SALT: "${engine.salt}" }
    cache: false
    outputs: [t]
`,
    });
    r.commit();
    const before = new Set(await engine.store.listRecords(''));
    const a = await engine.run(r, '.trainyard/fresh.yaml');
    const b = await engine.run(r, '.trainyard/fresh.yaml');
    expect([stepOf(a, 'always').state, stepOf(b, 'always').state]).toEqual(['succeeded', 'succeeded']);
    expect(stepOf(b, 'always').cache).toMatchObject({
      decision: 'disabled',
      reason: 'ran: cache disabled for this step (cache: false)',
    });
    expect(stepOf(a, 'always').outcome!.outputs.t!.digest).not.toBe(stepOf(b, 'always').outcome!.outputs.t!.digest);
    // Recorded nothing: no cache record under either run's key, and the two runs added to the
    // store only their lineage, report and index records and the live logs of the steps they
    // executed (what the step printed, never a result to reuse): no cache entry of any kind.
    for (const s of [a, b]) expect(await lookup(engine.store, stepOf(s, 'always').cache!.key)).toBeUndefined();
    const added = (await engine.store.listRecords('')).filter((k) => !before.has(k));
    expect(added.length).toBeGreaterThan(0);
    expect(
      added.filter(
        (k) =>
          !k.startsWith(`runs/${a.runId}/`) &&
          !k.startsWith(`runs/${b.runId}/`) &&
          !k.startsWith('index/') &&
          !k.startsWith('logs/live/'),
      ),
    ).toEqual([]);
  });
});

describe('failures, retries, timeouts', () => {
  it('a failed step skips its dependents, independent branches finish, the run fails', async () => {
    const repo = engine.repo().write({
      '.trainyard/broken.yaml': `
name: broken
steps:
  bad:
    image: ${BUSYBOX_IMAGE}
    run: echo "about to fail $SALT"; exit 3
    env: { SALT: "${engine.salt}" }
    retries: 1
    outputs: [x]
  after_bad:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/x
    inputs: { x: steps.bad.outputs.x }
  independent:
    image: ${BUSYBOX_IMAGE}
    run: echo ok-${engine.salt} > /outputs/y
    outputs: [y]
  no_output:
    image: ${BUSYBOX_IMAGE}
    run: echo forgot ${engine.salt}
    outputs: [z]
`,
    });
    repo.commit();
    const s = await engine.run(repo, '.trainyard/broken.yaml');
    expect(s.state).toBe('failed');
    const bad = stepOf(s, 'bad');
    expect(bad.state).toBe('failed');
    expect(bad.outcome!.attempts.map((a) => [a.outcome, a.exitCode])).toEqual([
      ['failed', 3],
      ['failed', 3],
    ]);
    expect(bad.message).toMatch(/exited with code 3: about to fail/);
    expect(bad.outcome!.logDigest).toMatch(/^sha256:/);
    expect(stepOf(s, 'after_bad')).toMatchObject({ state: 'skipped', message: 'skipped: bad failed' });
    expect(stepOf(s, 'independent').state).toBe('succeeded');
    expect(stepOf(s, 'no_output')).toMatchObject({
      state: 'failed',
      message: 'declared output "z" was not written (expected /outputs/z)',
    });
    expect(await engine.containers()).toEqual([]);
  });

  it('a step over its timeout is killed and reported as timed out', async () => {
    const repo = engine.repo().write({
      '.trainyard/slow.yaml': `
name: slow
steps:
  sleepy:
    image: ${BUSYBOX_IMAGE}
    run: sleep 60
    env: { SALT: "${engine.salt}" }
    timeout: 2s
`,
    });
    repo.commit();
    const s = await engine.run(repo, '.trainyard/slow.yaml');
    expect(stepOf(s, 'sleepy').state).toBe('failed');
    expect(stepOf(s, 'sleepy').outcome!.attempts).toMatchObject([
      { outcome: 'timed_out', message: 'timed out after 2s; container killed' },
    ]);
    // Killed, not left to finish: its one-minute sleep would still be running now.
    expect(await engine.containers()).toEqual([]);
  });
});

describe('cancellation and single flight', () => {
  it('cancelling a run stops its containers and still reports', async () => {
    const repo = engine.repo().write({
      '.trainyard/long.yaml': `
name: long
steps:
  forever:
    image: ${BUSYBOX_IMAGE}
    run: sleep 300
    env: { SALT: "${engine.salt}-cancel" }
  later:
    image: ${BUSYBOX_IMAGE}
    run: "true"
    needs: [forever]
`,
    });
    repo.commit();
    const { workflowId } = await engine.start(repo, '.trainyard/long.yaml');
    await waitFor(async () => (await engine.containers()).length === 1, 30_000);
    await engine.client.workflow.getHandle(workflowId).signal(cancelSignal);
    const s = await engine.result(workflowId);
    expect(s.state).toBe('cancelled');
    expect(stepOf(s, 'forever').state).toBe('cancelled');
    expect(stepOf(s, 'later')).toMatchObject({ state: 'cancelled', message: 'run cancelled' });
    expect(await engine.containers()).toEqual([]);
    // Still reports: its lineage document and report are written, saying it was cancelled.
    expect(await engine.store.getRecord(s.lineageKey!)).toMatchObject({ runId: s.runId, conclusion: 'cancelled' });
    expect(await engine.store.getRecord(s.reportKey!)).toMatchObject({
      markdown: expect.stringContaining('cancelled'),
    });
  });

  it('two concurrent runs of the same pipeline execute each step once', async () => {
    const repo = engine.repo().write({
      '.trainyard/once.yaml': `
name: once
steps:
  random:
    image: ${BUSYBOX_IMAGE}
    run: sleep 2; head -c 32 /dev/urandom | od -x > /outputs/noise
    env: { SALT: "${engine.salt}-once" }
    outputs: [noise]
  use:
    image: ${BUSYBOX_IMAGE}
    run: cp /inputs/noise /outputs/copy
    inputs: { noise: steps.random.outputs.noise }
    outputs: [copy]
`,
    });
    repo.commit();
    const a = await engine.start(repo, '.trainyard/once.yaml');
    const b = await engine.start(repo, '.trainyard/once.yaml');
    const [sa, sb] = await Promise.all([engine.result(a.workflowId), engine.result(b.workflowId)]);
    expect(sa.state).toBe('succeeded');
    expect(sb.state).toBe('succeeded');
    // Random bytes: equal digests mean one execution served both runs.
    expect(stepOf(sa, 'random').outcome!.outputs.noise!.digest).toBe(
      stepOf(sb, 'random').outcome!.outputs.noise!.digest,
    );
    for (const step of ['random', 'use']) {
      const producers = new Set([sa, sb].map((s) => stepOf(s, step).outcome!.producedBy.runId));
      expect(producers.size, step).toBe(1);
    }
  });

  it('cancelling one of two runs sharing a step does not kill it for the other', async () => {
    const repo = engine.repo().write({
      '.trainyard/shared.yaml': `
name: shared
steps:
  slow:
    image: ${BUSYBOX_IMAGE}
    run: sleep 5; echo done > /outputs/o
    env: { SALT: "${engine.salt}-shared" }
    outputs: [o]
`,
    });
    repo.commit();
    const a = await engine.start(repo, '.trainyard/shared.yaml');
    const b = await engine.start(repo, '.trainyard/shared.yaml');
    await waitFor(async () => (await engine.containers()).length === 1, 30_000);
    await engine.client.workflow.getHandle(a.workflowId).signal(cancelSignal);
    const [sa, sb] = await Promise.all([engine.result(a.workflowId), engine.result(b.workflowId)]);
    expect(sa.state).toBe('cancelled');
    expect(stepOf(sa, 'slow').message).toMatch(/left running: still needed by/);
    expect(sb.state).toBe('succeeded');
    expect(stepOf(sb, 'slow').state).toBe('succeeded');
  });
});

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('condition not met in time');
}
