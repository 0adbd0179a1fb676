// Superseded runs: real Temporal dev server, real podman containers. A run of a concurrency
// group claims the group's workflow as it starts; a newer run cancels the one still running,
// which cleans up as on a Cancel and records who superseded it.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPipelineRun } from '../../app/engine.js';
import { parsePipeline } from '../../pipeline/parse.js';
import { temporal } from '@temporalio/proto';
import { statusQuery, stepExecWorkflowId } from '../../model/contracts.js';
import type { RunInput, RunStatus } from '../../model/types.js';
import type { pipelineRun } from '../../workflows/pipeline.js';
import { BUSYBOX_IMAGE, startEngine, type Engine, type GitRepo } from './harness.js';

let engine: Engine;
/** Every run started here: one a failed test left going is cancelled (its container removed) before the workers stop. */
const started: string[] = [];
beforeAll(async () => {
  engine = await startEngine();
}, 300_000);
afterAll(async () => {
  for (const id of started) {
    const h = engine.client.workflow.getHandle(id);
    if ((await h.describe()).status.name !== 'RUNNING') continue;
    await h.cancel();
    await h.result().catch(() => undefined);
  }
  await engine?.stop();
}, 300_000);

const pipelineText = (salt: string) => `name: slow
steps:
  wait:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${salt}" }
    run: 'echo started; sleep 600'
`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 240_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `slow` at the repo's HEAD as a run of `groupId`, asked for at `requestedAt`. */
async function startInGroup(
  repo: GitRepo,
  groupId: string,
  requestedAt: string,
): Promise<{ workflowId: string; runId: string; sha: string }> {
  const sha = repo.git('rev-parse', 'HEAD');
  const { pipeline } = parsePipeline(repo.git('show', `${sha}:.trainyard/slow.yaml`), '.trainyard/slow.yaml');
  const runId = `c${randomBytes(6).toString('hex')}`;
  const input: RunInput = {
    runId,
    pipeline: pipeline!,
    params: {},
    source: { kind: 'git', repoPath: repo.path, commit: sha, subdir: '' },
    trigger: { kind: 'cli', user: 'test' },
    status: { kind: 'none' },
    options: engine.options,
    concurrency: { group: 'slow-pr-1', groupId, requestedAt },
  };
  const workflowId = `test:${runId}`;
  await startPipelineRun(engine.client, input, { workflowId, reuse: 'allow-duplicate' });
  started.push(workflowId);
  return { workflowId, runId, sha };
}

const running = (workflowId: string) =>
  waitFor(`step of ${workflowId} running`, async () => {
    const s = await engine.client.workflow.getHandle(workflowId).query(statusQuery);
    return s.steps[0]!.state === 'running' && s;
  });
/** The run's result once it has ended; fails after four minutes if it goes on (a loaded machine stops containers slowly). */
async function result(workflowId: string): Promise<RunStatus> {
  const h = engine.client.workflow.getHandle<typeof pipelineRun>(workflowId);
  await waitFor(`${workflowId} ended`, async () => (await h.describe()).status.name !== 'RUNNING');
  return h.result();
}
/**
 * What a failure needs to be understood (CI only shows the assertion): the phases' times and the
 * events of the runs and of their steps' executions — signals, activity attempts, cancels, timers.
 */
async function diagnose(
  phases: Array<[string, number]>,
  statuses: RunStatus[],
  workflowIds: string[],
): Promise<string> {
  const t0 = phases[0]?.[1] ?? Date.now();
  const lines = phases.map(([what, at]) => `+${((at - t0) / 1000).toFixed(1)}s ${what}`);
  const ids = [
    ...workflowIds,
    ...statuses
      .flatMap((s) => s.steps.map((st) => st.cache?.key).filter((k): k is string => Boolean(k)))
      .map(stepExecWorkflowId),
  ];
  for (const id of ids) {
    lines.push(`history of ${id}:`);
    try {
      const { events } = await engine.client.workflow.getHandle(id).fetchHistory();
      for (const e of events ?? []) {
        const type = temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType);
        if (/WORKFLOW_TASK_(SCHEDULED|STARTED)/.test(type)) continue;
        const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
        const signal = e.workflowExecutionSignaledEventAttributes?.signalName ?? '';
        const attempt = e.activityTaskStartedEventAttributes?.attempt ?? '';
        lines.push(`  +${((at - t0) / 1000).toFixed(1)}s ${type} ${signal}${attempt}`);
      }
    } catch (err) {
      lines.push(`  (not readable: ${String(err)})`);
    }
  }
  return lines.join('\n');
}

