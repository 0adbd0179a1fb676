// Server-side policy: what a repository may run, decided by whoever operates the server,
// never by the repository. A pull request edits the pipeline file, so every check here is
// made against the pipeline at the commit that would run, with limits the PR cannot reach.
import picomatch from 'picomatch';
import type { Pipeline } from '../../pipeline/types.js';

export interface ServerPolicy {
  /** Globs over `owner/repo` (GitHub) or `group/project` (GitLab); null = every repo the app is installed on. */
  allowedRepos: string[] | null;
  /** Globs over EC2 instance types (`g5.*`); null = any. */
  allowedInstanceTypes: string[] | null;
  /** Most GPUs one machine of a pipeline may ask for; null = no limit. */
  maxGpus: number | null;
  /** Most estimated USD one run may cost; null = no limit. */
  maxCostUsd: number | null;
  /** On-demand USD per hour by instance type, for the estimate (merged over the built-in table). */
  prices: Record<string, number>;
}

/** us-east-1 on-demand list prices (USD/hour); the operator's policy file can add or override. */
export const DEFAULT_PRICES: Readonly<Record<string, number>> = {
  't3.medium': 0.0416, 't3.large': 0.0832, 't3.xlarge': 0.1664,
  'm5.large': 0.096, 'm5.xlarge': 0.192, 'm5.2xlarge': 0.384, 'c5.xlarge': 0.17, 'c5.2xlarge': 0.34,
  'g4dn.xlarge': 0.526, 'g4dn.2xlarge': 0.752, 'g4dn.12xlarge': 3.912,
  'g5.xlarge': 1.006, 'g5.2xlarge': 1.212, 'g5.4xlarge': 1.624, 'g5.12xlarge': 5.672, 'g5.48xlarge': 16.288,
  'g6.xlarge': 0.8048, 'g6.2xlarge': 0.9776, 'g6.12xlarge': 4.6016,
  'p3.2xlarge': 3.06, 'p3.8xlarge': 12.24, 'p4d.24xlarge': 32.7726, 'p5.48xlarge': 98.32,
};

export function openPolicy(): ServerPolicy {
  return { allowedRepos: null, allowedInstanceTypes: null, maxGpus: null, maxCostUsd: null, prices: { ...DEFAULT_PRICES } };
}

export function repoAllowed(policy: ServerPolicy, repoPath: string): boolean {
  if (policy.allowedRepos === null) return true;
  return picomatch(policy.allowedRepos, { nocase: true, dot: true })(repoPath);
}

export interface CostEstimate {
  usd: number;
  /** Instance types the estimate needed but has no price for. */
  unpriced: string[];
}

/**
 * Upper estimate: every step on a machine runs for its whole timeout, once, on the most
 * expensive instance type its machine class lists. Steps on the server's own host cost 0.
 */
export function estimateCost(pipeline: Pipeline, prices: Record<string, number>): CostEstimate {
  let usd = 0;
  const unpriced = new Set<string>();
  for (const step of Object.values(pipeline.steps)) {
    if (!step.machine) continue;
    const machine = pipeline.machines[step.machine];
    if (!machine) continue;
    let hourly = 0;
    for (const type of machine.instance) {
      const price = prices[type];
      if (price === undefined) unpriced.add(type);
      else hourly = Math.max(hourly, price);
    }
    usd += (hourly * step.timeoutSeconds) / 3600;
  }
  return { usd: Math.round(usd * 100) / 100, unpriced: [...unpriced].sort() };
}

/** Every way the pipeline breaks the policy, as sentences; empty when it may run. */
export function policyViolations(policy: ServerPolicy, repoPath: string, pipeline: Pipeline): string[] {
  const out: string[] = [];
  if (!repoAllowed(policy, repoPath)) {
    out.push(`Repository \`${repoPath}\` is not in this server's allowed repositories.`);
  }
  const typeAllowed = policy.allowedInstanceTypes ? picomatch(policy.allowedInstanceTypes) : null;
  for (const [name, machine] of Object.entries(pipeline.machines)) {
    for (const type of machine.instance) {
      if (typeAllowed && !typeAllowed(type)) {
        out.push(
          `Machine \`${name}\` asks for instance type \`${type}\`, which this server does not allow ` +
            `(allowed: ${policy.allowedInstanceTypes!.map((g) => `\`${g}\``).join(', ')}).`,
        );
      }
    }
    if (policy.maxGpus !== null && machine.gpus > policy.maxGpus) {
      out.push(`Machine \`${name}\` asks for ${machine.gpus} GPUs; this server allows at most ${policy.maxGpus}.`);
    }
  }
  if (policy.maxCostUsd !== null) {
    const estimate = estimateCost(pipeline, policy.prices);
    if (estimate.unpriced.length > 0) {
      out.push(
        `No price is known for ${estimate.unpriced.map((t) => `\`${t}\``).join(', ')}, so the run's cost cannot be ` +
          `checked against the limit of $${policy.maxCostUsd.toFixed(2)}; the server's policy must list a price for it.`,
      );
    } else if (estimate.usd > policy.maxCostUsd) {
      out.push(
        `Estimated cost $${estimate.usd.toFixed(2)} (every step on its most expensive instance type for its whole ` +
          `timeout) exceeds this server's limit of $${policy.maxCostUsd.toFixed(2)} per run.`,
      );
    }
  }
  return out;
}
