// Server-side compute configuration, read once at start from the environment. Every
// problem is reported at once, each naming the variable to fix. Nothing here can be set
// from a repository: a pull request cannot raise its own limits.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { isAmiReference } from '../../activities/ec2/ami.js';
import { EMBEDDED_PRICES, parsePriceTable } from '../../activities/ec2/pricing.js';
import type { AgentSettings, Ec2Settings, PriceTable } from '../../activities/ec2/types.js';
import type { KubernetesSettings } from '../../activities/k8s/types.js';
import { loadKubernetesSettings } from './kubernetes.js';

export interface ComputePolicy {
  /** Instance type globs (`g5.*`, `g6.xlarge`); a pipeline may use only these. */
  allowedInstanceTypes: string[];
  /** Machine class names a pipeline may declare; undefined = any name. */
  allowedClasses?: string[];
  /** null = no limit (the same variables as the intake's policy: TRAINYARD_MAX_GPUS, TRAINYARD_MAX_COST_USD). */
  maxGpusPerMachine: number | null;
  /** GPUs one run may hold at once (class GPUs × per-class concurrency, summed). */
  maxGpusPerRun: number | null;
  /** Worst-case compute cost of one run (every machine step to its timeout, every retry). */
  maxCostPerRunUsd: number | null;
  maxDiskGb: number | null;
  /** Per-class concurrency inside one run; `*` is the default. */
  maxPerClass: Record<string, number>;
}

export interface ComputeConfig {
  /** null when EC2 is not configured: pipelines with `machine:` steps are refused. */
  ec2: Ec2Settings | null;
  /** null when Kubernetes is not configured (TRAINYARD_K8S_CONFIG unset): `kubernetes:` machines are refused. */
  kubernetes: KubernetesSettings | null;
  policy: ComputePolicy;
  prices: PriceTable;
  /** Things that work but are probably not meant (e.g. hosts pointed at a loopback Temporal address). */
  warnings: string[];
}

