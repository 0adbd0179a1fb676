// `trainyard validate`: every .trainyard/*.yaml of the project checked as a run would check
// it, each mistake as file:line:column. Runs nothing, needs no server. When this environment
// has the server's compute policy settings (the same variables `serve`/`worker` read), each
// pipeline is also checked against that policy, as the server checks it before a run starts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPipelines } from '../../pipeline/load.js';
import { formatPipelineError } from '../../pipeline/parse.js';
import type { Pipeline, PipelineError } from '../../pipeline/types.js';
import { terminalText } from '../../activities/usertext.js';
import { loadComputeConfig } from '../compute/config.js';
import { checkComputePolicy } from '../compute/policy.js';
import { isSet, type Env } from '../settings/read.js';
import type { SettingName } from '../settings/schema.js';
import { findProject } from './project.js';

/** The settings of the server's compute policy (app/compute/config.ts); one set = a policy is configured here. */
export const POLICY_SETTINGS = [
  'TRAINYARD_EC2_SUBNETS',
  'TRAINYARD_K8S_CONFIG',
  'TRAINYARD_ALLOWED_INSTANCE_TYPES',
  'TRAINYARD_ALLOWED_MACHINE_CLASSES',
  'TRAINYARD_MAX_GPUS',
  'TRAINYARD_MAX_GPUS_PER_RUN',
  'TRAINYARD_MAX_COST_USD',
  'TRAINYARD_MAX_DISK_GB',
  'TRAINYARD_EC2_PRICES',
  'TRAINYARD_EC2_MAX_PER_CLASS',
] as const satisfies readonly SettingName[];

/** Which policy the pipelines were checked against, for the user to see. */
export interface CheckedPolicy {
  configured: boolean;
  /** EC2 machines: their region; null = EC2 off (machine steps are refused, as on such a server). */
  ec2: { region: string } | null;
  /** Kubernetes machines: the class file and its class names; null = off. */
  kubernetes: { file: string; classes: string[] } | null;
  /** The policy settings set here, as NAME=value. */
  settings: string[];
  /** One sentence saying the above. */
  summary: string;
}

/**
 * The compute policy of this environment, or `configured: false` when none of
 * POLICY_SETTINGS is set (then only the file format is checked: a laptop is not the server).
 * Throws the setting's error (a SettingError naming the variable) when one is wrong.
 */
export function localPolicy(env: Env): {
  policy: CheckedPolicy;
  check?: (pipeline: Pipeline, text: string) => PipelineError[];
} {
  const set = POLICY_SETTINGS.filter((n) => isSet(env, n));
  if (set.length === 0) {
    return {
      policy: {
        configured: false,
        ec2: null,
        kubernetes: null,
        settings: [],
        summary: `no server policy configured here (none of ${POLICY_SETTINGS.join(', ')} is set): only the file format was checked`,
      },
    };
  }
  const cfg = loadComputeConfig(env);
  const ec2 = cfg.ec2 ? { region: cfg.ec2.region } : null;
  const kubernetes = cfg.kubernetes
    ? { file: cfg.kubernetes.source, classes: Object.keys(cfg.kubernetes.classes) }
    : null;
  const settings = set.map((n) => `${n}=${env[n] ?? ''}`);
  const parts = [
    ec2 ? `EC2 machines in ${ec2.region}` : 'no EC2 machines',
    kubernetes
      ? `Kubernetes classes ${kubernetes.classes.join(', ') || '(none)'} of ${kubernetes.file}`
      : 'no Kubernetes machines',
  ];
  return {
    policy: {
      configured: true,
      ec2,
      kubernetes,
      settings,
      summary: `checked against the server policy of this environment: ${parts.join(', ')} (${settings.join(' ')})`,
    },
    check: (pipeline, text) => checkComputePolicy(pipeline, cfg, text),
  };
}

/** Returns the exit code: 0 all valid, 1 some error (printed to stderr, or in the JSON). */
export async function validateCommand(
  dir: string,
  opts: { json: boolean },
  out: NodeJS.WritableStream = process.stdout,
  env: Env = process.env,
): Promise<number> {
  const project = await findProject(dir);
  const { policy, check } = localPolicy(env);
  const { pipelines, errors: formatErrors } = await loadPipelines(project.projectRoot);
  const errors = [...formatErrors];
  if (check) {
    for (const p of pipelines) errors.push(...check(p, await readFile(join(project.projectRoot, p.file), 'utf8')));
  }
  errors.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
  if (opts.json) {
    out.write(
      `${JSON.stringify(
        {
          ok: errors.length === 0,
          pipelines: pipelines.map((p) => ({ name: p.name, file: p.file, steps: p.order })),
          errors: errors.map((e) => ({ file: e.file, line: e.line, column: e.column, message: e.message })),
          policy: {
            configured: policy.configured,
            ec2: policy.ec2,
            kubernetes: policy.kubernetes,
            settings: policy.settings,
          },
        },
        null,
        2,
      )}\n`,
    );
    return errors.length ? 1 : 0;
  }
  for (const e of errors) process.stderr.write(`${terminalText(formatPipelineError(e))}\n`);
  if (errors.length) {
    process.stderr.write(`${terminalText(policy.summary)}\n`);
    return 1;
  }
  out.write(
    `ok: ${pipelines.length} pipeline(s): ${pipelines.map((p) => `${p.name} (${Object.keys(p.steps).length} steps)`).join(', ')}\n`,
  );
  out.write(`${terminalText(policy.summary)}\n`);
  return 0;
}
