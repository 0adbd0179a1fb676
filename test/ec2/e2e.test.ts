// End to end: a committed pipeline whose middle steps need a machine class runs through the
// real pipeline workflow, the real runner agent (`trainyard agent --queue Q`, one process per
// simulated instance) and real podman containers, with EC2 served by moto. The first host
// dies mid-step; the step completes on a new instance, the next step reuses that warm
// host, and no instance is left running.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeActivitiesFor } from '../../app/compute/activities.js';
import { loadComputeConfig } from '../../app/compute/config.js';
import { defaultRunOptions, getRunStatus, startPipelineRun } from '../../app/engine.js';
import { quietTemporalRuntime } from '../../app/local/run.js';
import { startWorkers, type RunningWorkers } from '../../app/worker.js';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { describeLive } from '../../activities/ec2/instances.js';
import { TAG } from '../../activities/ec2/tags.js';
import { lineageSchemaErrors } from '../lineage/schema.js';
import { createStore } from '../../activities/store/factory.js';
import { parsePipeline } from '../../pipeline/parse.js';
import type { RunInput, RunStatus } from '../../workflows/types.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';
import { HostSimulator } from './harness.js';
import { CREDENTIALS, deploymentName, motoClients, motoEnv, motoSubnets } from './moto.js';

const exec = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const deployment = deploymentName();
const controlQueue = `trainyard-e2e-${deployment}`;
const localQueue = `trainyard-e2e-local-${deployment}`;
const clients = motoClients();
const logs: string[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'trainyard-ec2-e2e-'));
const storeDir = join(scratch, 'store');
const repo = join(scratch, 'repo');

const PIPELINE = `name: e2e
machines:
  box: { instance: [m5.large, c5.xlarge], gpus: 0, spot: true, disk_gb: 20 }
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: echo rows > /outputs/data
    outputs: [data]
  train:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: sleep 6 && cat /inputs/data > /outputs/model && echo trained >> /outputs/model
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]
    timeout: 5m
    retries: 1
  evaluate:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: wc -l < /inputs/model > /outputs/score
    inputs: { model: steps.train.outputs.model }
    outputs: [score]
    timeout: 5m
`;

let connection: Connection;
let native: NativeConnection;
let client: Client;
let workers: RunningWorkers | undefined;
let sim: HostSimulator;
let cliCommand: string;

beforeAll(async () => {
  quietTemporalRuntime();
  await ensureTestImages();
  cliCommand = (await resolveContainerCli()).command;
  mkdirSync(join(repo, '.trainyard'), { recursive: true });
  writeFileSync(join(repo, '.trainyard', 'e2e.yaml'), PIPELINE);
  const git = (...args: string[]) => exec('git', ['-C', repo, ...args]);
  await git('init', '-q');
  await git('add', '.');
  await git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'pipeline');

  const subnets = await motoSubnets(clients.ec2);
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
  native = await NativeConnection.connect({ address: temporalAddress() });
  const cfg = loadComputeConfig(motoEnv(subnets, deployment, { TRAINYARD_EC2_READY_TIMEOUT_SECONDS: '120', TRAINYARD_EC2_MAX_PER_CLASS: '2' }));
  workers = await startWorkers({
    connection: native,
    store: createStore(storeDir),
    workRoot: join(scratch, 'control'),
    hostQueue: localQueue,
    controlQueue,
    extraActivities: computeActivitiesFor(cfg, { client, credentials: CREDENTIALS, pollMs: 500 }),
  });
  let n = 0;
  sim = new HostSimulator(clients.ec2, deployment, (queue) => ({
    command: process.execPath,
    args: ['--import', 'tsx', join(repoRoot, 'app', 'cli.ts'), 'agent', '--queue', queue],
    env: {
      TEMPORAL_ADDRESS: temporalAddress(),
      TRAINYARD_STORE: storeDir,
      TRAINYARD_WORK_DIR: join(scratch, `host-${++n}`),
      TRAINYARD_LOG_LEVEL: 'warn',
    },
  }), (l) => logs.push(l), cliCommand);
  sim.start();
});