export class ComputeConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`compute configuration is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ComputeConfigError';
  }
}

/** Current Deep Learning Base AMI (NVIDIA driver, Docker, NVIDIA container toolkit), Ubuntu 22.04. */
export const DEFAULT_AMI_PARAMETER = '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id';

type Env = Record<string, string | undefined>;

export function loadComputeConfig(env: Env = process.env): ComputeConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const r = new Reader(env, problems);

  const pricesFile = r.str('TRAINYARD_EC2_PRICES');
  let prices = EMBEDDED_PRICES;
  if (pricesFile) {
    try {
      prices = parsePriceTable(readFileSync(pricesFile, 'utf8'), pricesFile);
    } catch (e) {
      problems.push(`TRAINYARD_EC2_PRICES: ${(e as Error).message}`);
    }
  }

  const maxPerClass = r.perClass('TRAINYARD_EC2_MAX_PER_CLASS', 3);
  const policy: ComputePolicy = {
    allowedInstanceTypes: r.list('TRAINYARD_ALLOWED_INSTANCE_TYPES', /^[a-z0-9*?.\-[\]{},]+$/, 'an instance type or glob like g5.*') ?? Object.keys(prices.prices),
    allowedClasses: r.list('TRAINYARD_ALLOWED_MACHINE_CLASSES', /^[A-Za-z0-9_-]+$/, 'a machine class name'),
    maxGpusPerMachine: r.optInt('TRAINYARD_MAX_GPUS', 0),
    maxGpusPerRun: r.optInt('TRAINYARD_MAX_GPUS_PER_RUN', 0),
    maxCostPerRunUsd: r.optNum('TRAINYARD_MAX_COST_USD'),
    maxDiskGb: r.optInt('TRAINYARD_MAX_DISK_GB', 1),
    maxPerClass,
  };

  const subnets = r.list('TRAINYARD_EC2_SUBNETS', /^subnet-[0-9a-f]{8,17}$/, 'a subnet id (subnet-…)');
  let ec2: Ec2Settings | null = null;
  if (subnets !== undefined) {
    const region = r.str('TRAINYARD_EC2_REGION') ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (!region) problems.push('TRAINYARD_EC2_REGION: not set (nor AWS_REGION); EC2 needs a region');
    else if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) problems.push(`TRAINYARD_EC2_REGION: "${region}" is not an AWS region like us-east-1`);
    if (region && prices.region !== region && pricesFile) {
      warnings.push(`TRAINYARD_EC2_PRICES is for ${prices.region} but instances launch in ${region}`);
    }
    const endpoint = r.str('TRAINYARD_EC2_ENDPOINT');
    if (endpoint && !/^https?:\/\/[^\s]+$/.test(endpoint)) problems.push(`TRAINYARD_EC2_ENDPOINT: "${endpoint}" is not an http(s) URL`);
    const profile = r.str('TRAINYARD_EC2_INSTANCE_PROFILE');
    if (profile && !/^(arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]+|[\w+=,.@-]{1,128})$/.test(profile)) {
      problems.push(`TRAINYARD_EC2_INSTANCE_PROFILE: "${profile}" is not an instance profile name or ARN`);
    }
    const ami = r.str('TRAINYARD_EC2_AMI') ?? DEFAULT_AMI_PARAMETER;
    if (!isAmiReference(ami)) problems.push(`TRAINYARD_EC2_AMI: "${ami}" is neither an AMI id (ami-…) nor an SSM parameter name (/aws/service/…)`);
    const deployment = r.str('TRAINYARD_EC2_DEPLOYMENT') ?? 'default';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(deployment)) problems.push(`TRAINYARD_EC2_DEPLOYMENT: "${deployment}" must be 1-64 of A-Z a-z 0-9 _ . -`);
    const idleSeconds = r.int('TRAINYARD_EC2_IDLE_SECONDS', 600, 0);
    const agent = loadAgentSettings(env, r, problems, warnings);
    if (agent.idlePoweroffSeconds < idleSeconds + 300) {
      problems.push(`TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS: ${agent.idlePoweroffSeconds} must be at least TRAINYARD_EC2_IDLE_SECONDS + 300 (${idleSeconds + 300}): it is the host's last resort, after the run's own idle timeout`);
    }
    if (subnets.length === 0) problems.push('TRAINYARD_EC2_SUBNETS: empty; list one subnet per Availability Zone you want to use');
    ec2 = {
      region: region ?? '',
      ...(endpoint ? { endpoint } : {}),
      subnetIds: subnets,
      securityGroupIds: r.list('TRAINYARD_EC2_SECURITY_GROUPS', /^sg-[0-9a-f]{8,17}$/, 'a security group id (sg-…)') ?? [],
      ...(profile ? { instanceProfile: profile } : {}),
      defaultAmi: ami,
      deployment,
      maxInstances: r.int('TRAINYARD_EC2_MAX_INSTANCES', 8, 1),
      maxPerClass: maxPerClass['*'] ?? 3,
      idleSeconds,
      readyTimeoutSeconds: r.int('TRAINYARD_EC2_READY_TIMEOUT_SECONDS', 900, 30),
      leaseSlackSeconds: r.int('TRAINYARD_EC2_LEASE_SLACK_SECONDS', 3600, 60),
      rootDeviceName: '/dev/sda1',
      agent,
      prices,
    };
  } else {
    for (const k of ['TRAINYARD_EC2_REGION', 'TRAINYARD_EC2_SECURITY_GROUPS', 'TRAINYARD_EC2_INSTANCE_PROFILE', 'TRAINYARD_EC2_AMI']) {
      if (env[k]) warnings.push(`${k} is set but TRAINYARD_EC2_SUBNETS is not, so EC2 is off`);
    }
  }

  const kubernetes = loadKubernetesSettings(env, problems);

  if (problems.length > 0) throw new ComputeConfigError(problems);
  return { ec2, kubernetes, policy, prices, warnings };
}

function loadAgentSettings(env: Env, r: Reader, problems: string[], warnings: string[]): AgentSettings {
  const address = r.str('TRAINYARD_AGENT_TEMPORAL_ADDRESS') ?? env.TEMPORAL_ADDRESS;
  if (!address) problems.push('TRAINYARD_AGENT_TEMPORAL_ADDRESS: not set (nor TEMPORAL_ADDRESS); hosts need the Temporal frontend address they can reach');
  else if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(address)) problems.push(`TRAINYARD_AGENT_TEMPORAL_ADDRESS: "${address}" is not host:port`);
  else if (/^(127\.|localhost|0\.0\.0\.0)/.test(address)) warnings.push(`TRAINYARD_AGENT_TEMPORAL_ADDRESS is ${address}: an EC2 host cannot reach this machine's loopback`);
  const store = r.str('TRAINYARD_AGENT_STORE') ?? env.TRAINYARD_STORE;
  if (!store) problems.push('TRAINYARD_AGENT_STORE: not set (nor TRAINYARD_STORE); EC2 hosts need the S3 artifact store (s3://bucket/prefix)');
  else if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9._\-/]*)?$/.test(store)) {
    problems.push(`TRAINYARD_AGENT_STORE: "${store}" must be an s3://bucket/prefix store: a host cannot read a folder on this machine`);
  }
  const apiKeyParam = r.str('TRAINYARD_AGENT_TEMPORAL_API_KEY_SSM');
  if (apiKeyParam && !/^\/[A-Za-z0-9_.\-/]{1,1000}$/.test(apiKeyParam)) problems.push(`TRAINYARD_AGENT_TEMPORAL_API_KEY_SSM: "${apiKeyParam}" is not an SSM parameter name (/…)`);
  // Unset: the control worker publishes this version's package to the agent store itself.
  const pkg = r.str('TRAINYARD_AGENT_PACKAGE') ?? '';
  const pkgSha = r.str('TRAINYARD_AGENT_PACKAGE_SHA256')?.toLowerCase();
  const pkgFile = r.str('TRAINYARD_AGENT_PACKAGE_FILE');
  if (pkg && !/^(s3|https):\/\/[A-Za-z0-9%+=:,./_~^-]+$/.test(pkg)) problems.push(`TRAINYARD_AGENT_PACKAGE: "${pkg}" must be an s3:// or https:// URL of a trainyard agent package (.tar.gz), or unset to publish this version's package to the store`);
  if (pkg && !pkgSha) problems.push('TRAINYARD_AGENT_PACKAGE_SHA256: not set; with TRAINYARD_AGENT_PACKAGE it must give the package\'s SHA-256 (64 hex), which the host checks');
  if (pkgSha && !/^[0-9a-f]{64}$/.test(pkgSha)) problems.push(`TRAINYARD_AGENT_PACKAGE_SHA256: "${pkgSha}" is not a SHA-256 (64 hex digits)`);
  if (pkgSha && !pkg) problems.push('TRAINYARD_AGENT_PACKAGE_SHA256: set without TRAINYARD_AGENT_PACKAGE');
  if (pkgFile && !isAbsolute(pkgFile)) problems.push(`TRAINYARD_AGENT_PACKAGE_FILE: "${pkgFile}" must be an absolute path`);
  const node = r.str('TRAINYARD_AGENT_NODE_VERSION') ?? 'v20.18.1';
  if (!/^v\d+\.\d+\.\d+$/.test(node)) problems.push(`TRAINYARD_AGENT_NODE_VERSION: "${node}" must look like v20.18.1`);
  return {
    temporalAddress: address ?? '',
    temporalNamespace: r.str('TRAINYARD_AGENT_TEMPORAL_NAMESPACE') ?? env.TEMPORAL_NAMESPACE ?? 'default',
    temporalTls: r.bool('TRAINYARD_AGENT_TEMPORAL_TLS', false),
    ...(apiKeyParam ? { temporalApiKeySsmParameter: apiKeyParam } : {}),
    storeLocation: store ?? '',
    agentPackage: pkg,
    ...(pkgSha ? { agentPackageSha256: pkgSha } : {}),
    ...(pkgFile ? { agentPackageFile: pkgFile } : {}),
    nodeVersion: node,
    idlePoweroffSeconds: r.int('TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS', 1800, 60),
    spotPollSeconds: r.int('TRAINYARD_AGENT_SPOT_POLL_SECONDS', 5, 1),
  };
}

