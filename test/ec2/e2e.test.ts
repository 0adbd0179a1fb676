// End to end: committed pipelines whose steps need a machine class run through the real
// pipeline workflow, the real runner agent (`trainyard agent --queue Q`, one process per
// simulated instance) and real podman containers, with EC2 served by moto. Whatever happens
// to the run — a spot host reclaimed mid-step, a failed step, a cancel — it ends with no
// instance pending or running, as DescribeInstances tells.
import { randomUUID } from 'node:crypto';
import { DeleteParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRunStatus } from '../../app/engine.js';
import { cancelSignal } from '../../model/contracts.js';
import { setTags } from '../../activities/ec2/instances.js';
import { TAG } from '../../activities/ec2/tags.js';
import { createStore } from '../../activities/store/factory.js';
import { lineageSchemaErrors } from '../lineage/schema.js';
import type { RunStatus, StepStatus } from '../../model/types.js';
import { BUSYBOX_IMAGE } from '../fixtures/images/images.js';
import { s3Endpoint } from '../setup/services.js';
import { liveIds, startEc2Engine, waitUntil, type Ec2Engine } from './harness.js';
import { CREDENTIALS, REGION } from './moto.js';

// The server's step-secret source: SSM Parameter Store on moto, under a prefix of this file's own.
const SECRETS_PREFIX = `/trainyard-test-${randomUUID().slice(0, 8)}/`;
const ssm = new SSMClient({ region: REGION, endpoint: s3Endpoint(), credentials: CREDENTIALS });
let ec2: Ec2Engine;
beforeAll(async () => {
  ec2 = await startEc2Engine({
    env: { TRAINYARD_SECRETS_SSM_PREFIX: SECRETS_PREFIX, TRAINYARD_SECRETS_SSM_ENDPOINT: s3Endpoint() },
  });
});
afterAll(async () => {
  await ec2?.stop();
  await ssm.send(new DeleteParameterCommand({ Name: `${SECRETS_PREFIX}HF_TOKEN` })).catch(() => undefined);
  ssm.destroy();
});

const stepsOf = (s: RunStatus): Record<string, StepStatus> => Object.fromEntries(s.steps.map((x) => [x.name, x]));

const SPOT = `name: spot
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

describe('a pipeline with machine steps on EC2 (moto) and real agents', () => {
  it('survives its spot host being reclaimed mid-step: the step completes on a new instance, says why it moved, the next step reuses that host, and nothing is left running', async () => {
    // The first instance is reclaimed once its step container runs: the spot watch tags the
    // notice (what the agent's watch does on an interruption notice), then the machine is gone.
    let reclaimed: string | undefined;
    const notice = 'terminate@2026-11-23T12:02:00Z';
    ec2.sim.onBoot = (b) => {
      if (reclaimed) return;
      reclaimed = b.instanceId;
      void (async () => {
        await waitUntil(
          async () => (await ec2.containersOn(b.queue)).length > 0,
          `a step container on ${b.queue}`,
          90_000,
          ec2.logs,
        );
        await setTags(ec2.ec2, b.instanceId, { [TAG.interruption]: notice });
        await ec2.sim.kill(b.instanceId);
      })();
    };
    const booted = ec2.sim.booted.length;
    const workflowId = await ec2.start(SPOT);
    const final = await ec2.result(workflowId, 240_000).finally(() => (ec2.sim.onBoot = undefined));
    const byName = stepsOf(final);

    expect(final.state, JSON.stringify(final.steps.map((s) => [s.name, s.state, s.message]))).toBe('succeeded');
    const train = byName.train!;
    expect(train.outcome!.attempts.map((a) => a.outcome)).toEqual(['host_lost', 'succeeded']);
    // The lost attempt says what EC2 said about its host.
    expect(train.outcome!.attempts[0]!.message).toContain(`spot interruption notice (${notice})`);
    expect(train.host!.kind).toBe('ec2');
    expect(train.host!.instanceId).toBeDefined();
    expect(train.host!.instanceId).not.toBe(reclaimed);
    expect(train.host!.provisioning!.at(-1)!.outcome).toBe('launched');
    // The warm host of train's second attempt ran evaluate: no third boot.
    expect(byName.evaluate!.host!.instanceId).toBe(train.host!.instanceId);
    expect(byName.evaluate!.host!.provisioning).toBeUndefined();
    expect(byName.prepare!.host!.kind).toBe('local');
    expect(ec2.sim.booted.length - booted).toBe(2);
    // Billed from launch to termination, charged to the steps that used the host.
    expect((train.host!.billedSeconds ?? 0) + (byName.evaluate!.host!.billedSeconds ?? 0)).toBeGreaterThanOrEqual(60);
    expect(train.host!.costUsd).toBeGreaterThan(0);

    const store = createStore(ec2.storeDir);
    const score = await store.getBytes(byName.evaluate!.outcome!.outputs.score!.digest);
    expect(score.toString().trim()).toBe('2');
    // Hosts, provisioning attempts and costs as the lineage document records them conform to its schema.
    expect(lineageSchemaErrors(await store.getRecord(`runs/${final.runId}/lineage`))).toEqual([]);

    // Both instances, the reclaimed one included, are gone.
    const instances = await ec2.instancesOf(workflowId);
    expect(instances.map((i) => i.InstanceId).sort()).toEqual([reclaimed, train.host!.instanceId].sort());
    expect(liveIds(instances)).toEqual([]);
    expect((await getRunStatus(ec2.client, workflowId)).state).toBe('succeeded');
  }, 300_000);

  it('runs more machine steps than the class limit on at most two hosts', async () => {
    const fanout = `name: fanout
