// Launching one host for a machine class: walk the fallback chain until an instance
// launches, recording every try. Idempotent: a retried call (the activity retried, or a
// response lost on the wire) finds the instance the earlier try launched instead of
// launching a second one — by ClientToken on EC2's side and by the launch-token tag on ours.
import { ec2Launches } from '../metrics.js';
import { createHash } from 'node:crypto';
import {
  DescribeImagesCommand,
  RunInstancesCommand,
  type EC2Client,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import type { ProvisionAttempt } from '../../model/hosttypes.js';
import { resolveAmi } from './ami.js';
import { launchCandidates, type LaunchCandidate } from './chain.js';
import type { AwsClients } from './client.js';
import { describeAwsError } from './errors.js';
import { describeLive } from './instances.js';
import { priceFor } from './pricing.js';
import { TAG, tagValue } from './tags.js';
import type { Ec2Settings, ProvisionHostInput, ProvisionHostResult } from './types.js';
import { renderUserData } from './userdata.js';

export type ProvisionErrorKind =
  /** Every candidate failed for capacity, price or support reasons. */
  | 'exhausted'
  /** A configuration or permission problem: retrying cannot help. */
  | 'config'
  /** The deployment's instance limit is reached: retry later. */
  | 'limit';

export class ProvisionError extends Error {
  constructor(
    readonly kind: ProvisionErrorKind,
    message: string,
    readonly attempts: ProvisionAttempt[],
  ) {
    super(message);
    this.name = 'ProvisionError';
  }
}

export interface ProvisionDeps {
  clients: AwsClients;
  settings: Ec2Settings;
  now?: () => Date;
  /** Waits between transient retries (tests shorten it). */
  sleep?: (ms: number) => Promise<void>;
}

/** ≤ 64 ASCII characters as EC2 requires; the same for every try of one step attempt's boot. */
export function launchToken(
  input: Pick<ProvisionHostInput, 'workflowId' | 'runId' | 'step' | 'attempt' | 'boot' | 'machineClass'>,
): string {
  const h = createHash('sha256')
    .update(JSON.stringify([input.workflowId, input.runId, input.step, input.attempt, input.boot, input.machineClass]))
    .digest('hex');
  return `ty-${h.slice(0, 40)}`;
}

const TRANSIENT_TRIES = 3;

export async function provisionHost(deps: ProvisionDeps, input: ProvisionHostInput): Promise<ProvisionHostResult> {
  const { clients, settings } = deps;
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const token = launchToken(input);
  const attempts: ProvisionAttempt[] = [];

  const earlier = await findByToken(clients.ec2, settings, token);
  if (earlier) return { ...earlier, attempts: [], found: true };

  const spec = input.spec;
  if (spec.instance.length === 0)
    throw new ProvisionError('config', `machine class ${input.machineClass} lists no instance types`, attempts);
  let imageId: string;
  try {
    imageId = await resolveAmi(clients.ssm, spec.ami ?? settings.defaultAmi);
  } catch (e) {
    if (describeAwsError(e).kind === 'transient') throw e;
    throw new ProvisionError('config', `machine class ${input.machineClass}: ${(e as Error).message}`, attempts);
  }
  const rootDevice = await rootDeviceName(clients.ec2, imageId);

  const live = await describeLive(clients.ec2, settings.deployment);
  if (live.length >= settings.maxInstances) {
    throw new ProvisionError(
      'limit',
      `${live.length} managed instances are running in deployment ${settings.deployment}; the limit (TRAINYARD_EC2_MAX_INSTANCES) is ${settings.maxInstances}`,
      attempts,
    );
  }

  const userData = Buffer.from(
    renderUserData({ queue: input.queue, region: settings.region, agent: settings.agent }),
  ).toString('base64');
  const candidates = launchCandidates(spec, settings.subnetIds);
  const unsupported = new Set<string>();

  for (const [i, c] of candidates.entries()) {
    if (unsupported.has(`${c.instanceType}/${c.subnetId ?? ''}`)) continue;
    const price = priceFor(settings.prices, c.instanceType, c.market);
    if (price === undefined) {
      throw new ProvisionError(
        'config',
        `no price for ${c.instanceType} in the price table (${settings.prices.source}); add it to the file named by TRAINYARD_EC2_PRICES`,
        attempts,
      );
    }
    const request = runRequest(settings, input, c, {
      imageId,
      rootDevice,
      userData,
      clientToken: `${token}-${i}`,
      token,
    });
    for (let t = 1; ; t++) {
      try {
        const out = await clients.ec2Launch.send(new RunInstancesCommand(request));
        const inst = out.Instances?.[0];
        if (!inst?.InstanceId) throw new ProvisionError('config', 'RunInstances returned no instance', attempts);
        attempts.push(attempt(c, 'launched', now(), inst.InstanceId));
        ec2Launches.inc({ class: input.machineClass, market: c.market });
        return {
          instanceId: inst.InstanceId,
          instanceType: c.instanceType,
          market: c.market,
          subnetId: inst.SubnetId ?? c.subnetId,
          availabilityZone: inst.Placement?.AvailabilityZone,
          imageId,
          launchedAt: (inst.LaunchTime ?? now()).toISOString(),
          pricePerHourUsd: price,
          attempts,
          found: false,
        };
      } catch (e) {
        if (e instanceof ProvisionError) throw e;
        const info = describeAwsError(e);
        if (info.kind === 'transient') {
          // The request may have launched an instance before the failure reached us.
          const launched = await findByToken(clients.ec2, settings, token);
          if (launched) {
            attempts.push(attempt(c, 'launched', now(), `${launched.instanceId} (found after ${info.code})`));
            return { ...launched, attempts, found: true };
          }
          if (t < TRANSIENT_TRIES) {
            await sleep(1000 * 2 ** (t - 1));
            continue;
          }
          attempts.push(attempt(c, 'error', now(), `${info.code}: ${info.message}`));
          // Let the activity's retry policy try the whole call again later.
          throw e;
        }
        if (info.kind === 'fatal') {
          attempts.push(attempt(c, 'error', now(), `${info.code}: ${info.message}`));
          throw new ProvisionError(
            'config',
            `launching ${c.instanceType}${c.subnetId ? ` in ${c.subnetId}` : ''} failed: ${info.code}: ${info.message}`,
            attempts,
          );
        }
        attempts.push(attempt(c, info.kind, now(), `${info.code}: ${info.message}`));
        if (info.kind === 'unsupported') unsupported.add(`${c.instanceType}/${c.subnetId ?? ''}`);
        break;
      }
    }
  }
  const tried = attempts
    .map((a) => `${a.instanceType}${a.subnetId ? `@${a.subnetId}` : ''}/${a.market}: ${a.outcome}`)
    .join(', ');
  const hint = spec.spot && !spec.on_demand_fallback ? ' (the class does not allow falling back to on-demand)' : '';
  throw new ProvisionError(
    'exhausted',
    `no capacity for machine class ${input.machineClass} after ${attempts.length} attempts${hint}: ${tried}`,
    attempts,
  );
}

function runRequest(
  settings: Ec2Settings,
  input: ProvisionHostInput,
  c: LaunchCandidate,
  x: { imageId: string; rootDevice: string; userData: string; clientToken: string; token: string },
): RunInstancesCommandInput {
  const tags = [
    { Key: 'Name', Value: tagValue(`trainyard ${input.machineClass} ${input.step}`) },
    { Key: TAG.managed, Value: 'true' },
    { Key: TAG.deployment, Value: settings.deployment },
    { Key: TAG.runId, Value: tagValue(input.runId) },
    { Key: TAG.workflowId, Value: tagValue(input.workflowId) },
    { Key: TAG.step, Value: tagValue(input.step) },
    { Key: TAG.attempt, Value: String(input.attempt) },
    { Key: TAG.machineClass, Value: tagValue(input.machineClass) },
    { Key: TAG.queue, Value: tagValue(input.queue) },
    { Key: TAG.launchToken, Value: x.token },
    { Key: TAG.leaseUntil, Value: input.leaseUntil },
  ];
  const profile = settings.instanceProfile;
  return {
    ImageId: x.imageId,
    InstanceType: c.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    ClientToken: x.clientToken,
    ...(c.subnetId ? { SubnetId: c.subnetId } : {}),
    ...(settings.securityGroupIds.length > 0 ? { SecurityGroupIds: settings.securityGroupIds } : {}),
    ...(profile ? { IamInstanceProfile: profile.startsWith('arn:') ? { Arn: profile } : { Name: profile } } : {}),
    // A host that powers itself off (idle deadline) is gone for good, and stops billing.
    InstanceInitiatedShutdownBehavior: 'terminate',
    // IMDSv2 only; hop limit 2 so processes inside containers can still reach it.
    MetadataOptions: {
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 2,
      HttpEndpoint: 'enabled',
      InstanceMetadataTags: 'enabled',
    },
    ...(c.market === 'spot'
      ? {
          InstanceMarketOptions: {
            MarketType: 'spot',
            SpotOptions: { SpotInstanceType: 'one-time', InstanceInterruptionBehavior: 'terminate' },
          },
        }
      : {}),
    BlockDeviceMappings: [
      {
        DeviceName: x.rootDevice,
        Ebs: { VolumeSize: input.spec.disk_gb, VolumeType: 'gp3', DeleteOnTermination: true, Encrypted: true },
      },
    ],
    UserData: x.userData,
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
  };
}

async function findByToken(
  ec2: EC2Client,
  settings: Ec2Settings,
  token: string,
): Promise<Omit<ProvisionHostResult, 'attempts' | 'found'> | undefined> {
  const m = (await describeLive(ec2, settings.deployment, [{ Name: `tag:${TAG.launchToken}`, Values: [token] }]))[0];
  if (!m) return undefined;
  return {
    instanceId: m.instanceId,
    instanceType: m.instanceType,
    market: m.market,
    subnetId: m.subnetId,
    availabilityZone: m.availabilityZone,
    imageId: m.imageId ?? '',
    launchedAt: m.launchedAt ?? new Date().toISOString(),
    pricePerHourUsd: priceFor(settings.prices, m.instanceType, m.market) ?? 0,
  };
}

async function rootDeviceName(ec2: EC2Client, imageId: string): Promise<string> {
  try {
    const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    return out.Images?.[0]?.RootDeviceName ?? '/dev/sda1';
  } catch (e) {
    const info = describeAwsError(e);
    if (info.kind === 'transient') throw e;
    throw new ProvisionError('config', `AMI ${imageId}: ${info.code}: ${info.message}`, []);
  }
}

function attempt(
  c: LaunchCandidate,
  outcome: ProvisionAttempt['outcome'],
  at: Date,
  message?: string,
): ProvisionAttempt {
  return {
    instanceType: c.instanceType,
    ...(c.subnetId ? { subnetId: c.subnetId } : {}),
    market: c.market,
    outcome,
    ...(message ? { message } : {}),
    at: at.toISOString(),
  };
}
