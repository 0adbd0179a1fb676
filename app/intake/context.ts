// What every intake flow needs besides the host port.
import type { Logger } from 'pino';
import type { RunInput, RunOptions, RunStatus } from '../../workflows/types.js';
import type { GitHostRecords } from '../../activities/githost/records.js';
import type { ServerPolicy } from './policy.js';

/** Starting and steering runs; Temporal behind it (see starter.ts). */
export interface RunStarter {
  /** Whether a workflow with this id was ever started (running or closed). */
  exists(workflowId: string): Promise<boolean>;
  /** Starts unless a run with that id exists; never two runs for one id. */
  start(input: RunInput, workflowId: string): Promise<{ alreadyStarted: boolean }>;
  cancel(workflowId: string): Promise<void>;
  status(workflowId: string): Promise<RunStatus | undefined>;
}

export interface Intake {
  starter: RunStarter;
  records: GitHostRecords;
  policy: ServerPolicy;
  log: Logger;
  runOptions(): RunOptions;
  /** The run's page on this server, when it has a public URL. */
  runUrl(workflowId: string): string | undefined;
}