machines:
  box: { instance: [m5.large], gpus: 0, spot: false, disk_gb: 20 }
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: echo rows > /outputs/data
    outputs: [data]
${[1, 2, 3]
  .map(
    (i) => `  train${i}:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: sleep 2 && echo ${i} > /outputs/model
    inputs: { data: steps.prepare.outputs.data }
    outputs: [model]
`,
  )
  .join('')}`;
    const workflowId = await ec2.start(fanout);
    const final = await ec2.result(workflowId, 180_000);
    expect(final.state).toBe('succeeded');
    const instances = await ec2.instancesOf(workflowId);
    expect(instances).toHaveLength(2);
    expect(new Set(final.steps.filter((s) => s.host?.kind === 'ec2').map((s) => s.host!.instanceId))).toEqual(
      new Set(instances.map((i) => i.InstanceId)),
    );
    expect(liveIds(instances)).toEqual([]);
  }, 240_000);
});

describe('step secrets on EC2 hosts', () => {
  it("a machine step receives its secret from SSM Parameter Store, read by the agent its host's user data set up; the value is masked in the log", async () => {
    const value = `hf_${randomUUID().replace(/-/g, '')}`;
    await ssm.send(
      new PutParameterCommand({
        Name: `${SECRETS_PREFIX}HF_TOKEN`,
        Value: value,
        Type: 'SecureString',
        Overwrite: true,
      }),
    );
    const workflowId = await ec2.start(`name: secretive
machines:
  box: { instance: [m5.large], gpus: 0, spot: false, disk_gb: 20 }
steps:
  upload:
    image: ${BUSYBOX_IMAGE}
    machine: box
    secrets: [HF_TOKEN]
    run: 'echo "uploading with token=$HF_TOKEN"; printf %s "$HF_TOKEN" > /outputs/proof'
    outputs: [proof]
    timeout: 5m
`);
    const final = await ec2.result(workflowId, 240_000);
    const upload = stepsOf(final).upload!;
    expect([final.state, upload.message]).toEqual(['succeeded', undefined]);
    expect(upload.host!.kind).toBe('ec2');
    const store = createStore(ec2.storeDir);
    // The step had the value (its output is it); its log has it masked.
    expect((await store.getBytes(upload.outcome!.outputs.proof!.digest)).toString()).toBe(value);
    const log = (await store.getBytes(upload.outcome!.logDigest!)).toString();
    expect(log).toContain('uploading with token=***');
    expect(log).not.toContain(value);
    expect(liveIds(await ec2.instancesOf(workflowId))).toEqual([]);
  }, 300_000);
});

describe('clean-up at the end of a run', () => {
  it('terminates the host when a step fails, though a later machine step was still waiting for it', async () => {
    // `first` leaves its host warm for `last`; `bad` fails, so `last` never runs: only the
    // run's final clean-up can end that host.
    const failing = `name: failing
machines:
  box: { instance: [m5.large], gpus: 0, spot: false, disk_gb: 20 }
steps:
  first:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: echo one > /outputs/x
    outputs: [x]
  bad:
    image: ${BUSYBOX_IMAGE}
    run: echo "the data is bad"; exit 3
    needs: [first]
  last:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: echo never
    needs: [bad]
`;
    const workflowId = await ec2.start(failing);
    const final = await ec2.result(workflowId, 180_000);
    const byName = stepsOf(final);
    expect(final.state).toBe('failed');
    expect([byName.first!.state, byName.bad!.state, byName.last!.state]).toEqual(['succeeded', 'failed', 'skipped']);
    const instances = await ec2.instancesOf(workflowId);
    expect(instances.map((i) => i.InstanceId)).toEqual([byName.first!.host!.instanceId]);
    expect(liveIds(instances)).toEqual([]);
  }, 240_000);

  it('terminates the host when the run is cancelled mid-step, though a later machine step was still waiting for it', async () => {
    const long = `name: cancelled
machines:
  box: { instance: [m5.large], gpus: 0, spot: false, disk_gb: 20 }
steps:
  long:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: echo started; sleep 600
  after:
    image: ${BUSYBOX_IMAGE}
    machine: box
    run: echo never
    needs: [long]
`;
    const booted = ec2.sim.booted.length;
    const workflowId = await ec2.start(long);
    await waitUntil(
      async () => {
        const host = ec2.sim.booted[booted];
        return host !== undefined && (await ec2.containersOn(host.queue)).length > 0;
      },
      'the step container running on its host',
      180_000,
      ec2.logs,
    );
    const host = ec2.sim.booted[booted]!;
    expect(liveIds(await ec2.instancesOf(workflowId))).toEqual([host.instanceId]);
    await ec2.client.workflow.getHandle(workflowId).signal(cancelSignal);
    const final = await ec2.result(workflowId, 180_000);
    expect(final.state).toBe('cancelled');
    expect(stepsOf(final).long!.state).toBe('cancelled');
    expect(liveIds(await ec2.instancesOf(workflowId))).toEqual([]);
  }, 300_000);
});
