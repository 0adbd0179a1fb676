// RunStarter over Temporal, through the start/cancel/status functions of activities/runs.ts.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { RunInput, RunStatus } from '../../model/types.js';
import { cancelPipelineRun, getRunStatus, startPipelineRun } from '../runs.js';
import type { RunStarter } from './context.js';

export function temporalStarter(client: Client): RunStarter {
  return {
    async exists(workflowId) {
      try {
        await client.workflow.getHandle(workflowId).describe();
        return true;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },
    async start(input: RunInput, workflowId: string) {
      const r = await startPipelineRun(client, input, { workflowId, reuse: 'reject-duplicate' });
      return { alreadyStarted: r.alreadyStarted };
    },
    async cancel(workflowId) {
      await cancelPipelineRun(client, workflowId);
    },
    async status(workflowId): Promise<RunStatus | undefined> {
      try {
        return await getRunStatus(client, workflowId);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },
  };
}
