// Runners told to stop — SIGTERM, what Kubernetes sends on every rollout — stop well:
// `trainyard agent`, `trainyard worker` and `trainyard serve` stop taking work, let a
// running step finish within TRAINYARD_SHUTDOWN_GRACE_SECONDS, otherwise remove its
// container and hand the step back so that another runner retries it at once; they exit 0
// and leave nothing running. The steps' heartbeat timeout is ten minutes here, so a retry
// that waited for it instead would never come within the test's time.
import { Client, Connection } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { removeContainers } from '../../activities/container/run.js';
import { dataConverter } from '../../app/codec.js';
import { startDevServer } from '../../app/devserver.js';
import { defaultRunOptions, startPipelineRun } from '../../app/engine.js';
import { parsePipeline } from '../../pipeline/parse.js';
import type { RunInput, RunStatus } from '../../model/types.js';
import type { pipelineRun } from '../../workflows/pipeline.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine, type GitRepo } from './harness.js';
import { containersLabelled, startTrainyard, waitUntil, type TrainyardProcess } from './processes.js';

const TEN_MINUTES = 600_000;
let engine: Engine;
const started: TrainyardProcess[] = [];
let gates: string;
beforeAll(async () => {
  engine = await startEngine({ host: false, options: { heartbeatTimeoutMs: TEN_MINUTES } });
  gates = mkdtempSync(join(engine.root, 'gates-'));
});
afterAll(async () => {
  // Only what a failed test left: every passing test asserts there is nothing.
  for (const p of started) p.child.kill('SIGKILL');
  const cli = await resolveContainerCli(process.env);
  for (const queue of [engine.hostQueue, `stop-host-${engine.salt}`, `stop-serve-${engine.salt}-host`])
    await removeContainers(cli, { 'trainyard.queue': queue });
  await engine?.stop();
});

/**
 * A pipeline whose step notes each container start in its gate's `attempts` and waits for
 * its gate's `go`. Runners mount every gate at /gates; each step has its own, so a step left
 * over from a failed test cannot touch another test's.
 */
function gatedProject(): { repo: GitRepo; file: string; gate: string } {
  const token = randomBytes(4).toString('hex');
  const gate = join(gates, token);
  mkdirSync(gate);
  const repo = engine.repo().write({
    '.trainyard/gated.yaml': `
name: gated
steps:
  work:
    image: ${BUSYBOX_IMAGE}
    run: echo started >> /gates/${token}/attempts; while [ ! -e /gates/${token}/go ]; do sleep 0.2; done; echo "done ${token}" > /outputs/model
    outputs: [model]
`,
  });
  repo.commit();
  return { repo, file: '.trainyard/gated.yaml', gate };
}

function trainyard(args: string[], env: Record<string, string>): TrainyardProcess {
  const p = startTrainyard(args, {
    TRAINYARD_STORE: join(engine.root, 'store'),
    TRAINYARD_WORK_DIR: join(engine.root, `work-${started.length}`),
    TRAINYARD_WORK_ROOT: join(engine.root, `work-${started.length}`),
    TRAINYARD_LOG_LEVEL: 'info',
    TRAINYARD_CONTAINER_RUN_FLAGS: `-v ${gates}:/gates`,
    ...env,
  });
  started.push(p);
  return p;
}

const containersOn = (queue: string) => containersLabelled('trainyard.queue', queue);
const stepRunsOn = (queue: string) =>
  waitUntil(`a step container on ${queue}`, async () => (await containersOn(queue)).length > 0, 180_000);
const attemptsOf = (s: RunStatus) => stepOf(s, 'work').outcome!.attempts.map((a) => a.outcome);
const containerStarts = (gate: string) => readFileSync(join(gate, 'attempts'), 'utf8').trim().split('\n').length;

/** SIGTERM, then what the operator sees: exit 0, no shutdown error, no container left on the queue. */
async function stopsCleanly(p: TrainyardProcess, queue: string): Promise<void> {
  p.child.kill('SIGTERM');
  const { code } = await p.exited;
  expect(code, p.output().slice(-3000)).toBe(0);
  expect(p.output()).not.toMatch(/IllegalStateError|Not running\. Current state/);
  expect(await containersOn(queue)).toEqual([]);
}

