// The parsed, validated form of a `.trainyard/<name>.yaml` file. Plain data only:
// workflows/ imports these types, so nothing here may touch I/O.
import type { ConcurrencySpec } from './concurrency.js';

export type ParamType = 'integer' | 'number' | 'string' | 'boolean' | 'enum';
export type ParamValue = string | number | boolean;

export interface ParamSpec {
  type: ParamType;
  default?: ParamValue;
  min?: number;
  max?: number;
  /** Allowed values, for `enum`. */
  values?: string[];
  description?: string;
}

/**
 * `on.push`, with GitHub Actions' keys and meaning (pipeline/triggers.ts). Each list holds
 * filter patterns (pipeline/filters.ts) checked in order. At most one of `branches` and
 * `branchesIgnore`, of `tags` and `tagsIgnore`, of `paths` and `pathsIgnore` is set.
 */
export interface PushTrigger {
  /** Branch patterns (`main`, `exp/**`, `!exp/scratch/**`). */
  branches?: string[];
  /** `branches-ignore`: branches that do not run the pipeline. */
  branchesIgnore?: string[];
  /** Tag patterns (`v*`). */
  tags?: string[];
  /** `tags-ignore`. */
  tagsIgnore?: string[];
  /** Changed-path patterns relative to the project root; absent with pathsIgnore = any change. */
  paths?: string[];
  /** `paths-ignore`: the push runs the pipeline unless every changed path matches. */
  pathsIgnore?: string[];
}

export interface Triggers {
  /** null when the pipeline does not run on push. */
  push: PushTrigger | null;
  /** `/train <name>` comments allowed. */
  comment: boolean;
}

/** A machine class Trainyard provisions on EC2 for the step (`instance:`). */
export interface Ec2MachineSpec {
  /** EC2 instance types in order of preference. */
  instance: string[];
  gpus: number;
  spot: boolean;
  /** Fall back to on-demand when spot capacity is exhausted (default true). */
  on_demand_fallback: boolean;
  disk_gb: number;
  /** An AMI id (`ami-…`) or an SSM public parameter name (`/aws/service/…`). */
  ami?: string;
}

/**
 * A step run as a Job on the team's Kubernetes cluster (`kubernetes:`): the class names a
 * server-side Kubernetes machine class (namespace, node selector, resources, rate); the
 * pipeline picks the class and how many of its GPUs a step asks for.
 */
export interface KubernetesMachineSpec {
  /** Name of the server's Kubernetes machine class. */
  kubernetes: string;
  /** GPUs each step's pod requests (the class's GPU resource). */
  gpus: number;
}

export type MachineSpec = Ec2MachineSpec | KubernetesMachineSpec;

/** True for `kubernetes:` machines. */
export const isKubernetesMachine = (m: MachineSpec): m is KubernetesMachineSpec => 'kubernetes' in m;

export type InputSource =
  { kind: 'step'; step: string; output: string } | { kind: 'uri'; uri: string } | { kind: 'repo'; path: string };

export interface StepSpec {
  name: string;
  image: string;
  /** A string runs through `sh -c` inside the container; a list is exec form. */
  run: string | string[];
  /** Repo paths, folders or globs (relative to the project root) that are part of the cache key; undefined = the default scope (activities/source/files.ts: the tree minus .trainyard/ and .trainyardignore). */
  code?: string[];
  env: Record<string, string>;
  inputs: Record<string, InputSource>;
  outputs: string[];
  /** Explicit ordering dependencies, besides those implied by inputs. */
  needs: string[];
  machine?: string;
  timeoutSeconds: number;
  retries: number;
  cache: boolean;
  cacheVersion?: string;
  /** Parameter names this step sees; undefined = all of them. */
  params?: string[];
  /**
   * Names of the secrets the step receives as environment variables (`secrets: [HF_TOKEN]`).
   * Only names: the runner fetches the values from its own secret source when the attempt
   * starts (activities/secrets.ts), so no value is in the pipeline, a Temporal payload, the
   * cache key or the lineage. Undefined = none.
   */
  secrets?: string[];
  /** 1-based line of the step's key in the file, for reports. */
  line: number;
}

export type { ConcurrencySpec };

export interface Pipeline {
  name: string;
  /** Path of the file relative to the project root, e.g. `.trainyard/mnist.yaml`. */
  file: string;
  /** `sha256:<hex>` of the file's bytes. */
  digest: string;
  on: Triggers;
  params: Record<string, ParamSpec>;
  machines: Record<string, MachineSpec>;
  /** `concurrency:` (pipeline/concurrency.ts); absent = the defaults (superseding for `/train` runs of a PR only). */
  concurrency?: ConcurrencySpec;
  steps: Record<string, StepSpec>;
  /** Step names in a topological order (dependencies first). */
  order: string[];
}

export interface PipelineError {
  file: string;
  line: number;
  column: number;
  message: string;
}
