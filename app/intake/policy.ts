// Server-side policy: what a repository may run, decided by whoever operates the server,
// never by the repository. A pull request edits the pipeline file, so every check is made
// against the pipeline at the commit that would run, with limits the PR cannot reach.
// Machine classes, instance types, GPUs and cost are the compute policy's (app/compute);
// the intake adds which repositories may run at all.
import picomatch from 'picomatch';
import type { IntakePolicy, TrustedTeam } from '../../activities/intake/context.js';
import type { Pipeline, PipelineError } from '../../pipeline/types.js';
import type { ComputeConfig } from '../compute/config.js';
import { checkComputePolicy } from '../compute/policy.js';

export type { TrustedTeam };

export interface ServerPolicy {
  /** Globs over `owner/repo` (GitHub) or `group/project` (GitLab); null = every repo the app is installed on. */
  allowedRepos: string[] | null;
  compute: ComputeConfig;
  /** TRAINYARD_TRUSTED_TEAMS; absent or empty = only repository permissions count. */
  trustedTeams?: TrustedTeam[];
  /** TRAINYARD_FORK_SECRETS=allow: runs of approved pull requests from forks receive step secrets too. Default: they do not. */
  forkSecrets?: boolean;
}

/** The trusted teams of the organisation that owns `owner/repo`. */
export function trustedTeamsFor(policy: ServerPolicy, repoPath: string): TrustedTeam[] {
  const owner = repoPath.split('/')[0]!.toLowerCase();
  return (policy.trustedTeams ?? []).filter((t) => t.org.toLowerCase() === owner);
}

export function repoAllowed(policy: ServerPolicy, repoPath: string): boolean {
  if (policy.allowedRepos === null) return true;
  return picomatch(policy.allowedRepos, { nocase: true, dot: true })(repoPath);
}

/**
 * Every way the pipeline breaks the policy, located in its file where possible; empty
 * when it may run. `text` is the file's source, for line numbers.
 */
export function policyViolations(
  policy: ServerPolicy,
  repoPath: string,
  pipeline: Pipeline,
  text?: string,
): PipelineError[] {
  const out: PipelineError[] = [];
  if (!repoAllowed(policy, repoPath)) {
    out.push({
      file: pipeline.file,
      line: 1,
      column: 1,
      message: `repository ${repoPath} is not in this server's allowed repositories (TRAINYARD_ALLOWED_REPOS)`,
    });
  }
  out.push(...checkComputePolicy(pipeline, policy.compute, text));
  return out;
}

/** The policy as the intake activities ask it (they may not import app/). */
export function intakePolicy(policy: ServerPolicy): IntakePolicy {
  return {
    violations: (repoPath, pipeline, text) => policyViolations(policy, repoPath, pipeline, text),
    trustedTeams: (repoPath) => trustedTeamsFor(policy, repoPath),
    forkSecrets: policy.forkSecrets === true,
  };
}