describe('trainyard agent told to stop', () => {
  it('lets its running step finish within the grace time, then exits 0', async () => {
    const { repo, file, gate } = gatedProject();
    const agent = trainyard(['agent', '--queue', engine.hostQueue], {
      TEMPORAL_ADDRESS: engine.address,
      TRAINYARD_SHUTDOWN_GRACE_SECONDS: '120',
    });
    await agent.waitFor(/runner agent ready/);
    const { workflowId } = await engine.start(repo, file);
    await stepRunsOn(engine.hostQueue);
    agent.child.kill('SIGTERM');
    await agent.waitFor(/stopping/);
    writeFileSync(join(gate, 'go'), '');
    const { code } = await agent.exited;
    expect(code, agent.output().slice(-3000)).toBe(0);
    const s = await engine.result(workflowId);
    expect(s.state).toBe('succeeded');
    expect(attemptsOf(s)).toEqual(['succeeded']);
    expect(containerStarts(gate)).toBe(1);
    expect(await containersOn(engine.hostQueue)).toEqual([]);
  }, 300_000);

  it('when the step outlasts the grace time: removes its container, exits 0, and another runner retries the step at once', async () => {
    const { repo, file, gate } = gatedProject();
    const first = trainyard(['agent', '--queue', engine.hostQueue], {
      TEMPORAL_ADDRESS: engine.address,
      TRAINYARD_SHUTDOWN_GRACE_SECONDS: '1',
    });
    await first.waitFor(/runner agent ready/);
    const { workflowId } = await engine.start(repo, file);
    await stepRunsOn(engine.hostQueue);
    await stopsCleanly(first, engine.hostQueue);
    writeFileSync(join(gate, 'go'), '');
    const second = trainyard(['agent', '--queue', engine.hostQueue], { TEMPORAL_ADDRESS: engine.address });
    const s = await engine.result(workflowId);
    expect(s.state).toBe('succeeded');
    expect(attemptsOf(s)).toEqual(['host_lost', 'succeeded']);
    expect(containerStarts(gate)).toBe(2);
    await stopsCleanly(second, engine.hostQueue);
  }, 300_000);
});

describe('trainyard worker told to stop', () => {
  it('hands its running step back, exits 0, and the next worker finishes the run', async () => {
    // `worker` polls the default control queue: a Temporal server of its own keeps it from other tests' runs.
    const dev = await startDevServer();
    const connection = await Connection.connect({ address: dev.address });
    try {
      const client = new Client({ connection, dataConverter });
      const { repo, file, gate } = gatedProject();
      const hostQueue = `stop-host-${engine.salt}`;
      const { pipeline } = parsePipeline(repo.git('show', `HEAD:${file}`), file);
      const runId = `stop-${engine.salt}`;
      const input: RunInput = {
        runId,
        pipeline: pipeline!,
        params: {},
        source: { kind: 'git', repoPath: repo.path, commit: repo.git('rev-parse', 'HEAD'), subdir: '' },
        trigger: { kind: 'cli', user: 'test' },
        status: { kind: 'none' },
        options: defaultRunOptions({
          localHostQueue: hostQueue,
          heartbeatTimeoutMs: TEN_MINUTES,
          statusIntervalMs: 1000,
        }),
      };
      const env = { TEMPORAL_ADDRESS: dev.address, TRAINYARD_SHUTDOWN_GRACE_SECONDS: '1' };
      const first = trainyard(['worker', '--queue', hostQueue], env);
      await first.waitFor(/worker ready/);
      await startPipelineRun(client, input, { workflowId: `test:${runId}`, reuse: 'allow-duplicate' });
      await stepRunsOn(hostQueue);
      await stopsCleanly(first, hostQueue);
      writeFileSync(join(gate, 'go'), '');
      const second = trainyard(['worker', '--queue', hostQueue], env);
      const s = await client.workflow.getHandle<typeof pipelineRun>(`test:${runId}`).result();
      expect(s.state).toBe('succeeded');
      expect(attemptsOf(s)).toEqual(['host_lost', 'succeeded']);
      await stopsCleanly(second, hostQueue);
    } finally {
      await connection.close();
      await dev.stop();
    }
  }, 300_000);
});

describe('trainyard serve told to stop', () => {
  it('hands the step of its in-process runner back, exits 0 without a shutdown error, and the next replica finishes the run', async () => {
    const { repo, file, gate } = gatedProject();
    const controlQueue = `stop-serve-${engine.salt}`;
    const hostQueue = `${controlQueue}-host`;
    const env = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TRAINYARD_BIND: '127.0.0.1',
      TRAINYARD_PORT: '0',
      GITLAB_URL: 'http://127.0.0.1:9',
      GITLAB_TOKEN: 'unused',
      GITLAB_WEBHOOK_SECRET: 'unused',
      TRAINYARD_CONTROL_QUEUE: controlQueue,
      TRAINYARD_HOST_QUEUE: hostQueue,
      TRAINYARD_SHUTDOWN_GRACE_SECONDS: '1',
    };
    const first = trainyard(['serve'], env);
    await first.waitFor(/listening on http/);
    const { workflowId } = await engine.start(repo, file, { options: { controlQueue, localHostQueue: hostQueue } });
    await stepRunsOn(hostQueue);
    await stopsCleanly(first, hostQueue);
    writeFileSync(join(gate, 'go'), '');
    const second = trainyard(['serve'], env);
    const s = await engine.result(workflowId);
    expect(s.state).toBe('succeeded');
    expect(attemptsOf(s)).toEqual(['host_lost', 'succeeded']);
    await second.waitFor(/listening on http/);
    await stopsCleanly(second, hostQueue);
  }, 300_000);
});
