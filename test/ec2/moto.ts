// moto-backed EC2 fixtures for the compute tests: a VPC with subnets in two AZs, settings
// scoped to a deployment name of their own (test files share one moto server).
import { randomUUID } from 'node:crypto';
import {
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { createAwsClients, type AwsClients } from '../../activities/ec2/client.js';
import type { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { EMBEDDED_PRICES } from '../../activities/ec2/pricing.js';
import { TAG } from '../../activities/ec2/tags.js';
import type { Ec2Settings } from '../../activities/ec2/types.js';
import { s3Endpoint, temporalAddress } from '../setup/services.js';

export const REGION = 'us-east-1';
export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
/** moto ships the public Amazon Linux parameters; a stand-in for the Deep Learning AMI's. */
export const PUBLIC_AMI_PARAMETER = '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64';

export function motoClients(faults?: Ec2FaultInjector): AwsClients {
  return createAwsClients({ region: REGION, endpoint: s3Endpoint(), credentials: CREDENTIALS, faults });
}

export async function motoSubnets(ec2: EC2Client): Promise<string[]> {
  const octet = 16 + Math.floor(Math.random() * 200);
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: `10.${octet}.0.0/16` }));
  const ids: string[] = [];
  for (const [i, az] of ['us-east-1a', 'us-east-1b'].entries()) {
    const s = await ec2.send(
      new CreateSubnetCommand({ VpcId: vpc.Vpc!.VpcId!, CidrBlock: `10.${octet}.${i + 1}.0/24`, AvailabilityZone: az }),
    );
    ids.push(s.Subnet!.SubnetId!);
  }
  return ids;
}

export function deploymentName(): string {
  return `test-${randomUUID().slice(0, 8)}`;
}

/** Environment for loadComputeConfig pointing at moto. */
export function motoEnv(
  subnets: string[],
  deployment: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    TRAINYARD_EC2_REGION: REGION,
    TRAINYARD_EC2_ENDPOINT: s3Endpoint(),
    TRAINYARD_EC2_SUBNETS: subnets.join(','),
    TRAINYARD_EC2_AMI: PUBLIC_AMI_PARAMETER,
    TRAINYARD_EC2_DEPLOYMENT: deployment,
    TRAINYARD_AGENT_TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_AGENT_STORE: 's3://trainyard-test/store',
    // Hosts here are moto's: nothing installs it, so any named package will do (no publishing).
    TRAINYARD_AGENT_PACKAGE: 's3://trainyard-test/store/agent/trainyard-agent.tar.gz',
    TRAINYARD_AGENT_PACKAGE_SHA256: '0'.repeat(64),
    ...extra,
  };
}

export function settings(subnets: string[], deployment: string, over: Partial<Ec2Settings> = {}): Ec2Settings {
  return {
    region: REGION,
    endpoint: s3Endpoint(),
    subnetIds: subnets,
    securityGroupIds: [],
    defaultAmi: PUBLIC_AMI_PARAMETER,
    deployment,
    maxInstances: 10,
    maxPerClass: 3,
    idleSeconds: 600,
    readyTimeoutSeconds: 120,
    leaseSlackSeconds: 3600,
    rootDeviceName: '/dev/sda1',
    agent: {
      temporalAddress: temporalAddress(),
      temporalNamespace: 'default',
      temporalTls: false,
      storeLocation: 's3://trainyard-test/store',
      agentPackage: 's3://trainyard-test/store/agent/trainyard-agent.tar.gz',
      agentPackageSha256: '0'.repeat(64),
      nodeVersion: 'v20.18.1',
      idlePoweroffSeconds: 1800,
      spotPollSeconds: 5,
    },
    prices: EMBEDDED_PRICES,
    ...over,
  };
}

export async function deploymentInstances(ec2: EC2Client, deployment: string): Promise<Instance[]> {
  const out = await ec2.send(
    new DescribeInstancesCommand({ Filters: [{ Name: `tag:${TAG.deployment}`, Values: [deployment] }] }),
  );
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
}

export function tag(i: Instance, key: string): string | undefined {
  return i.Tags?.find((t) => t.Key === key)?.Value;
}
