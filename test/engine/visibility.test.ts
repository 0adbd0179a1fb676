// The audit view: runs carry their search attributes (set at start, the conclusion at the
// end), `trainyard runs` filters them straight from Temporal visibility.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  listRuns,
  registerSearchAttributes,
  runsQuery,
  type RunFilters,
  type RunListing,
} from '../../app/visibility.js';
import { BUSYBOX_IMAGE, startEngine, type Engine } from './harness.js';

const exec = promisify(execFile);
let engine: Engine;
beforeAll(async () => {
  engine = await startEngine();
});
afterAll(async () => {
  await engine?.stop();
});

/** Visibility is eventually consistent: the listing once it has `n` runs, within a deadline. */
async function listed(filters: RunFilters, n: number): Promise<RunListing[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const out: RunListing[] = [];
    for await (const r of listRuns(engine.client, filters)) out.push(r);
    if ((out.length >= n && out.every((r) => r.status !== 'running')) || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 300));
  }
}

it('the setup command finds the attributes the dev server was started with', async () => {
  const connection = await Connection.connect({ address: engine.address });
  try {
    expect(await registerSearchAttributes(connection, 'default')).toEqual([]);
  } finally {
    await connection.close();
  }
});

it('lists runs by commit, pipeline and conclusion, with duration and lineage', async () => {
  const name = `audit${engine.salt}`;
  const repo = engine.repo().write({
    [`.trainyard/${name}.yaml`]: `
name: ${name}
params:
  fail: { type: integer, default: 0 }
steps:
  only:
    image: ${BUSYBOX_IMAGE}
    run: echo $SALT; exit $PARAM_FAIL
    env: { SALT: "${engine.salt}" }
`,
  });
  const commit = repo.commit();
  const ok = await engine.run(repo, `.trainyard/${name}.yaml`);
  const bad = await engine.run(repo, `.trainyard/${name}.yaml`, { params: { fail: '1' } });
  expect([ok.state, bad.state]).toEqual(['succeeded', 'failed']);

  const byCommit = await listed({ commit }, 2);
  expect(byCommit.map((r) => [r.runId, r.status]).sort()).toEqual(
    [
      [ok.runId, 'succeeded'],
      [bad.runId, 'failed'],
    ].sort(),
  );
  const okRow = byCommit.find((r) => r.runId === ok.runId)!;
  expect(okRow).toMatchObject({
    pipeline: name,
    commit,
    repository: repo.path,
    trigger: 'cli',
    requester: 'test',
    lineageKey: `runs/${ok.runId}/lineage`,
  });
  expect(okRow.durationMs).toBeGreaterThan(0);
  const doc = await engine.store.getRecord(okRow.lineageKey!);
  expect(doc).toMatchObject({ runId: ok.runId });
  // The listed digest pins the stored document; local steps are not priced, so no cost.
  expect(okRow.lineageDigest).toBe(`sha256:${createHash('sha256').update(JSON.stringify(doc)).digest('hex')}`);
  expect(okRow.costUsd).toBeUndefined();

  const failed = await listed({ pipeline: name, status: 'failed' }, 1);
  expect(failed.map((r) => r.runId)).toEqual([bad.runId]);
  expect(await listed({ commit, branch: 'no-such-branch' }, 0)).toEqual([]);

  // The CLI prints one line per run, and JSON with --json.
  const env = { ...process.env, TEMPORAL_ADDRESS: engine.address };
  const text = (await exec(process.execPath, ['bin/trainyard.js', 'runs', '--commit', commit], { env })).stdout;
  expect(text.trim().split('\n')).toHaveLength(2);
  expect(text).toContain(`succeeded`);
  expect(text).toContain(ok.runId);
  expect(text.split('\n').find((l) => l.includes(ok.runId))).toContain(okRow.lineageDigest!.slice(0, 19));
  const json = (
    await exec(process.execPath, ['bin/trainyard.js', 'runs', '--pipeline', name, '--status', 'succeeded', '--json'], {
      env,
    })
  ).stdout;
  expect(
    json
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as RunListing).runId),
  ).toEqual([ok.runId]);
});

it('refuses a filter value that could change the query', () => {
  expect(() => runsQuery({ commit: "x' OR WorkflowType != '" })).toThrow(
    /--commit: .* is not a value runs are listed by/,
  );
  expect(() => runsQuery({ status: 'done' })).toThrow('--status must be one of running, succeeded, failed, cancelled');
  expect(runsQuery({ repository: 'acme/flowers', status: 'running' })).toBe(
    "WorkflowType = 'pipelineRun' AND TrainyardRepository = 'acme/flowers' AND ExecutionStatus = 'Running'",
  );
});
