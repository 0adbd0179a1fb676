// Checks a parsed pipeline's machine classes against the server's compute policy, before
// anything runs: allowed classes and instance types, GPUs per machine and per run, disk,
// and the worst-case cost of the run. Errors point at the file's lines like parse errors.
import picomatch from 'picomatch';
import { LineCounter, isMap, isSeq, parseDocument, type Node } from 'yaml';
import { priceFor } from '../../activities/ec2/pricing.js';
import {
  isKubernetesMachine,
  type Ec2MachineSpec,
  type KubernetesMachineSpec,
  type Pipeline,
  type PipelineError,
} from '../../pipeline/types.js';
import type { ComputeConfig } from './config.js';

export interface CostEstimate {
  /** USD if every machine step ran to its timeout on every try at the dearest allowed price. */
  worstCaseUsd: number;
  perStep: Record<string, number>;
}

/**
 * Upper bound: each `machine:` step × (1 + retries) × (timeout + boot allowance) × dearest
 * candidate price. A Kubernetes step is billed from its pod's start, so without boot time, at
 * its class's rate (pod rate + GPUs × GPU rate).
 */
export function estimateWorstCaseCost(pipeline: Pipeline, cfg: ComputeConfig, bootSeconds = 600): CostEstimate {
  const perStep: Record<string, number> = {};
  let total = 0;
  for (const step of Object.values(pipeline.steps)) {
    if (!step.machine) continue;
    const spec = pipeline.machines[step.machine];
    if (!spec) continue;
    const kube = isKubernetesMachine(spec);
    const hourly = kube ? kubernetesRate(spec, cfg) : dearestPrice(spec, cfg);
    if (hourly === undefined) continue;
    const usd = ((step.timeoutSeconds + (kube ? 0 : bootSeconds)) * (1 + step.retries) * hourly) / 3600;
    perStep[step.name] = Math.round(usd * 100) / 100;
    total += usd;
  }
  return { worstCaseUsd: Math.round(total * 100) / 100, perStep };
}

/** USD per hour of one pod of the class with the GPUs the pipeline asks for. */
export function kubernetesRate(spec: KubernetesMachineSpec, cfg: ComputeConfig): number | undefined {
  const cls = cfg.kubernetes?.classes[spec.kubernetes];
  return cls ? cls.hourlyRateUsd + spec.gpus * cls.gpuHourlyRateUsd : undefined;
}

function dearestPrice(spec: Ec2MachineSpec, cfg: ComputeConfig): number | undefined {
  const markets: ('spot' | 'on-demand')[] = spec.spot
    ? spec.on_demand_fallback
      ? ['spot', 'on-demand']
      : ['spot']
    : ['on-demand'];
  let max: number | undefined;
  for (const t of spec.instance) {
    for (const m of markets) {
      const p = priceFor(cfg.prices, t, m);
      if (p !== undefined) max = Math.max(max ?? 0, p);
    }
  }
  return max;
}

/**
 * Every policy problem of the pipeline; empty when it may run. `text` (the file's source)
 * lets errors point at the offending line; without it they point at line 1.
 */
