// Starting, cancelling and watching pipeline runs over a Temporal client: used by the CLI
// (through app/engine.ts) and by the intake activities that start runs for webhooks.
import { runSearchAttributes } from '../model/searchattributes.js';
import { runsStarted } from './metrics.js';
import {
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { cancelSignal, statusQuery } from '../model/contracts.js';
import type { RunInput, RunStatus } from '../model/types.js';
import type { pipelineRun } from '../workflows/pipeline.js';

export interface StartedRun {
  workflowId: string;
  firstExecutionRunId: string;
  alreadyStarted: boolean;
}

/**
 * Starts a run, or joins the one with the same workflow id (a redelivered webhook, a
 * second push event for the same commit). With 'reject-duplicate', a closed run with the
 * same id is not started again either (Temporal's WorkflowIdReusePolicy, for as long as
 * the namespace retains the closed run).
 */
export async function startPipelineRun(
  client: Client,
  input: RunInput,
  opts: { workflowId: string; reuse: 'reject-duplicate' | 'allow-duplicate' },
): Promise<StartedRun> {
  try {
    const handle = await startWithAttributes(
      client,
      {
        workflowId: opts.workflowId,
        taskQueue: input.options.controlQueue,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        workflowIdReusePolicy:
          opts.reuse === 'reject-duplicate'
            ? WorkflowIdReusePolicy.REJECT_DUPLICATE
            : WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        memo: { pipeline: input.pipeline.name, runId: input.runId },
      },
      runSearchAttributes(input),
    );
    const first = handle.firstExecutionRunId;
    // USE_EXISTING answers with the running execution's id when one was there already.
    const desc = await handle.describe();
    const alreadyStarted = desc.memo?.runId !== input.runId;
    if (!alreadyStarted) runsStarted.inc({ trigger: input.trigger.kind });
    return { workflowId: opts.workflowId, firstExecutionRunId: first, alreadyStarted };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const desc = await client.workflow.getHandle(opts.workflowId).describe();
      return { workflowId: opts.workflowId, firstExecutionRunId: desc.runId, alreadyStarted: true };
    }
    throw err;
  }
}

export async function cancelPipelineRun(client: Client, workflowId: string): Promise<void> {
  await client.workflow.getHandle(workflowId).signal(cancelSignal);
}

export async function getRunStatus(client: Client, workflowId: string): Promise<RunStatus> {
  const handle = client.workflow.getHandle<typeof pipelineRun>(workflowId);
  const desc = await handle.describe();
  if (desc.status.name === 'COMPLETED') return handle.result();
  return handle.query(statusQuery);
}

type StartOptions = Omit<WorkflowStartOptions<typeof pipelineRun>, 'searchAttributes'>;

/**
 * Starts pipelineRun with its search attributes; a namespace where they are not registered
 * (`trainyard setup-temporal` was not run) refuses them, and the run starts without: it is
 * then missing from `trainyard runs` filters, nothing else.
 */
async function startWithAttributes(client: Client, options: StartOptions, searchAttributes: Record<string, string[]>) {
  try {
    return await client.workflow.start<typeof pipelineRun>('pipelineRun', {
      ...options,
      searchAttributes,
    });
  } catch (err) {
    // The SDK wraps the server's INVALID_ARGUMENT ("… has no mapping defined for search
    // attribute …") in a ServiceError "Failed to start Workflow": look through the causes.
    if (!mentionsSearchAttribute(err)) throw err;
    return client.workflow.start<typeof pipelineRun>('pipelineRun', options);
  }
}

function mentionsSearchAttribute(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/search attribute/i.test(e.message)) return true;
  }
  return false;
}
