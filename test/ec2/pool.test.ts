// The host pool and the reaper on a real Temporal server and moto's EC2. Hosts "boot" when
// the simulator sees their instance running and starts an agent process on their queue.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadComputeConfig } from '../../app/compute/config.js';
import { computeActivitiesFor } from '../../app/compute/activities.js';
import { ensureReaperSchedule } from '../../app/reaper.js';
import { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { describeLive, describeManaged, setTags } from '../../activities/ec2/instances.js';
import { provisionHost } from '../../activities/ec2/provision.js';
import { TAG } from '../../activities/ec2/tags.js';
import type { MachineSpec } from '../../pipeline/types.js';
import type { ReaperReport } from '../../workflows/reaper.js';
import { temporalAddress } from '../setup/services.js';
import { HostSimulator } from './harness.js';
import { CREDENTIALS, deploymentName, motoClients, motoEnv, motoSubnets, settings } from './moto.js';
import type { ScenarioInput, ScenarioResult } from './workflows.js';

const gpu: MachineSpec = { instance: ['g5.xlarge', 'g6.xlarge'], gpus: 1, spot: true, on_demand_fallback: true, disk_gb: 100 };
const deployment = deploymentName();
const taskQueue = `trainyard-ec2-test-${deployment}`;
const faults = new Ec2FaultInjector();
const clients = motoClients();
const logs: string[] = [];
let subnets: string[] = [];
let client: Client;
let connection: Connection;
let nativeConnection: NativeConnection;
let worker: Worker;
let workerDone: Promise<void>;
let sim: HostSimulator;

beforeAll(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  subnets = await motoSubnets(clients.ec2);
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
  nativeConnection = await NativeConnection.connect({ address: temporalAddress() });
  const cfg = loadComputeConfig(motoEnv(subnets, deployment, { TRAINYARD_EC2_IDLE_SECONDS: '4', TRAINYARD_EC2_READY_TIMEOUT_SECONDS: '60', TRAINYARD_EC2_MAX_PER_CLASS: '2' }));
  worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowsPath: fileURLToPath(new URL('./workflows.ts', import.meta.url)),
    activities: computeActivitiesFor(cfg, { client, faults, credentials: CREDENTIALS, pollMs: 300 }),
  });
  workerDone = worker.run();
  sim = new HostSimulator(clients.ec2, deployment, (queue) => ({
    command: process.execPath,
    args: ['--import', 'tsx', fileURLToPath(new URL('./fake-agent.ts', import.meta.url)), '--queue', queue],
    env: { TEMPORAL_ADDRESS: temporalAddress() },
  }), (l) => logs.push(l));
  sim.start();
});

afterAll(async () => {
  await sim?.stop();
  worker?.shutdown();
  await workerDone;
  await nativeConnection?.close();
  await connection?.close();
});

function scenario(input: Omit<ScenarioInput, 'runId' | 'machines'> & { machines?: ScenarioInput['machines'] }) {
  const id = `pool-${randomUUID().slice(0, 8)}`;
  return client.workflow.start('poolScenario', {
    taskQueue,
    workflowId: id,
    args: [{ runId: id, machines: { gpu }, ...input }],
    workflowExecutionTimeout: '5 minutes',
  });
}

async function liveOf(workflowId: string) {
  return describeLive(clients.ec2, deployment, [{ Name: `tag:${TAG.workflowId}`, Values: [workflowId] }]);
}

