// Server-side compute configuration, read once at start from the environment. Every
// problem is reported at once, each naming the variable to fix. Nothing here can be set
// from a repository: a pull request cannot raise its own limits.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { isAmiReference } from '../../activities/ec2/ami.js';
import { EMBEDDED_PRICES, parsePriceTable } from '../../activities/ec2/pricing.js';
import type { AgentSettings, Ec2Settings, PriceTable } from '../../activities/ec2/types.js';
import type { KubernetesSettings } from '../../activities/k8s/types.js';
import { SettingError } from '../settings/errors.js';
import { isSet, setting, type Env } from '../settings/read.js';
import type { SettingName, SettingValue } from '../settings/schema.js';
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

/**
 * Every problem of the compute configuration at once (`problems`, each starting with its
 * variable or `file:line:column`); a SettingError naming the first one's variable, so every
 * command reports it like any other setting.
 */
export class ComputeConfigError extends SettingError {
  constructor(problems: string[]) {
    const first = problems[0] ?? '';
    const variable = /^([A-Z][A-Z0-9_]+):/.exec(first)?.[1] ?? 'TRAINYARD_K8S_CONFIG';
    super(
      variable,
      problems.map((p) => (p.startsWith(`${variable}: `) ? p.slice(variable.length + 2) : p)).join('; '),
      problems,
    );
    this.name = 'ComputeConfigError';
  }
}

/** Current Deep Learning Base AMI (NVIDIA driver, Docker, NVIDIA container toolkit), Ubuntu 22.04. */
export const DEFAULT_AMI_PARAMETER =
  '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id';

