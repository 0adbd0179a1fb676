// EC2 and SSM clients for the configured region/endpoint. Credentials come from the
// default AWS provider chain (environment, profile, IRSA, instance role): never from config.
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Ec2FaultInjector } from './faults.js';

export interface AwsClients {
  ec2: EC2Client;
  /**
   * For RunInstances only: no SDK-level retries, so that after a lost response the
   * provisioning code looks for the instance by its token before sending again.
   */
  ec2Launch: EC2Client;
  ssm: SSMClient;
}

export interface ClientOptions {
  region: string;
  endpoint?: string;
  /** Static credentials, for tests against moto only. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  faults?: Ec2FaultInjector;
}

export function createAwsClients(opts: ClientOptions): AwsClients {
  const base = {
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  };
  const ec2 = new EC2Client(base);
  const ec2Launch = new EC2Client({ ...base, maxAttempts: 1 });
  if (opts.faults) {
    opts.faults.attach(ec2);
    opts.faults.attach(ec2Launch);
  }
  return { ec2, ec2Launch, ssm: new SSMClient(base) };
}