describe('host pool', () => {
  it('reuses one warm host for consecutive steps of a class and terminates it at the end', async () => {
    const h = await scenario({ parallel: false, steps: ['a', 'b', 'c'].map((name) => ({ name, machine: 'gpu', ms: 300 })) });
    const r = (await h.result()) as ScenarioResult;
    expect(r.summary.instancesBooted).toBe(1);
    const ids = ['a', 'b', 'c'].map((s) => r.steps[s]!.attempts[0]!.instanceId);
    expect(new Set(ids).size).toBe(1);
    expect(r.steps.a!.hosts[0]!.provisioning!.map((p) => p.outcome)).toEqual(['launched']);
    expect(r.steps.b!.hosts[0]!.provisioning).toBeUndefined();
    // Every billed second is charged to one step.
    const stepSeconds = ['a', 'b', 'c'].reduce((t, s) => t + (r.steps[s]!.hosts[0]!.billedSeconds ?? 0), 0);
    expect(stepSeconds).toBeCloseTo(r.hosts[0]!.billedSeconds!, 2);
    expect(r.hosts[0]!.billedSeconds).toBeGreaterThanOrEqual(60);
    expect(r.hosts[0]!.costUsd).toBeCloseTo((r.hosts[0]!.billedSeconds! * 0.42) / 3600, 5);
    expect(r.hosts[0]!.terminatedAt).toBeDefined();
    expect(await liveOf(h.workflowId)).toEqual([]);
  });

  it('keeps to the per-class limit: four parallel steps share two hosts', async () => {
    const h = await scenario({ parallel: true, steps: ['p1', 'p2', 'p3', 'p4'].map((name) => ({ name, machine: 'gpu', ms: 1500 })) });
    const r = (await h.result()) as ScenarioResult;
    expect(r.summary.instancesBooted).toBe(2);
    const used = new Set(Object.values(r.steps).map((s) => s.attempts[0]!.instanceId));
    expect(used.size).toBe(2);
    expect(await liveOf(h.workflowId)).toEqual([]);
  });

  it('terminates a warm host after the idle timeout instead of keeping it for a step far away', async () => {
    const h = await scenario({ parallel: false, steps: [{ name: 'first', machine: 'gpu', ms: 200 }, { name: 'later', machine: 'gpu', ms: 200, delayMs: 9000 }] });
    const r = (await h.result()) as ScenarioResult;
    expect(r.summary.instancesBooted).toBe(2);
    const first = r.hosts.find((x) => x.instanceId === r.steps.first!.attempts[0]!.instanceId)!;
    // Idle timeout 4 s: terminated long before the second step started.
    expect(Date.parse(first.terminatedAt!)).toBeLessThan(Date.parse(r.hosts.find((x) => x !== first)!.launchedAt!));
  });

  it('terminates every host when a step fails', async () => {
    const h = await scenario({ parallel: false, steps: [{ name: 'ok', machine: 'gpu', ms: 200 }, { name: 'bad', machine: 'gpu', ms: 200, fail: true }, { name: 'never', machine: 'gpu', ms: 200 }] });
    const err = await h.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(await liveOf(h.workflowId)).toEqual([]);
    expect((await describeManaged(clients.ec2, deployment, [{ Name: `tag:${TAG.workflowId}`, Values: [h.workflowId] }])).length).toBe(1);
  });

  it('terminates every host when the run is cancelled mid-step', async () => {
    const h = await scenario({ parallel: true, steps: [{ name: 'long1', machine: 'gpu', ms: 60_000 }, { name: 'long2', machine: 'gpu', ms: 60_000 }] });
    await waitFor(async () => {
      const pending = (await h.describe()).raw.pendingActivities ?? [];
      // PENDING_ACTIVITY_STATE_STARTED = 2: an agent picked the step up.
      return pending.filter((a) => a.activityType?.name === 'hostWork' && a.state === 2).length === 2;
    }, 'both steps running on their hosts');
    expect(await liveOf(h.workflowId)).toHaveLength(2);
    await h.cancel();
    const err = await h.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(await liveOf(h.workflowId)).toEqual([]);
  });

  it('retries a step whose spot host was reclaimed on a new host, and says why in the host record', async () => {
    const before = sim.booted.length;
    let firstHost: string | undefined;
    sim.onBoot = (b) => {
      if (sim.booted.length === before + 1) firstHost = b.instanceId;
    };
    try {
      const h = await scenario({ parallel: false, steps: [{ name: 'train', machine: 'gpu', ms: 8000, retries: 1 }] });
      // Reclaim the host only once the step runs on it (a loaded machine boots slowly).
      await waitFor(async () => {
        const pending = (await h.describe()).raw.pendingActivities ?? [];
        return firstHost !== undefined && pending.some((a) => a.activityType?.name === 'hostWork' && a.state === 2);
      }, 'the step running on its first host');
      // What the host's spot watch does on a notice, then the machine goes away mid-step.
      await setTags(clients.ec2, firstHost!, { [TAG.interruption]: 'terminate@2026-11-23T12:02:00Z' });
      sim.kill(firstHost!);
      const r = (await h.result()) as ScenarioResult;
      const attempts = r.steps.train!.attempts;
      expect(attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
      expect(attempts[0]!.instanceId).not.toBe(attempts[1]!.instanceId);
      expect(r.summary.instancesBooted).toBe(2);
      expect(r.steps.train!.hosts[0]!.lostReason).toBe('spot interruption notice (terminate@2026-11-23T12:02:00Z)');
      expect(r.hosts.find((x) => x.instanceId === attempts[0]!.instanceId)!.lostReason).toBe('spot interruption notice (terminate@2026-11-23T12:02:00Z)');
      expect(await liveOf(h.workflowId)).toEqual([]);
    } finally {
      sim.onBoot = undefined;
    }
  });

  it('fails the step with every provisioning attempt when no capacity is left anywhere', async () => {
    faults.add({ effect: { error: 'InsufficientInstanceCapacity' } });
    try {
      const h = await scenario({ parallel: false, steps: [{ name: 'train', machine: 'gpu', ms: 100 }] });
      const err = (await h.result().catch((e: unknown) => e)) as WorkflowFailedError;
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect(err.cause?.message).toMatch(/no capacity for machine class gpu after 8 attempts/);
      expect(await liveOf(h.workflowId)).toEqual([]);
    } finally {
      faults.clear();
    }
  });
});

describe('reaper', () => {
  it('terminates orphans (run unknown or closed, lease expired) and leaves a live run’s host alone', async () => {
    const s = settings(subnets, deployment);
    const launch = (workflowId: string, step: string, leaseUntil = new Date(Date.now() + 3_600_000).toISOString()) =>
      provisionHost({ clients, settings: s }, { runId: `r-${step}`, workflowId, step, attempt: 1, boot: 0, machineClass: 'gpu', spec: gpu, queue: `q-${step}`, leaseUntil });
    const open = await client.workflow.start('stayOpen', { taskQueue, workflowId: `open-${randomUUID().slice(0, 8)}` });
    const closed = await client.workflow.start('stayOpen', { taskQueue, workflowId: `closed-${randomUUID().slice(0, 8)}` });
    await closed.terminate('test: run is over');
    const orphan = await launch(`gone-${randomUUID().slice(0, 8)}`, 'orphan');
    const ofClosed = await launch(closed.workflowId, 'closed');
    const kept = await launch(open.workflowId, 'kept');
    const expired = await launch(open.workflowId, 'expired');
    await setTags(clients.ec2, expired.instanceId, { [TAG.leaseUntil]: new Date(Date.now() - 1000).toISOString() });

    const schedule = await ensureReaperSchedule(client, { scheduleId: `reaper-${deployment}`, taskQueue, intervalSeconds: 3600, input: { graceSeconds: 0 } });
    expect(schedule.created).toBe(true);
    expect((await ensureReaperSchedule(client, { scheduleId: schedule.scheduleId, taskQueue, intervalSeconds: 1800, input: { graceSeconds: 0 } })).created).toBe(false);
    const handle = client.schedule.getHandle(schedule.scheduleId);
    try {
      const desc = await handle.describe();
      expect(desc.spec.intervals?.[0]?.every).toBe(1_800_000);
      await handle.trigger();
      let runId: string | undefined;
      await waitFor(async () => {
        runId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
        return runId !== undefined;
      }, 'the schedule to start the reaper');
      const report = (await client.workflow.getHandle(runId!).result()) as ReaperReport;
      const byId = Object.fromEntries(report.terminated.map((t) => [t.instanceId, t.reason]));
      expect(byId).toEqual({ [orphan.instanceId]: 'run-unknown', [ofClosed.instanceId]: 'run-closed', [expired.instanceId]: 'lease-expired' });
      const live = (await describeLive(clients.ec2, deployment)).map((l) => l.instanceId);
      expect(live).toContain(kept.instanceId);
      for (const gone of [orphan, ofClosed, expired]) expect(live).not.toContain(gone.instanceId);
    } finally {
      await handle.delete();
      await open.terminate('test over');
      await client.workflow.start('reapOrphans', { taskQueue, workflowId: `reap-${deployment}`, args: [{ graceSeconds: 0 }] }).then((h) => h.result());
    }
    expect(await describeLive(clients.ec2, deployment)).toEqual([]);
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}\n${logs.slice(-20).join('\n')}`);
}
