// Finding, describing and terminating the instances Trainyard manages. Every operation is
// scoped to the managed + deployment tags, so a bad id can never touch anything else.
import { ec2Instances } from '../metrics.js';
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Filter,
  type Instance,
} from '@aws-sdk/client-ec2';
import { TAG, tagsToRecord } from './tags.js';
import type { InstanceState, ManagedInstance, TerminateResult } from './types.js';

const LIVE_STATES = ['pending', 'running', 'stopping', 'stopped'];

export function managedFilters(deployment: string, extra: Filter[] = []): Filter[] {
  return [
    { Name: `tag:${TAG.managed}`, Values: ['true'] },
    { Name: `tag:${TAG.deployment}`, Values: [deployment] },
    ...extra,
  ];
}

export async function describeManaged(
  ec2: EC2Client,
  deployment: string,
  extra: Filter[] = [],
): Promise<ManagedInstance[]> {
  const out: ManagedInstance[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(
      new DescribeInstancesCommand({ Filters: managedFilters(deployment, extra), NextToken }),
    );
    for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) out.push(toManaged(i));
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

/** Live (not shutting down or terminated) managed instances. */
export async function describeLive(
  ec2: EC2Client,
  deployment: string,
  extra: Filter[] = [],
): Promise<ManagedInstance[]> {
  const live = await describeManaged(ec2, deployment, [...extra, { Name: 'instance-state-name', Values: LIVE_STATES }]);
  if (extra.length === 0) {
    // The whole deployment's live fleet: what the instance gauge shows.
    ec2Instances.reset();
    for (const i of live) ec2Instances.inc({ state: i.state, class: i.machineClass ?? 'unknown' });
  }
  return live;
}

export async function describeInstance(
  ec2: EC2Client,
  deployment: string,
  instanceId: string,
): Promise<ManagedInstance | undefined> {
  const found = await describeManaged(ec2, deployment, [{ Name: 'instance-id', Values: [instanceId] }]);
  return found[0];
}

export function toManaged(i: Instance): ManagedInstance {
  const tags = tagsToRecord(i.Tags);
  const state = (i.State?.Name ?? 'unknown') as InstanceState;
  const interruption = tags[TAG.interruption];
  const reason = i.StateReason?.Message || i.StateReason?.Code;
  const lostReason = interruption
    ? `spot interruption notice (${interruption})`
    : (state === 'shutting-down' || state === 'terminated' || state === 'stopped') && reason
      ? reason
      : undefined;
  return {
    instanceId: i.InstanceId ?? '',
    state,
    instanceType: i.InstanceType ?? '',
    imageId: i.ImageId,
    subnetId: i.SubnetId,
    availabilityZone: i.Placement?.AvailabilityZone,
    launchedAt: i.LaunchTime?.toISOString(),
    runId: tags[TAG.runId],
    workflowId: tags[TAG.workflowId],
    step: tags[TAG.step],
    machineClass: tags[TAG.machineClass],
    queue: tags[TAG.queue],
    leaseUntil: tags[TAG.leaseUntil],
    market: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
    lostReason,
  };
}

/**
 * Terminates the managed instances among `ids`; ids EC2 no longer knows, or that are not
 * managed by this deployment, are reported as 'unknown' and left alone. Idempotent.
 */
export async function terminateManaged(
  ec2: EC2Client,
  deployment: string,
  ids: string[],
  now: () => Date = () => new Date(),
): Promise<TerminateResult[]> {
  const unique = [...new Set(ids.filter((id) => /^i-[0-9a-f]+$/.test(id)))];
  if (unique.length === 0) return [];
  const known = await describeManaged(ec2, deployment, [{ Name: 'instance-id', Values: unique }]);
  const results = new Map<string, TerminateResult>();
  const toStop = known.filter((k) => k.state !== 'terminated').map((k) => k.instanceId);
  for (const k of known)
    if (k.state === 'terminated')
      results.set(k.instanceId, { instanceId: k.instanceId, state: 'terminated', at: now().toISOString() });
  for (let i = 0; i < toStop.length; i += 500) {
    const out = await ec2.send(new TerminateInstancesCommand({ InstanceIds: toStop.slice(i, i + 500) }));
    for (const t of out.TerminatingInstances ?? []) {
      if (t.InstanceId) {
        results.set(t.InstanceId, {
          instanceId: t.InstanceId,
          state: (t.CurrentState?.Name ?? 'unknown') as InstanceState,
          at: now().toISOString(),
        });
      }
    }
  }
  return unique.map((id) => results.get(id) ?? { instanceId: id, state: 'unknown', at: now().toISOString() });
}

export async function setTags(ec2: EC2Client, instanceId: string, tags: Record<string, string>): Promise<void> {
  await ec2.send(
    new CreateTagsCommand({
      Resources: [instanceId],
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    }),
  );
}