export function loadComputeConfig(env: Env = process.env): ComputeConfig {
  const problems: string[] = [];
  const warnings: string[] = [];
  const r = new Reader(env, problems);

  const pricesFile = r.get('TRAINYARD_EC2_PRICES');
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
    allowedInstanceTypes: r.get('TRAINYARD_ALLOWED_INSTANCE_TYPES') ?? Object.keys(prices.prices),
    allowedClasses: r.get('TRAINYARD_ALLOWED_MACHINE_CLASSES'),
    maxGpusPerMachine: r.get('TRAINYARD_MAX_GPUS') ?? null,
    maxGpusPerRun: r.get('TRAINYARD_MAX_GPUS_PER_RUN') ?? null,
    maxCostPerRunUsd: r.get('TRAINYARD_MAX_COST_USD') ?? null,
    maxDiskGb: r.get('TRAINYARD_MAX_DISK_GB') ?? null,
    maxPerClass,
  };

  const ec2On = isSet(env, 'TRAINYARD_EC2_SUBNETS');
  const subnets = ec2On ? r.get('TRAINYARD_EC2_SUBNETS') : undefined;
  let ec2: Ec2Settings | null = null;
  if (ec2On) {
    // The hosts are told the region in their user data, so it must be known here: the
    // standard AWS_REGION / AWS_DEFAULT_REGION when TRAINYARD_EC2_REGION does not say.
    const region = isSet(env, 'TRAINYARD_EC2_REGION')
      ? r.get('TRAINYARD_EC2_REGION')
      : isSet(env, 'AWS_REGION')
        ? r.get('AWS_REGION')
        : env.AWS_DEFAULT_REGION?.trim() || undefined;
    if (!region && !isSet(env, 'TRAINYARD_EC2_REGION') && !isSet(env, 'AWS_REGION'))
      problems.push('TRAINYARD_EC2_REGION: not set (nor AWS_REGION); EC2 needs a region');
    if (region && prices.region !== region && pricesFile) {
      warnings.push(`TRAINYARD_EC2_PRICES is for ${prices.region} but instances launch in ${region}`);
    }
    // AWS_ENDPOINT_URL_EC2 / _SSM are read by the SDK itself; only the older
    // TRAINYARD_EC2_ENDPOINT, which stands for both, is passed on.
    const checked = r.get('AWS_ENDPOINT_URL_EC2');
    const endpoint = checked !== undefined && env.TRAINYARD_EC2_ENDPOINT?.trim() ? checked : undefined;
    const profile = r.get('TRAINYARD_EC2_INSTANCE_PROFILE');
    const ami = r.get('TRAINYARD_EC2_AMI') ?? DEFAULT_AMI_PARAMETER;
    if (!isAmiReference(ami))
      problems.push(
        `TRAINYARD_EC2_AMI: "${ami}" is neither an AMI id (ami-…) nor an SSM parameter name (/aws/service/…)`,
      );
    const deployment = r.get('TRAINYARD_EC2_DEPLOYMENT') ?? 'default';
    const idleSeconds = r.get('TRAINYARD_EC2_IDLE_SECONDS') ?? 600;
    const agent = loadAgentSettings(env, r, problems, warnings, region ?? '');
    if (agent.idlePoweroffSeconds < idleSeconds + 300) {
      problems.push(
        `TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS: ${agent.idlePoweroffSeconds} must be at least TRAINYARD_EC2_IDLE_SECONDS + 300 (${idleSeconds + 300}): it is the host's last resort, after the run's own idle timeout`,
      );
    }
    if (subnets?.length === 0)
      problems.push('TRAINYARD_EC2_SUBNETS: empty; list one subnet per Availability Zone you want to use');
    ec2 = {
      region: region ?? '',
      ...(endpoint ? { endpoint } : {}),
      subnetIds: subnets ?? [],
      securityGroupIds: r.get('TRAINYARD_EC2_SECURITY_GROUPS') ?? [],
      ...(profile ? { instanceProfile: profile } : {}),
      defaultAmi: ami,
      deployment,
      maxInstances: r.get('TRAINYARD_EC2_MAX_INSTANCES') ?? 8,
      maxPerClass: maxPerClass['*'] ?? 3,
      idleSeconds,
      readyTimeoutSeconds: r.get('TRAINYARD_EC2_READY_TIMEOUT_SECONDS') ?? 900,
      leaseSlackSeconds: r.get('TRAINYARD_EC2_LEASE_SLACK_SECONDS') ?? 3600,
      rootDeviceName: '/dev/sda1',
      agent,
      prices,
    };
  } else {
    for (const k of [
      'TRAINYARD_EC2_REGION',
      'TRAINYARD_EC2_SECURITY_GROUPS',
      'TRAINYARD_EC2_INSTANCE_PROFILE',
      'TRAINYARD_EC2_AMI',
    ]) {
      if (env[k]) warnings.push(`${k} is set but TRAINYARD_EC2_SUBNETS is not, so EC2 is off`);
    }
  }

  const kubernetes = loadKubernetesSettings(env, problems);

  if (problems.length > 0) throw new ComputeConfigError(problems);
  return { ec2, kubernetes, policy, prices, warnings };
}

