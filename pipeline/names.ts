// Name rules shared by the parser, parameter resolution and the JSON Schema, and the
// "did you mean" helper every error message uses.
import { distance } from 'fastest-levenshtein';

/** A pipeline name: it is also the file's base name and part of workflow ids and check names. */
export const PIPELINE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Steps, params, machines, inputs, outputs. Inputs and outputs become file names under
 * /inputs and /outputs, so `/`, `.` and `..` must never get through. */
export const NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/** Environment variable names a shell can read. (`__proto__` is refused everywhere: these names
 * become keys of plain objects.) */
export const ENV_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export const NAME_RULE =
  'names start with a letter or "_" and contain only letters, digits, "_" and "-" (at most 64 characters)';
export const PIPELINE_NAME_RULE =
  'pipeline names use lowercase letters, digits, "_" and "-", start with a letter or digit, and are at most 63 characters';

/** True when `text` is a step, parameter, machine, input or output name: the one grammar that
 * the pipeline file, `--param`, `/train` comments and GitLab notes all accept. */
export function isName(text: string): boolean {
  return NAME.test(text);
}

/** True when `text` is a pipeline name (file name, `/train <name>`, `--pipeline`). */
export function isPipelineName(text: string): boolean {
  return PIPELINE_NAME.test(text);
}

/**
 * The environment variable a parameter arrives in: upper case, every character other than a
 * letter, digit or "_" turned into "_" (`learning-rate` → `PARAM_LEARNING_RATE`). Two names
 * that map to the same variable are refused by the parser, so the mapping is one-to-one
 * within a pipeline.
 */
export function paramEnvName(name: string): string {
  return `PARAM_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
}

/** Environment variables Trainyard sets in every step container; a step's `env` may not set them. */
export const RESERVED_ENV_PREFIX = 'TRAINYARD_';

/**
 * A secret's name (`secrets: [HF_TOKEN]`): the environment variable it arrives in, and the key
 * the runner looks it up by (its environment allow-list, or `<prefix><NAME>` in AWS SSM
 * Parameter Store, whose names allow letters, digits and `_`). An environment variable name
 * (ENV_NAME) that is neither one of Trainyard's own (TRAINYARD_*) nor where a parameter
 * arrives (PARAM_*), checked by the parser.
 */
export const SECRET_NAME = /^(?!__proto__$)(?!TRAINYARD_)(?!PARAM_)[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const SECRET_NAME_RULE =
  'secret names are environment variable names: letters, digits and "_", not starting with a digit, at most 128 characters, and not starting with TRAINYARD_ or PARAM_ (Trainyard sets those)';

/** True when `text` may name a secret. */
export function isSecretName(text: string): boolean {
  return SECRET_NAME.test(text);
}

/** Words people bring from other tools, mapped to ours. */
const SYNONYMS: Record<string, string> = {
  command: 'run',
  cmd: 'run',
  script: 'run',
  args: 'run',
  container: 'image',
  docker: 'image',
  environment: 'env',
  variables: 'env',
  vars: 'env',
  depends_on: 'needs',
  'depends-on': 'needs',
  dependencies: 'needs',
  after: 'needs',
  need: 'needs',
  input: 'inputs',
  output: 'outputs',
  artifacts: 'outputs',
  parameters: 'params',
  param: 'params',
  arguments: 'params',
  timeout_minutes: 'timeout',
  'timeout-minutes': 'timeout',
  time_limit: 'timeout',
  retry: 'retries',
  attempts: 'retries',
  instance_type: 'instance',
  instances: 'instance',
  instance_types: 'instance',
  gpu: 'gpus',
  disk: 'disk_gb',
  disk_size: 'disk_gb',
  int: 'integer',
  float: 'number',
  double: 'number',
  bool: 'boolean',
  str: 'string',
  choice: 'enum',
  choices: 'values',
  options: 'values',
  enum: 'values',
  jobs: 'steps',
  stages: 'steps',
  tasks: 'steps',
  runner: 'machine',
  'runs-on': 'machine',
  runs_on: 'machine',
  triggers: 'on',
  trigger: 'on',
  default_value: 'default',
  minimum: 'min',
  maximum: 'max',
  branch: 'branches',
  path: 'paths',
  comments: 'comment',
};

/** The closest candidate to `word`, when it is close enough to be a likely typo. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const synonym = SYNONYMS[word] ?? SYNONYMS[word.toLowerCase()];
  if (synonym !== undefined && candidates.includes(synonym)) return synonym;
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = word.length <= 3 ? 1 : Math.max(2, Math.floor(word.length / 3));
  if (bestDistance <= limit) return best;
  // A shortened name (`prep` for `prepare`) is far by edit distance but an obvious match.
  return lower.length >= 3 ? candidates.find((c) => c.toLowerCase().startsWith(lower)) : undefined;
}

/** `; did you mean "x"?` or an empty string. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const s = suggest(word, candidates);
  return s === undefined ? '' : `; did you mean "${s}"?`;
}

/** Quote a user's text for a message, cut short so one error stays one line. */
export function quote(text: string, max = 60): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}
