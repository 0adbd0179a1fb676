// Listing pipeline runs from Temporal visibility (ListWorkflowExecutions), for `trainyard
// runs` and for resolving a run id to its workflow. A module of its own so filters on
// custom search attributes can be added here without touching the CLI.
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { RunIndexEntry } from '../activities/lineage/storage.js';

/** The workflow type of a pipeline run (workflows/pipeline.ts `pipelineRun`). */
export const RUN_WORKFLOW_TYPE = 'pipelineRun';

/** One pipeline run as `trainyard runs` shows it. */
export interface RunListEntry {
  runId: string | null;
  workflowId: string;
  pipeline: string | null;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT. */
  status: string;
  /** The run's own conclusion (from its lineage record), once it finished. */
  conclusion: string | null;
  startedAt: string;
  closedAt: string | null;
  /** Close − start, or now − start while running; ms. */
  durationMs: number;
}

export interface ListRunsOptions {
  /** Most runs returned, newest first (default 20). */
  limit?: number;
  /** Only this pipeline (compared with the run's memo). */
  pipeline?: string;
  /** The run's conclusion from the store's run index (index/runs/<runId>), when it has one. */
  conclusionOf?: (runId: string) => Promise<RunIndexEntry | undefined>;
}

/**
 * The newest pipeline runs of the namespace, newest first. A run that continued as new is
 * one entry (its current execution); the earlier executions are skipped. Visibility is
 * eventually consistent (https://docs.temporal.io/visibility): a run started a moment ago
 * may be missing.
 */
export async function listPipelineRuns(client: Client, opts: ListRunsOptions = {}): Promise<RunListEntry[]> {
  const limit = opts.limit ?? 20;
  const out: RunListEntry[] = [];
  const seen = new Set<string>();
  for await (const wf of client.workflow.list({ query: `WorkflowType = '${RUN_WORKFLOW_TYPE}'` })) {
    if (wf.status.name === 'CONTINUED_AS_NEW' || seen.has(wf.workflowId)) continue;
    seen.add(wf.workflowId);
    const entry = toEntry(wf);
    if (opts.pipeline && entry.pipeline !== opts.pipeline) continue;
    if (entry.runId && opts.conclusionOf && entry.status !== 'RUNNING') {
      entry.conclusion = (await opts.conclusionOf(entry.runId).catch(() => undefined))?.conclusion ?? null;
    }
    out.push(entry);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * The workflow id of a run given by its run id (`run-…`) or its workflow id. Looks at the
 * newest `scanLimit` pipeline runs; undefined when none matches.
 */
export async function findRunWorkflow(
  client: Client,
  run: string,
  scanLimit = 2000,
): Promise<{ workflowId: string; runId: string | null } | undefined> {
  let n = 0;
  for await (const wf of client.workflow.list({ query: `WorkflowType = '${RUN_WORKFLOW_TYPE}'` })) {
    const memoRun = typeof wf.memo?.runId === 'string' ? wf.memo.runId : null;
    if (wf.workflowId === run || memoRun === run) return { workflowId: wf.workflowId, runId: memoRun };
    if (++n >= scanLimit) break;
  }
  return undefined;
}

function toEntry(wf: WorkflowExecutionInfo): RunListEntry {
  const memo = wf.memo ?? {};
  const closed = wf.closeTime ?? null;
  return {
    runId: typeof memo.runId === 'string' ? memo.runId : null,
    workflowId: wf.workflowId,
    pipeline: typeof memo.pipeline === 'string' ? memo.pipeline : null,
    status: wf.status.name,
    conclusion: null,
    startedAt: wf.startTime.toISOString(),
    closedAt: closed ? closed.toISOString() : null,
    durationMs: (closed ?? new Date()).getTime() - wf.startTime.getTime(),
  };
}