export function checkComputePolicy(pipeline: Pipeline, cfg: ComputeConfig, text?: string): PipelineError[] {
  const at = locator(pipeline.file, text);
  const errors: PipelineError[] = [];
  const { policy } = cfg;
  const used = new Map<string, string[]>();
  for (const step of pipeline.order.map((n) => pipeline.steps[n]!)) {
    if (step.machine) used.set(step.machine, [...(used.get(step.machine) ?? []), step.name]);
  }
  const kind = (name: string): 'kubernetes' | 'ec2' =>
    pipeline.machines[name] && isKubernetesMachine(pipeline.machines[name]!) ? 'kubernetes' : 'ec2';
  for (const k of ['ec2', 'kubernetes'] as const) {
    const first = [...used.entries()].find(([cls]) => kind(cls) === k);
    if (!first || (k === 'ec2' ? cfg.ec2 : cfg.kubernetes)) continue;
    const [cls, steps] = first;
    errors.push({
      ...at(['steps', steps[0]!, 'machine']),
      message:
        k === 'ec2'
          ? `step "${steps[0]}" needs machine class "${cls}", but this server has no EC2 configured (TRAINYARD_EC2_SUBNETS is not set); remove "machine" to run it on the local host`
          : `step "${steps[0]}" needs Kubernetes machine "${cls}", but this server has no Kubernetes configured (TRAINYARD_K8S_CONFIG is not set); remove "machine" to run it on the local host`,
    });
  }
  if (errors.length > 0) return errors;
  const allowed = picomatch(policy.allowedInstanceTypes.length > 0 ? policy.allowedInstanceTypes : ['']);
  let runGpus = 0;
  for (const [name, spec] of Object.entries(pipeline.machines)) {
    if (policy.allowedClasses && !policy.allowedClasses.includes(name)) {
      errors.push({
        ...at(['machines', name]),
        message: `machine class "${name}" is not allowed on this server (allowed: ${policy.allowedClasses.join(', ') || 'none'})`,
      });
    }
    if (policy.maxGpusPerMachine !== null && spec.gpus > policy.maxGpusPerMachine) {
      errors.push({
        ...at(['machines', name, 'gpus']),
        message: `machine class "${name}" asks for ${spec.gpus} GPUs; this server allows at most ${policy.maxGpusPerMachine} per machine`,
      });
    }
    const steps = used.get(name)?.length ?? 0;
    if (isKubernetesMachine(spec)) {
      const classes = cfg.kubernetes?.classes ?? {};
      const cls = classes[spec.kubernetes];
      if (!cls) {
        const known = Object.keys(classes);
        errors.push({
          ...at(['machines', name, 'kubernetes']),
          message: `Kubernetes machine class "${spec.kubernetes}" (machine "${name}") is not defined on this server (its classes: ${known.join(', ') || 'none'})`,
        });
      } else if (spec.gpus > cls.gpu.count) {
        errors.push({
          ...at(['machines', name, 'gpus']),
          message: `machine "${name}" asks for ${spec.gpus} GPUs; Kubernetes class "${cls.name}" allows at most ${cls.gpu.count} (${cls.gpu.resource})`,
        });
      }
      // Every step of the class may run at once (there is no per-class pool for Jobs).
      runGpus += spec.gpus * steps;
      continue;
    }
    spec.instance.forEach((t, i) => {
      if (!allowed(t)) {
        errors.push({
          ...at(['machines', name, 'instance', i]),
          message: `instance type ${t} in machine class "${name}" is not allowed on this server (allowed: ${policy.allowedInstanceTypes.join(', ') || 'none'})`,
        });
      } else if (priceFor(cfg.prices, t, 'on-demand') === undefined) {
        errors.push({
          ...at(['machines', name, 'instance', i]),
          message: `instance type ${t} has no price in this server's price table (${cfg.prices.source}), so its cost cannot be bounded`,
        });
      }
    });
    if (policy.maxDiskGb !== null && spec.disk_gb > policy.maxDiskGb) {
      errors.push({
        ...at(['machines', name, 'disk_gb']),
        message: `machine class "${name}" asks for ${spec.disk_gb} GB of disk; this server allows at most ${policy.maxDiskGb}`,
      });
    }
    const concurrent = Math.min(steps, policy.maxPerClass[name] ?? policy.maxPerClass['*'] ?? 1);
    runGpus += spec.gpus * concurrent;
  }
  if (policy.maxGpusPerRun !== null && runGpus > policy.maxGpusPerRun) {
    errors.push({
      ...at(['machines']),
      message: `the run could hold ${runGpus} GPUs at once; this server allows at most ${policy.maxGpusPerRun} per run (lower the classes' gpus or the steps that use them)`,
    });
  }
  if (errors.length === 0 && policy.maxCostPerRunUsd !== null) {
    const limitUsd = policy.maxCostPerRunUsd;
    const cost = estimateWorstCaseCost(pipeline, cfg, cfg.ec2?.readyTimeoutSeconds);
    if (cost.worstCaseUsd > limitUsd) {
      const top = Object.entries(cost.perStep)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([s, u]) => `${s} $${u.toFixed(2)}`)
        .join(', ');
      errors.push({
        ...at(['machines']),
        message: `worst-case compute cost of a run is $${cost.worstCaseUsd.toFixed(2)} (every machine step to its timeout, every retry), over this server's limit of $${limitUsd.toFixed(2)}; largest: ${top}. Lower timeouts or retries, or use cheaper instance types`,
      });
    }
  }
  return errors;
}

type Where = Omit<PipelineError, 'message'>;

function locator(file: string, text: string | undefined): (path: (string | number)[]) => Where {
  if (text === undefined) return () => ({ file, line: 1, column: 1 });
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  return (path) => {
    // Point at the deepest node of the path that exists: the value, else its key.
    let node: Node | null | undefined = doc.contents as Node | null;
    let pointAt: Node | null | undefined = node;
    for (const part of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === part);
        if (!pair) break;
        pointAt = (pair.key as Node | null) ?? pointAt;
        node = pair.value as Node | null;
        if (node && typeof part !== 'number') pointAt = isMap(node) || isSeq(node) ? (pair.key as Node) : node;
      } else if (isSeq(node) && typeof part === 'number') {
        const item = node.items[part] as Node | undefined;
        if (!item) break;
        node = item;
        pointAt = item;
      } else break;
    }
    const p = lines.linePos(pointAt?.range?.[0] ?? 0);
    return { file, line: p.line, column: p.col };
  };
}
