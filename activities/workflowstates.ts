// Whether workflows are still open, for the reapers (EC2 instances, Kubernetes Jobs): a
// resource whose run is closed or unknown is an orphan.
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { WorkflowState } from './ec2/types.js';

/**
 * Workflow id → `open` (running), `closed` (any other status) or `unknown` (no such workflow
 * in the namespace). Heartbeats once per id (it runs inside a reaper activity); other errors
 * from Temporal are thrown, so an outage never reads as "unknown" and reaps live resources.
 */
export async function workflowStates(client: Client, workflowIds: string[]): Promise<Record<string, WorkflowState>> {
  const out: Record<string, WorkflowState> = {};
  for (const id of new Set(workflowIds)) {
    Context.current().heartbeat();
    try {
      const d = await client.workflow.getHandle(id).describe();
      out[id] = d.status.name === 'RUNNING' ? 'open' : 'closed';
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) out[id] = 'unknown';
      else throw e;
    }
  }
  return out;
}
