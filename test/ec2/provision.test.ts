// Provisioning against moto's EC2: what a launched instance looks like, idempotency under a
// lost response, and the fallback chain under injected capacity errors.
import {
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { parse } from 'yaml';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { describeLive, terminateManaged } from '../../activities/ec2/instances.js';
import { ProvisionError, launchToken, provisionHost } from '../../activities/ec2/provision.js';
import { TAG } from '../../activities/ec2/tags.js';
import type { ProvisionHostInput } from '../../activities/ec2/types.js';
import type { Ec2MachineSpec } from '../../pipeline/types.js';
import {
  PUBLIC_AMI_PARAMETER,
  deploymentInstances,
  deploymentName,
  motoClients,
  motoSubnets,
  settings,
  tag,
} from './moto.js';

const faults = new Ec2FaultInjector();
const clients = motoClients(faults);
let subnets: string[] = [];
const noWait = async (): Promise<void> => {};

const gpu: Ec2MachineSpec = {
  instance: ['g5.xlarge', 'g6.xlarge'],
  gpus: 1,
  spot: true,
  on_demand_fallback: true,
  disk_gb: 120,
};

function input(over: Partial<ProvisionHostInput> = {}): ProvisionHostInput {
  return {
    runId: 'run-1',
    workflowId: 'wf-1',
    step: 'train',
    attempt: 1,
    boot: 0,
    machineClass: 'gpu',
    spec: gpu,
    queue: 'trainyard-host-test-gpu-1',
    leaseUntil: new Date(Date.now() + 3_600_000).toISOString(),
    ...over,
  };
}

beforeAll(async () => {
  subnets = await motoSubnets(clients.ec2);
});
beforeEach(() => faults.clear());

describe('a launched host', () => {
  it('has the run tags, IMDSv2 with hop limit 2, terminate-on-shutdown, an encrypted root disk and agent user data', async () => {
    const deployment = deploymentName();
    const r = await provisionHost({ clients, settings: settings(subnets, deployment), sleep: noWait }, input());
    expect(r.found).toBe(false);
    expect(r.imageId).toMatch(/^ami-/);
    expect(r.pricePerHourUsd).toBe(0.42);
    const [inst] = await deploymentInstances(clients.ec2, deployment);
    expect(inst?.InstanceId).toBe(r.instanceId);
    expect(tag(inst!, TAG.managed)).toBe('true');
    expect(tag(inst!, TAG.runId)).toBe('run-1');
    expect(tag(inst!, TAG.workflowId)).toBe('wf-1');
    expect(tag(inst!, TAG.step)).toBe('train');
    expect(tag(inst!, TAG.attempt)).toBe('1');
    expect(tag(inst!, TAG.queue)).toBe('trainyard-host-test-gpu-1');
    expect(tag(inst!, TAG.launchToken)).toBe(launchToken(input()));
    expect(inst!.MetadataOptions).toMatchObject({
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 2,
      HttpEndpoint: 'enabled',
    });
    expect(inst!.InstanceLifecycle).toBe('spot');
    expect(inst!.InstanceType).toBe('g5.xlarge');
    expect(inst!.SubnetId).toBe(subnets[0]);
    expect(inst!.ClientToken).toBe(`${launchToken(input())}-0`);

    const shutdown = await clients.ec2.send(
      new DescribeInstanceAttributeCommand({
        InstanceId: r.instanceId,
        Attribute: 'instanceInitiatedShutdownBehavior',
      }),
    );
    expect(shutdown.InstanceInitiatedShutdownBehavior?.Value).toBe('terminate');
    const ud = await clients.ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: r.instanceId, Attribute: 'userData' }),
    );
    const text = Buffer.from(ud.UserData!.Value!, 'base64').toString('utf8');
    expect(Buffer.byteLength(text)).toBeLessThan(16 * 1024);
    expect(text.startsWith('#cloud-config\n')).toBe(true);
    const env = (parse(text) as { write_files: { path: string; content: string }[] }).write_files.find(
      (f) => f.path === '/etc/trainyard/agent.env',
    );
    expect(env?.content).toContain('TRAINYARD_AGENT_QUEUE=trainyard-host-test-gpu-1\n');
    expect(text).not.toMatch(/AKIA|aws_secret_access_key|AWS_SECRET_ACCESS_KEY|secretAccessKey/i);

    // The root disk as EC2 describes the volume: encrypted gp3 of the class's disk_gb, at the
    // AMI's root device, deleted with the instance.
    const image = (await clients.ec2.send(new DescribeImagesCommand({ ImageIds: [r.imageId] }))).Images![0]!;
    const root = inst!.BlockDeviceMappings?.find((m) => m.DeviceName === image.RootDeviceName);
    expect(root?.Ebs?.DeleteOnTermination).toBe(true);
    const { Volumes } = await clients.ec2.send(new DescribeVolumesCommand({ VolumeIds: [root!.Ebs!.VolumeId!] }));
    expect(Volumes).toHaveLength(1);
    expect(Volumes![0]).toMatchObject({ Encrypted: true, Size: gpu.disk_gb, VolumeType: 'gp3' });
    expect(Volumes![0]!.Attachments).toMatchObject([{ InstanceId: r.instanceId, Device: image.RootDeviceName }]);
    await terminateManaged(clients.ec2, deployment, [r.instanceId]);
  });

  it('resolves the AMI from an SSM public parameter and records the concrete id', async () => {
    const deployment = deploymentName();
    const r = await provisionHost({ clients, settings: settings(subnets, deployment), sleep: noWait }, input());
    // The id the parameter holds, as SSM answers it, is what was launched and what the result records.
    const param = await clients.ssm.send(new GetParameterCommand({ Name: PUBLIC_AMI_PARAMETER }));
    expect(param.Parameter?.Value).toMatch(/^ami-[0-9a-f]+$/);
    expect(r.imageId).toBe(param.Parameter!.Value);
    const [inst] = await deploymentInstances(clients.ec2, deployment);
    expect(inst!.ImageId).toBe(param.Parameter!.Value);
    await terminateManaged(clients.ec2, deployment, [r.instanceId]);
  });
});

