// The host pool and the reaper on a real Temporal server and moto's EC2. The pool is tested
// where it lives, inside the real pipelineRun workflow: runner agents are real `trainyard
// agent` processes that the simulator starts when moto reports an instance running (see
// harness.ts). Here warm hosts expire after 4 s of idleness. Every run ends with no
// instance pending or running, as DescribeInstances tells.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadComputeConfig } from '../../app/compute/config.js';
import { computeActivitiesFor } from '../../app/compute/activities.js';
import { ensureReaperSchedule } from '../../app/reaper.js';
import { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { setTags } from '../../activities/ec2/instances.js';
import { provisionHost } from '../../activities/ec2/provision.js';
import { TAG } from '../../activities/ec2/tags.js';
import type { MachineSpec } from '../../pipeline/types.js';
import type { reapOrphans } from '../../workflows/reaper.js';
import type { stayOpen } from './workflows.js';
import { BUSYBOX_IMAGE } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';
import { instancesTagged, liveIds, startEc2Engine, waitUntil, type Ec2Engine } from './harness.js';
import { CREDENTIALS, deploymentName, motoClients, motoEnv, motoSubnets, settings } from './moto.js';

const gpu: MachineSpec = {
  instance: ['g5.xlarge', 'g6.xlarge'],
  gpus: 1,
  spot: true,
  on_demand_fallback: true,
  disk_gb: 100,
};
const faults = new Ec2FaultInjector();
let ec2: Ec2Engine;

beforeAll(async () => {
  ec2 = await startEc2Engine({ env: { TRAINYARD_EC2_IDLE_SECONDS: '4' }, faults });
});
afterAll(async () => {
  await ec2?.stop();
});

describe('host pool, in the pipeline workflow', () => {
  it('terminates a warm host after the idle timeout instead of keeping it for a step far away', async () => {
    // `first` leaves its host warm for `later`, which comes only after a 10 s local step.
    const idle = `name: idle
machines:
  box: { instance: [m5.large], gpus: 0, spot: false, disk_gb: 20 }
steps:
  first:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: echo one > /outputs/x
    outputs: [x]
  gap:
    image: ${BUSYBOX_IMAGE}
    run: sleep 10
    needs: [first]
  later:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: echo two
    needs: [gap]
`;
    const workflowId = await ec2.start(idle);
    const final = await ec2.result(workflowId, 240_000);
    expect(final.state).toBe('succeeded');
    const [first, later] = ['first', 'later'].map((n) => final.steps.find((x) => x.name === n)!.host!);
    // Had the first host still been idle, `later` would have taken it: it booted a new one.
    expect(later!.instanceId).not.toBe(first!.instanceId);
    expect(later!.provisioning?.at(-1)?.outcome).toBe('launched');
    const instances = await ec2.instancesOf(workflowId);
    expect(instances.map((i) => i.InstanceId).sort()).toEqual([first!.instanceId, later!.instanceId].sort());
    expect(liveIds(instances)).toEqual([]);
  }, 300_000);

  it('fails the step, naming the class and the attempts made, when no capacity is left anywhere, and launches nothing', async () => {
    faults.add({ effect: { error: 'InsufficientInstanceCapacity' } });
    try {
      const noCapacity = `name: nocapacity
machines:
  gpu: { instance: [g5.xlarge, g6.xlarge], gpus: 1, spot: true, on_demand_fallback: true, disk_gb: 100 }
steps:
  train:
    image: ${BUSYBOX_IMAGE}
    machine: gpu
    run: echo never
`;
      const workflowId = await ec2.start(noCapacity);
      const final = await ec2.result(workflowId, 180_000);
      expect(final.state).toBe('failed');
      const train = final.steps.find((x) => x.name === 'train')!;
      expect(train.state).toBe('failed');
      // Two types × two subnets, spot then on-demand.
      expect(train.message).toMatch(/^no host: no capacity for machine class gpu after 8 attempts/);
      expect(await ec2.instancesOf(workflowId)).toEqual([]);
    } finally {
      faults.clear();
    }
  }, 240_000);
});

describe('reaper', () => {
  const deployment = deploymentName();
  const taskQueue = `trainyard-reaper-test-${deployment}`;
  const clients = motoClients();
  let subnets: string[] = [];
  let client: Client;
  let connection: Connection;
  let native: NativeConnection;
  let worker: Worker;
  let workerDone: Promise<void>;

  beforeAll(async () => {
    subnets = await motoSubnets(clients.ec2);
    connection = await Connection.connect({ address: temporalAddress() });
    client = new Client({ connection });
    native = await NativeConnection.connect({ address: temporalAddress() });
    const cfg = loadComputeConfig(motoEnv(subnets, deployment));
    // The reaper workflow and a stand-in for a live run (test/ec2/workflows.ts).
    worker = await Worker.create({
      connection: native,
      taskQueue,
      workflowsPath: fileURLToPath(new URL('./workflows.ts', import.meta.url)),
      activities: computeActivitiesFor(cfg, { client, credentials: CREDENTIALS, pollMs: 300 }),
    });
    workerDone = worker.run();
  });
  afterAll(async () => {
    worker?.shutdown();
    await workerDone;
    await native?.close();
    await connection?.close();
  });

  it('terminates orphans (run unknown or closed, lease expired) and leaves a live run’s host alone', async () => {
    const s = settings(subnets, deployment);
    const launch = (workflowId: string, step: string, leaseUntil = new Date(Date.now() + 3_600_000).toISOString()) =>
      provisionHost(
        { clients, settings: s },
        {
          runId: `r-${step}`,
          workflowId,
          step,
          attempt: 1,
          boot: 0,
          machineClass: 'gpu',
          spec: gpu,
          queue: `q-${step}`,
          leaseUntil,
        },
      );
    const open = await client.workflow.start<typeof stayOpen>('stayOpen', {
      taskQueue,
      workflowId: `open-${randomUUID().slice(0, 8)}`,
    });
    const closed = await client.workflow.start<typeof stayOpen>('stayOpen', {
      taskQueue,
      workflowId: `closed-${randomUUID().slice(0, 8)}`,
    });
    await closed.terminate('test: run is over');
    const orphan = await launch(`gone-${randomUUID().slice(0, 8)}`, 'orphan');
    const ofClosed = await launch(closed.workflowId, 'closed');
    const kept = await launch(open.workflowId, 'kept');
    const expired = await launch(open.workflowId, 'expired');
    await setTags(clients.ec2, expired.instanceId, { [TAG.leaseUntil]: new Date(Date.now() - 1000).toISOString() });

    const schedule = await ensureReaperSchedule(client, {
      scheduleId: `reaper-${deployment}`,
      taskQueue,
      intervalSeconds: 3600,
      input: { graceSeconds: 0 },
    });
    expect(schedule.created).toBe(true);
    expect(
      (
        await ensureReaperSchedule(client, {
          scheduleId: schedule.scheduleId,
          taskQueue,
          intervalSeconds: 1800,
          input: { graceSeconds: 0 },
        })
      ).created,
    ).toBe(false);
    const handle = client.schedule.getHandle(schedule.scheduleId);
    try {
      const desc = await handle.describe();
      expect(desc.spec.intervals?.[0]?.every).toBe(1_800_000);
      await handle.trigger();
      let runId: string | undefined;
      await waitUntil(
        async () => {
          runId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
          return runId !== undefined;
        },
        'the schedule to start the reaper',
        60_000,
      );
      const report = await client.workflow.getHandle<typeof reapOrphans>(runId!).result();
      const byId = Object.fromEntries(report.terminated.map((t) => [t.instanceId, t.reason]));
      expect(byId).toEqual({
        [orphan.instanceId]: 'run-unknown',
        [ofClosed.instanceId]: 'run-closed',
        [expired.instanceId]: 'lease-expired',
      });
      const live = liveIds(await instancesTagged(clients.ec2, TAG.deployment, deployment));
      expect(live).toEqual([kept.instanceId]);
    } finally {
      await handle.delete();
      await open.terminate('test over');
      await client.workflow
        .start<typeof reapOrphans>('reapOrphans', {
          taskQueue,
          workflowId: `reap-${deployment}`,
          args: [{ graceSeconds: 0 }],
        })
        .then((h) => h.result());
    }
    expect(liveIds(await instancesTagged(clients.ec2, TAG.deployment, deployment))).toEqual([]);
  });
});
