// `concurrency: { group, cancel-in-progress }` (GitHub Actions' key): which runs supersede
// each other. Pure: the parser checks group templates, the intake expands them per run.

/** The names a group may use, as `{{name}}`: a small fixed set instead of GitHub's expression language. */
export const GROUP_VARIABLES = ['branch', 'pr', 'pipeline'] as const;
export type GroupVariable = (typeof GROUP_VARIABLES)[number];

/** Most characters of a group as written (expanded, a branch name can make it longer). */
export const MAX_GROUP_CHARS = 200;

/** `concurrency:` of a pipeline. */
export interface ConcurrencySpec {
  /** The group template, e.g. `{{pipeline}}-{{branch}}`. */
  group: string;
  /** A new run of the group cancels the one still running (GitHub's `cancel-in-progress`; default false). */
  cancelInProgress: boolean;
}

/**
 * The group of `/train` and Re-run runs of a pull request when the pipeline has no
 * `concurrency`: a new `/train` of the same PR and pipeline supersedes the one running.
 * Pushes have no group by default (every commit of the default branch keeps its run).
 */
export const DEFAULT_PR_GROUP = '{{pipeline}}-pr-{{pr}}';

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** What is wrong with a group template, as sentences; empty when it is fine. */
export function groupProblems(template: string): string[] {
  const out: string[] = [];
  if (template.length > MAX_GROUP_CHARS)
    out.push(`is ${template.length} characters long; a group may have at most ${MAX_GROUP_CHARS}`);
  if (template.includes('${{')) {
    out.push(
      `uses a GitHub Actions expression (\${{ … }}), which Trainyard does not evaluate; write ${GROUP_VARIABLES.map((v) => `{{${v}}}`).join(', ')} instead`,
    );
    return out;
  }
  for (const m of template.matchAll(PLACEHOLDER)) {
    const name = m[1]!;
    if (!(GROUP_VARIABLES as readonly string[]).includes(name)) {
      out.push(`uses {{${name}}}, which is not one of ${GROUP_VARIABLES.map((v) => `{{${v}}}`).join(', ')}`);
    }
  }
  const rest = template.replace(PLACEHOLDER, '');
  if (rest.includes('{{') || rest.includes('}}')) out.push('has an unclosed "{{" or a stray "}}"');
  return out;
}

/** What the variables are for one run; absent = the run has none (a push has no PR). */
export interface GroupValues {
  pipeline: string;
  /** The pushed branch, or a pull request's head branch in this repository. */
  branch?: string;
  /** The pull / merge request number. */
  pr?: number;
}

/** The group with its variables filled in; undefined when the run lacks one of them. */
export function expandGroup(template: string, values: GroupValues): string | undefined {
  let missing = false;
  const text = template.replace(PLACEHOLDER, (_, name: string) => {
    const v = values[name as GroupVariable];
    if (v === undefined || v === '') missing = true;
    return v === undefined ? '' : String(v);
  });
  return missing ? undefined : text;
}

/**
 * The group whose running run this run cancels, or undefined when it cancels none: the
 * pipeline's `concurrency` when it has `cancel-in-progress: true` and every variable of its
 * group has a value for this run; without `concurrency`, DEFAULT_PR_GROUP for runs on a pull
 * request (`/train`, Re-run) and none for pushes.
 */
export function supersedingGroup(concurrency: ConcurrencySpec | undefined, values: GroupValues): string | undefined {
  if (concurrency === undefined) return values.pr === undefined ? undefined : expandGroup(DEFAULT_PR_GROUP, values);
  return concurrency.cancelInProgress ? expandGroup(concurrency.group, values) : undefined;
}