describe('idempotency', () => {
  it('a response lost after EC2 launched the instance does not launch a second one, and a retried call returns the same instance', async () => {
    const deployment = deploymentName();
    faults.add({ effect: { dropResponse: true }, times: 1 });
    const deps = { clients, settings: settings(subnets, deployment), sleep: noWait };
    const first = await provisionHost(deps, input());
    expect(faults.hits.map((h) => h.effect)).toEqual(['dropResponse']);
    expect(first.found).toBe(true);
    // The activity retried from scratch (e.g. the worker died before reporting).
    const again = await provisionHost(deps, input());
    expect(again.instanceId).toBe(first.instanceId);
    expect(again.found).toBe(true);
    const live = await describeLive(clients.ec2, deployment);
    expect(live.map((l) => l.instanceId)).toEqual([first.instanceId]);
    // Only the one RunInstances call reached EC2.
    expect(faults.launches).toHaveLength(1);
    // A different attempt of the step is a different launch.
    const other = await provisionHost(deps, input({ attempt: 2 }));
    expect(other.instanceId).not.toBe(first.instanceId);
    await terminateManaged(clients.ec2, deployment, [first.instanceId, other.instanceId]);
  });
});

describe('fallback chain', () => {
  it('moves on across subnets and instance types past capacity, unsupported and price errors, recording each attempt', async () => {
    const deployment = deploymentName();
    const [a, b] = subnets as [string, string];
    faults
      .add({ instanceType: 'g5.xlarge', subnetId: a, effect: { error: 'InsufficientInstanceCapacity' } })
      .add({ instanceType: 'g5.xlarge', subnetId: b, effect: { error: 'Unsupported' } })
      .add({ instanceType: 'g6.xlarge', subnetId: a, market: 'spot', effect: { error: 'SpotMaxPriceTooLow' } });
    const r = await provisionHost({ clients, settings: settings(subnets, deployment), sleep: noWait }, input());
    expect(r.attempts.map((x) => [x.instanceType, x.subnetId, x.market, x.outcome])).toEqual([
      ['g5.xlarge', a, 'spot', 'capacity'],
      ['g5.xlarge', b, 'spot', 'unsupported'],
      ['g6.xlarge', a, 'spot', 'price'],
      ['g6.xlarge', b, 'spot', 'launched'],
    ]);
    expect(r.attempts[0]!.message).toContain('InsufficientInstanceCapacity');
    expect(r).toMatchObject({ instanceType: 'g6.xlarge', market: 'spot', subnetId: b, pricePerHourUsd: 0.36 });
    const live = await describeLive(clients.ec2, deployment);
    expect(live).toHaveLength(1);
    expect(live[0]).toMatchObject({ instanceType: 'g6.xlarge', market: 'spot' });
    await terminateManaged(clients.ec2, deployment, [r.instanceId]);
  });

  it('falls back from spot to on-demand when the class allows it, skipping pairs EC2 called unsupported', async () => {
    const deployment = deploymentName();
    const [a] = subnets as [string, string];
    faults
      .add({ market: 'spot', instanceType: 'g5.xlarge', subnetId: a, effect: { error: 'Unsupported' } })
      .add({ market: 'spot', effect: { error: 'MaxSpotInstanceCountExceeded' } });
    const r = await provisionHost({ clients, settings: settings(subnets, deployment), sleep: noWait }, input());
    expect(r.market).toBe('on-demand');
    expect(r.attempts.filter((x) => x.market === 'spot').map((x) => x.outcome)).toEqual([
      'unsupported',
      'capacity',
      'capacity',
      'capacity',
    ]);
    // g5.xlarge is unsupported in subnet a whatever the market, so on-demand starts in subnet b.
    expect(
      r.attempts.filter((x) => x.market === 'on-demand').map((x) => [x.instanceType, x.subnetId, x.outcome]),
    ).toEqual([['g5.xlarge', subnets[1], 'launched']]);
    expect(r.pricePerHourUsd).toBe(1.006);
    const live = await describeLive(clients.ec2, deployment);
    expect(live.map((l) => l.market)).toEqual(['on-demand']);
    await terminateManaged(clients.ec2, deployment, [r.instanceId]);
  });

  it('fails clearly when every candidate is exhausted, and launches nothing', async () => {
    const deployment = deploymentName();
    faults.add({ effect: { error: 'InsufficientInstanceCapacity' } });
    const spotOnly: Ec2MachineSpec = { ...gpu, on_demand_fallback: false };
    const err = await provisionHost(
      { clients, settings: settings(subnets, deployment), sleep: noWait },
      input({ spec: spotOnly }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvisionError);
    const pe = err as ProvisionError;
    expect(pe.kind).toBe('exhausted');
    expect(pe.attempts).toHaveLength(4);
    expect(pe.attempts.every((x) => x.outcome === 'capacity' && x.market === 'spot')).toBe(true);
    expect(pe.message).toMatch(
      /no capacity for machine class gpu after 4 attempts \(the class does not allow falling back to on-demand\)/,
    );
    expect(await describeLive(clients.ec2, deployment)).toHaveLength(0);
  });

  it('stops at once on a configuration error instead of trying other candidates', async () => {
    const deployment = deploymentName();
    faults.add({
      effect: {
        error: 'UnauthorizedOperation',
        message: 'You are not authorized to perform this operation.',
        status: 403,
      },
    });
    const err = (await provisionHost(
      { clients, settings: settings(subnets, deployment), sleep: noWait },
      input(),
    ).catch((e: unknown) => e)) as ProvisionError;
    expect(err.kind).toBe('config');
    expect(err.attempts).toHaveLength(1);
    expect(err.message).toContain('UnauthorizedOperation');
  });

  it('refuses an AMI parameter that does not exist, naming it', async () => {
    const deployment = deploymentName();
    const err = (await provisionHost(
      { clients, settings: settings(subnets, deployment), sleep: noWait },
      input({ spec: { ...gpu, ami: '/aws/service/nope/ami-id' } }),
    ).catch((e: unknown) => e)) as ProvisionError;
    expect(err.kind).toBe('config');
    expect(err.message).toContain('/aws/service/nope/ami-id');
  });

  it('waits (retryable) when the deployment-wide instance limit is reached', async () => {
    const deployment = deploymentName();
    const s = settings(subnets, deployment, { maxInstances: 1 });
    const one = await provisionHost({ clients, settings: s, sleep: noWait }, input());
    const err = (await provisionHost({ clients, settings: s, sleep: noWait }, input({ step: 'eval' })).catch(
      (e: unknown) => e,
    )) as ProvisionError;
    expect(err.kind).toBe('limit');
    expect(err.message).toContain('TRAINYARD_EC2_MAX_INSTANCES');
    await terminateManaged(clients.ec2, deployment, [one.instanceId]);
  });
});

describe('terminate', () => {
  it('terminates only instances managed by this deployment', async () => {
    const deployment = deploymentName();
    const mine = await provisionHost({ clients, settings: settings(subnets, deployment), sleep: noWait }, input());
    const foreign = await clients.ec2.send(
      new RunInstancesCommand({ ImageId: mine.imageId, MinCount: 1, MaxCount: 1, InstanceType: 't3.medium' }),
    );
    const foreignId = foreign.Instances![0]!.InstanceId!;
    const out = await terminateManaged(clients.ec2, deployment, [mine.instanceId, foreignId, 'i-0000000000000dead']);
    expect(out.find((o) => o.instanceId === mine.instanceId)?.state).toMatch(/shutting-down|terminated/);
    expect(out.find((o) => o.instanceId === foreignId)?.state).toBe('unknown');
    const again = await terminateManaged(clients.ec2, deployment, [mine.instanceId]);
    expect(again[0]?.state).toMatch(/shutting-down|terminated/);
    const { DescribeInstancesCommand, TerminateInstancesCommand } = await import('@aws-sdk/client-ec2');
    const f = await clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [foreignId] }));
    expect(f.Reservations![0]!.Instances![0]!.State?.Name).toBe('running');
    await clients.ec2.send(new TerminateInstancesCommand({ InstanceIds: [foreignId] }));
  });
});