class Reader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  str(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v ? v : undefined;
  }

  int(name: string, fallback: number, min: number): number {
    const v = this.str(name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < min) {
      this.problems.push(`${name}: "${v}" must be a whole number ≥ ${min}`);
      return fallback;
    }
    return Number(v);
  }

  optInt(name: string, min: number): number | null {
    return this.str(name) === undefined ? null : this.int(name, 0, min);
  }

  optNum(name: string): number | null {
    const v = this.str(name);
    if (v === undefined) return null;
    if (!/^\d+(\.\d+)?$/.test(v)) {
      this.problems.push(`${name}: "${v}" must be a non-negative number (USD)`);
      return null;
    }
    return Number(v);
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.str(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${name}: "${v}" must be true or false`);
    return fallback;
  }

  list(name: string, item: RegExp, what: string): string[] | undefined {
    const v = this.env[name];
    if (v === undefined) return undefined;
    const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    for (const i of items) if (!item.test(i)) this.problems.push(`${name}: "${i}" is not ${what}`);
    return items;
  }

  /** `3`, or `gpu=2,big=1,*=3`. */
  perClass(name: string, fallback: number): Record<string, number> {
    const v = this.str(name);
    if (v === undefined) return { '*': fallback };
    if (/^\d+$/.test(v)) return { '*': Math.max(1, Number(v)) };
    const out: Record<string, number> = { '*': fallback };
    for (const part of v.split(',')) {
      const m = /^\s*([A-Za-z0-9_-]+|\*)\s*=\s*(\d+)\s*$/.exec(part);
      if (!m || Number(m[2]) < 1) {
        this.problems.push(`${name}: "${part.trim()}" must be class=N (N ≥ 1), e.g. gpu=2,*=3`);
        continue;
      }
      out[m[1]!] = Number(m[2]);
    }
    return out;
  }
}
