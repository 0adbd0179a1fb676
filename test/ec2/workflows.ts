// Workflows for the reaper test: the reaper itself, and a workflow that just stays open (a
// run the reaper must leave alone). The host pool is tested inside the real pipelineRun
// (pool.test.ts, e2e.test.ts), not on a copy of its loop.
import { condition } from '@temporalio/workflow';

export { reapOrphans } from '../../workflows/reaper.js';

export async function stayOpen(): Promise<void> {
  await condition(() => false);
}
