// Shapes shared by the EC2 activities, the server configuration and the workflow-side
// host pool. Types only: workflows/hostpool.ts imports them.
import type { Ec2MachineSpec } from '../../pipeline/types.js';
import type { ProvisionAttempt } from '../../model/hosttypes.js';

/** Hourly prices of one instance type, USD. */
export interface InstancePrice {
  onDemand: number;
  /** Typical spot price; absent = estimate spot at on-demand (never under-estimate cost). */
  spot?: number;
}

export interface PriceTable {
  region: string;
  /** Where the figures come from, shown in reports ("embedded estimate 2025-…" or a file path). */
  source: string;
  prices: Record<string, InstancePrice>;
}

/** What the runner agent on a host needs to reach the control plane. Never credentials. */
export interface AgentSettings {
  temporalAddress: string;
  temporalNamespace: string;
  temporalTls: boolean;
  /** SSM SecureString holding a Temporal API key; fetched on the host through the instance profile. */
  temporalApiKeySsmParameter?: string;
  /** Artifact store the host reads inputs from and writes outputs to (s3://bucket/prefix). */
  storeLocation: string;
  /**
   * The runner agent package the host installs (activities/ec2/agentpackage.ts): an s3:// or
   * https:// URL of the .tar.gz. Empty = this version's package in the agent store, which the
   * control worker publishes (resolved before user data is rendered).
   */
  agentPackage: string;
  /** SHA-256 (64 hex) the package must have; the host refuses anything else. Set with agentPackage. */
  agentPackageSha256?: string;
  /** A package built ahead (the container image's) that the worker publishes instead of building one. */
  agentPackageFile?: string;
  /** Node.js release installed when the AMI has no Node ≥ 20 (e.g. v20.18.1). */
  nodeVersion: string;
  /** Last resort: a host with no container running for this long powers itself off (and terminates). */
  idlePoweroffSeconds: number;
  /** How often the host asks IMDSv2 for a spot interruption notice. */
  spotPollSeconds: number;
  /**
   * Where the host's agent reads step secrets: the server's AWS SSM Parameter Store source
   * (TRAINYARD_SECRETS_SSM_PREFIX / _REGION / _ENDPOINT), read on the host with the instance
   * profile (which then needs ssm:GetParameters on the prefix). Absent = the host has no
   * secret source, and a step with `secrets` fails there with the missing-secret message.
   */
  secretsSsm?: { prefix: string; region: string; endpoint?: string };
}

/** Server-side EC2 placement and limits. A pipeline file can never set these. */
export interface Ec2Settings {
  region: string;
  /** Custom endpoint (moto, LocalStack, VPC endpoint). */
  endpoint?: string;
  /** Subnets in preference order; spread them over several AZs for capacity. */
  subnetIds: string[];
  securityGroupIds: string[];
  /** Instance profile name or ARN the hosts run as. */
  instanceProfile?: string;
  /** AMI id or SSM parameter name used when a machine class names none. */
  defaultAmi: string;
  deployment: string;
  /** Running managed instances allowed at once in this deployment (all runs). */
  maxInstances: number;
  /** Default per-class concurrency inside one run. */
  maxPerClass: number;
  /** A warm host with no step for this long is terminated by its run. */
  idleSeconds: number;
  /** A launched host whose agent has not polled its queue by then is given up. */
  readyTimeoutSeconds: number;
  /** Lease slack added to a step's timeout; the reaper terminates hosts past their lease. */
  leaseSlackSeconds: number;
  /** Root volume device name of the AMIs in use (DLAMIs: /dev/sda1). */
  rootDeviceName: string;
  agent: AgentSettings;
  prices: PriceTable;
}

export interface ProvisionHostInput {
  runId: string;
  workflowId: string;
  step: string;
  attempt: number;
  /** Counts boots for this step attempt (a host that never became ready is replaced). */
  boot: number;
  machineClass: string;
  spec: Ec2MachineSpec;
  queue: string;
  /** ISO time; see Ec2Settings.leaseSlackSeconds. */
  leaseUntil: string;
}

export interface ProvisionHostResult {
  instanceId: string;
  instanceType: string;
  market: 'spot' | 'on-demand';
  subnetId?: string;
  availabilityZone?: string;
  imageId: string;
  launchedAt: string;
  pricePerHourUsd: number;
  attempts: ProvisionAttempt[];
  /** True when an earlier try of this same call had already launched it. */
  found: boolean;
}

export interface WaitReadyInput {
  queue: string;
  instanceId: string;
  timeoutSeconds: number;
}

export type InstanceState = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped' | 'unknown';

export interface ManagedInstance {
  instanceId: string;
  state: InstanceState;
  instanceType: string;
  imageId?: string;
  subnetId?: string;
  availabilityZone?: string;
  launchedAt?: string;
  runId?: string;
  workflowId?: string;
  step?: string;
  machineClass?: string;
  queue?: string;
  leaseUntil?: string;
  market: 'spot' | 'on-demand';
  /** EC2's state reason (e.g. Server.SpotInstanceTermination) or the host's interruption tag. */
  lostReason?: string;
}

export interface TerminateInput {
  instanceIds: string[];
  reason: string;
}

export interface TerminateResult {
  instanceId: string;
  /** State after the call; 'unknown' when EC2 no longer knows the id. */
  state: InstanceState;
  at: string;
}

export interface TerminateRunInput {
  runId: string;
  workflowId: string;
  /** Ids the pool knows of; tagged instances of the run are found and included too. */
  instanceIds: string[];
  reason: string;
}

/** Server-side pool limits the workflow asks for once (policy stays out of repo content). */
export interface PoolSettings {
  maxPerClass: Record<string, number>;
  defaultMaxPerClass: number;
  idleSeconds: number;
  readyTimeoutSeconds: number;
  leaseSlackSeconds: number;
}

export type WorkflowState = 'open' | 'closed' | 'unknown';