function loadAgentSettings(
  env: Env,
  r: Reader,
  problems: string[],
  warnings: string[],
  ec2Region: string,
): AgentSettings {
  const address = isSet(env, 'TRAINYARD_AGENT_TEMPORAL_ADDRESS')
    ? r.get('TRAINYARD_AGENT_TEMPORAL_ADDRESS')
    : r.get('TEMPORAL_ADDRESS');
  if (!address && !isSet(env, 'TRAINYARD_AGENT_TEMPORAL_ADDRESS') && !isSet(env, 'TEMPORAL_ADDRESS'))
    problems.push(
      'TRAINYARD_AGENT_TEMPORAL_ADDRESS: not set (nor TEMPORAL_ADDRESS); hosts need the Temporal frontend address they can reach',
    );
  else if (address && /^(127\.|localhost|0\.0\.0\.0)/.test(address))
    warnings.push(`TRAINYARD_AGENT_TEMPORAL_ADDRESS is ${address}: an EC2 host cannot reach this machine's loopback`);
  const store = r.get('TRAINYARD_AGENT_STORE') ?? (env.TRAINYARD_STORE?.trim() || undefined);
  if (!store)
    problems.push(
      'TRAINYARD_AGENT_STORE: not set (nor TRAINYARD_STORE); EC2 hosts need the S3 artifact store (s3://bucket/prefix)',
    );
  else if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[A-Za-z0-9._\-/]*)?$/.test(store)) {
    problems.push(
      `TRAINYARD_AGENT_STORE: "${store}" must be an s3://bucket/prefix store: a host cannot read a folder on this machine`,
    );
  }
  const apiKeyParam = r.get('TRAINYARD_AGENT_TEMPORAL_API_KEY_SSM');
  // Unset: the control worker publishes this version's package to the agent store itself.
  const pkg = r.get('TRAINYARD_AGENT_PACKAGE') ?? '';
  const pkgSha = r.get('TRAINYARD_AGENT_PACKAGE_SHA256')?.toLowerCase();
  const pkgFile = r.get('TRAINYARD_AGENT_PACKAGE_FILE');
  if (pkg && !/^(s3|https):\/\/[A-Za-z0-9%+=:,./_~^-]+$/.test(pkg))
    problems.push(
      `TRAINYARD_AGENT_PACKAGE: "${pkg}" must be an s3:// or https:// URL of a trainyard agent package (.tar.gz), or unset to publish this version's package to the store`,
    );
  if (pkg && !pkgSha)
    problems.push(
      "TRAINYARD_AGENT_PACKAGE_SHA256: not set; with TRAINYARD_AGENT_PACKAGE it must give the package's SHA-256 (64 hex), which the host checks",
    );
  if (pkgSha && !/^[0-9a-f]{64}$/.test(pkgSha))
    problems.push(`TRAINYARD_AGENT_PACKAGE_SHA256: "${pkgSha}" is not a SHA-256 (64 hex digits)`);
  if (pkgSha && !pkg) problems.push('TRAINYARD_AGENT_PACKAGE_SHA256: set without TRAINYARD_AGENT_PACKAGE');
  if (pkgFile && !isAbsolute(pkgFile))
    problems.push(`TRAINYARD_AGENT_PACKAGE_FILE: "${pkgFile}" must be an absolute path`);
  const node = r.get('TRAINYARD_AGENT_NODE_VERSION') ?? 'v20.18.1';
  // The server's SSM secret source, handed to its hosts (the same Parameter Store as its own runner's).
  const secretsPrefix = r.get('TRAINYARD_SECRETS_SSM_PREFIX');
  const secretsRegion =
    r.get('TRAINYARD_SECRETS_SSM_REGION') ??
    (isSet(env, 'AWS_REGION') ? r.get('AWS_REGION') : undefined) ??
    (env.AWS_DEFAULT_REGION?.trim() || ec2Region);
  const secretsEndpoint = r.get('TRAINYARD_SECRETS_SSM_ENDPOINT');
  return {
    temporalAddress: address ?? '',
    temporalNamespace: r.get('TRAINYARD_AGENT_TEMPORAL_NAMESPACE') ?? r.get('TEMPORAL_NAMESPACE') ?? 'default',
    temporalTls: r.get('TRAINYARD_AGENT_TEMPORAL_TLS') ?? false,
    ...(apiKeyParam ? { temporalApiKeySsmParameter: apiKeyParam } : {}),
    storeLocation: store ?? '',
    agentPackage: pkg,
    ...(pkgSha ? { agentPackageSha256: pkgSha } : {}),
    ...(pkgFile ? { agentPackageFile: pkgFile } : {}),
    nodeVersion: node,
    idlePoweroffSeconds: r.get('TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS') ?? 1800,
    spotPollSeconds: r.get('TRAINYARD_AGENT_SPOT_POLL_SECONDS') ?? 5,
    ...(secretsPrefix
      ? {
          secretsSsm: {
            prefix: secretsPrefix,
            region: secretsRegion,
            ...(secretsEndpoint ? { endpoint: secretsEndpoint } : {}),
          },
        }
      : {}),
  };
}

/** Reads settings through the schema, collecting problems instead of stopping at the first. */
class Reader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  /** The value, or undefined when unset or wrong (the problem is recorded). */
  get<N extends SettingName>(name: N): SettingValue<N> | undefined {
    try {
      return setting(this.env, name);
    } catch (e) {
      if (!(e instanceof SettingError)) throw e;
      this.problems.push(e.message);
      return undefined;
    }
  }

  /** `3`, or `gpu=2,big=1,*=3`. */
  perClass(name: 'TRAINYARD_EC2_MAX_PER_CLASS', fallback: number): Record<string, number> {
    const v = this.get(name);
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
