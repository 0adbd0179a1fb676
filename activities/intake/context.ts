// What every intake flow needs besides the host port. The intake runs as activities of a
// delivery workflow (workflows/intake.ts) on the control worker; app/ composes this.
import type { Logger } from 'pino';
import type { Pipeline, PipelineError } from '../../pipeline/types.js';
import type { RunInput, RunOptions, RunStatus } from '../../model/types.js';
import type { GitHostRecords } from '../githost/records.js';

/** Starting and steering runs; Temporal behind it (see starter.ts). */
export interface RunStarter {
  /** Whether a workflow with this id was ever started (running or closed). */
  exists(workflowId: string): Promise<boolean>;
  /** Starts unless a run with that id exists; never two runs for one id. */
  start(input: RunInput, workflowId: string): Promise<{ alreadyStarted: boolean }>;
  cancel(workflowId: string): Promise<void>;
  status(workflowId: string): Promise<RunStatus | undefined>;
}

/** A GitHub team (`org/team-slug`) whose active members may run pipelines on the org's repositories. */
export interface TrustedTeam {
  org: string;
  team: string;
}

/**
 * The server operator's policy, as the intake asks it. The server decides, never the
 * repository: app/intake/policy.ts builds this from TRAINYARD_ALLOWED_REPOS,
 * TRAINYARD_TRUSTED_TEAMS and the compute configuration.
 */
export interface IntakePolicy {
  /** Every way the pipeline breaks the policy for this repository, located in `text` where possible; empty when it may run. */
  violations(repoPath: string, pipeline: Pipeline, text?: string): PipelineError[];
  /** The trusted teams of the organisation that owns `owner/repo`. */
  trustedTeams(repoPath: string): TrustedTeam[];
  /** Whether runs of pull requests from forks receive step secrets (TRAINYARD_FORK_SECRETS=allow); absent = no. */
  forkSecrets?: boolean;
}

/** Why a fork's run gets no secrets, as its steps' failure says it. */
export const FORK_SECRETS_WITHHELD =
  'runs of pull requests from forks receive no secrets unless the server allows it (TRAINYARD_FORK_SECRETS=allow)';

export interface Intake {
  starter: RunStarter;
  records: GitHostRecords;
  policy: IntakePolicy;
  log: Logger;
  runOptions(): RunOptions;
  /** The run's page on this server, when it has a public URL. */
  runUrl(workflowId: string): string | undefined;
}