afterAll(async () => {
  await sim?.stop();
  await workers?.shutdown();
  await native?.close();
  await connection?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('a pipeline with machine steps on EC2 (moto) and real agents', () => {
  it('survives a host dying mid-step: the step completes on a new instance, the next step reuses it, nothing is left running', async () => {
    const parsed = parsePipeline(PIPELINE, '.trainyard/e2e.yaml');
    expect(parsed.errors).toEqual([]);
    const commit = (await exec('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
    const runId = `e2e-${deployment}`;
    const input: RunInput = {
      runId,
      pipeline: parsed.pipeline!,
      params: {},
      source: { kind: 'git', repoPath: repo, commit, subdir: '' },
      trigger: { kind: 'cli', user: 'test' },
      status: { kind: 'none' },
      options: defaultRunOptions({ controlQueue, localHostQueue: localQueue, heartbeatTimeoutMs: 5000, noCache: true }),
    };
    const workflowId = `ec2-e2e:${runId}`;

    // The first instance dies once its step container is running.
    let killed: string | undefined;
    sim.onBoot = (b) => {
      if (killed) return;
      killed = b.instanceId;
      void (async () => {
        await waitFor(async () => (await containersOf(b.queue)).length > 0, `a step container on ${b.queue}`, 90_000);
        await sim.kill(b.instanceId);
      })();
    };

    await startPipelineRun(client, input, { workflowId, reuse: 'allow-duplicate' });
    const final = await resultWithin(workflowId, 240_000).finally(() => (sim.onBoot = undefined));
    const byName = Object.fromEntries(final.steps.map((s) => [s.name, s]));

    expect(final.state, JSON.stringify(final.steps.map((s) => [s.name, s.state, s.message]))).toBe('succeeded');
    const train = byName.train!;
    expect(train.outcome!.attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
    expect(train.host!.kind).toBe('ec2');
    expect(train.host!.instanceId).toBeDefined();
    expect(train.host!.instanceId).not.toBe(killed);
    expect(train.host!.provisioning!.at(-1)!.outcome).toBe('launched');
    // The warm host of train's second attempt ran evaluate: no third boot.
    expect(byName.evaluate!.host!.instanceId).toBe(train.host!.instanceId);
    expect(byName.evaluate!.host!.provisioning).toBeUndefined();
    expect(byName.prepare!.host!.kind).toBe('local');
    // Billed from launch to termination, charged to the steps that used the host.
    expect((train.host!.billedSeconds ?? 0) + (byName.evaluate!.host!.billedSeconds ?? 0)).toBeGreaterThanOrEqual(60);
    expect(train.host!.costUsd).toBeGreaterThan(0);

    const store = createStore(storeDir);
    const score = await store.getBytes(byName.evaluate!.outcome!.outputs.score!.digest);
    expect(score.toString().trim()).toBe('2');
    // Hosts, provisioning attempts and costs as the lineage document records them conform to its schema.
    expect(lineageSchemaErrors(await store.getRecord(`runs/${final.runId}/lineage`))).toEqual([]);

    expect(await describeLive(clients.ec2, deployment, [{ Name: `tag:${TAG.workflowId}`, Values: [workflowId] }])).toEqual([]);
    expect(sim.booted.map((b) => b.instanceId)).toHaveLength(2);
    expect((await getRunStatus(client, workflowId)).state).toBe('succeeded');
  }, 300_000);
});

/** The run's result; on timeout, what it was doing and what the hosts said. */
async function resultWithin(workflowId: string, ms: number): Promise<RunStatus> {
  const handle = client.workflow.getHandle(workflowId);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void getRunStatus(client, workflowId).then(
        (st) => reject(new Error(`run not finished after ${ms / 1000}s: ${JSON.stringify(st.steps.map((x) => [x.name, x.state, x.message, x.host?.instanceId]))}\nhosts: ${sim.booted.map((b) => b.instanceId).join(', ')}\n${logs.slice(-30).join('\n')}`)),
        (e: unknown) => reject(e as Error),
      );
    }, ms);
  });
  try {
    return (await Promise.race([handle.result(), timeout])) as RunStatus;
  } finally {
    clearTimeout(timer);
  }
}

const FANOUT = `name: fanout
machines:
  box: { instance: [m5.large], gpus: 0, spot: false, disk_gb: 20 }
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: echo rows > /outputs/data
    outputs: [data]
${[1, 2, 3].map((i) => `  train${i}:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: sleep 2 && echo ${i} > /outputs/model
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]
`).join('')}`;

describe('more machine steps ready than the class limit', () => {
  it('runs them all on at most two hosts', async () => {
    const parsed = parsePipeline(FANOUT, '.trainyard/fanout.yaml');
    expect(parsed.errors).toEqual([]);
    const commit = (await exec('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
    const runId = `fanout-${deployment}`;
    const workflowId = `ec2-e2e:${runId}`;
    const before = sim.booted.length;
    await startPipelineRun(client, {
      runId, pipeline: parsed.pipeline!, params: {}, source: { kind: 'git', repoPath: repo, commit, subdir: '' },
      trigger: { kind: 'cli', user: 'test' }, status: { kind: 'none' },
      options: defaultRunOptions({ controlQueue, localHostQueue: localQueue, heartbeatTimeoutMs: 5000, noCache: true }),
    }, { workflowId, reuse: 'allow-duplicate' });
    const final = await resultWithin(workflowId, 120_000);
    expect(final.state).toBe('succeeded');
    expect(sim.booted.length - before).toBe(2);
    expect(await describeLive(clients.ec2, deployment, [{ Name: `tag:${TAG.workflowId}`, Values: [workflowId] }])).toEqual([]);
  }, 180_000);
});

async function containersOf(queue: string): Promise<string[]> {
  try {
    const { stdout } = await exec(cliCommand, ['ps', '-q', '--filter', `label=trainyard.queue=${queue}`]);
    return stdout.split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function waitFor(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}\n${logs.slice(-30).join('\n')}`);
}