const groupClosed = (groupId: string) =>
  waitFor(
    `group ${groupId} closed`,
    async () => (await engine.client.workflow.getHandle(groupId).describe()).status.name === 'COMPLETED',
  );

describe('concurrency groups', () => {
  it('a newer run of the group cancels the running one, which removes its container and says who superseded it', async () => {
    const phases: Array<[string, number]> = [['start', Date.now()]];
    const mark = (what: string) => phases.push([what, Date.now()]);
    const groupId = `concurrency:test:${engine.salt}:${randomBytes(4).toString('hex')}`;
    const repo = engine.repo().write({ '.trainyard/slow.yaml': pipelineText(`${engine.salt}-a`) });
    repo.commit();
    const older = await startInGroup(repo, groupId, new Date().toISOString());
    await running(older.workflowId);
    // Superseded while its container runs (a push while a step trains). A cancel in the moment
    // the container starts has its own test: test/container/run.test.ts, "an abort at any moment".
    await waitFor("the older run's container", async () => (await engine.containers()).length === 1);
    mark('older running');
    // A new commit (its own cache key, so its own container).
    repo.write({ '.trainyard/slow.yaml': pipelineText(`${engine.salt}-b`) }).commit();
    const newer = await startInGroup(repo, groupId, new Date().toISOString());
    mark('newer started');

    const done = await result(older.workflowId);
    mark('older ended');
    expect(done.state).toBe('cancelled');
    expect(done.supersededBy).toEqual({ workflowId: newer.workflowId, runId: newer.runId, sha: newer.sha });
    expect(done.steps[0]!.state).toBe('cancelled');
    // The newer run goes on; only its container is left. The run says its step is running once
    // the execution is started; the container comes a moment later (seconds on a loaded machine).
    const newerRunning = await running(newer.workflowId);
    mark('newer running');
    const left = await waitFor("the newer run's container", async () => {
      const names = await engine.containers();
      return names.length > 0 && names;
    });
    mark(`containers: ${left.join(', ')}`);
    if (left.length !== 1 || phases.at(-2)![1] - phases[0]![1] > 120_000)
      console.error(await diagnose(phases, [done, newerRunning], [older.workflowId, newer.workflowId]));
    expect(left).toHaveLength(1);

    // Its end releases the group, which then closes.
    await engine.client.workflow.getHandle(newer.workflowId).cancel();
    expect((await result(newer.workflowId)).supersededBy).toBeUndefined();
    await groupClosed(groupId);
    expect(await engine.containers()).toEqual([]);
  }, 400_000);

  it('the later request wins whichever run claims the group first', async () => {
    const groupId = `concurrency:test:${engine.salt}:${randomBytes(4).toString('hex')}`;
    const repo = engine.repo().write({ '.trainyard/slow.yaml': pipelineText(`${engine.salt}-c`) });
    repo.commit();
    const earlier = new Date(Date.now() - 60_000).toISOString();
    // The later request starts (and claims) first; the earlier request's run arrives late.
    const later = await startInGroup(repo, groupId, new Date().toISOString());
    await running(later.workflowId);
    repo.write({ '.trainyard/slow.yaml': pipelineText(`${engine.salt}-d`) }).commit();
    const late = await startInGroup(repo, groupId, earlier);

    const lateDone = await result(late.workflowId);
    expect(lateDone.state).toBe('cancelled');
    expect(lateDone.supersededBy).toEqual({ workflowId: later.workflowId, runId: later.runId, sha: later.sha });
    const still = await engine.client.workflow.getHandle(later.workflowId).query(statusQuery);
    expect([still.state, still.steps[0]!.state]).toEqual(['running', 'running']);

    await engine.client.workflow.getHandle(later.workflowId).cancel();
    await result(later.workflowId);
    await groupClosed(groupId);
    expect(await engine.containers()).toEqual([]);
  }, 400_000);
});
