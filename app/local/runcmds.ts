// `trainyard runs`, `status RUN` and `cancel RUN`: asking Temporal about runs started by
// anyone (this CLI, a webhook) in the configured namespace. Without TEMPORAL_ADDRESS (no
// server outlives a local `trainyard run`), runs and status answer from the store's
// lineage records, which hold finished runs only.
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { listRuns, loadLineage, type RunIndexEntry } from '../../activities/lineage/storage.js';
import type { LineageDoc } from '../../activities/lineage/document.js';
import { openStore } from '../store.js';
import { lineageKeyOf, runIndexKey } from '../../activities/store/keys.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { terminalText } from '../../activities/usertext.js';
import type { RunStatus, StepStatus } from '../../model/types.js';
import { dataConverter } from '../codec.js';
import { EnvError, loadEngineConfig, temporalConnectOptions, type EngineConfig } from '../config.js';
import { cancelPipelineRun, getRunStatus } from '../engine.js';
import { findRunWorkflow, listPipelineRuns, type RunListEntry } from '../runlist.js';
import { renderTable } from './table.js';
import { UsageError } from './errors.js';

type Out = NodeJS.WritableStream;

/** Opens a client on TEMPORAL_ADDRESS, runs `fn`, closes it. */
async function withClient<T>(cfg: EngineConfig, fn: (c: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect(temporalConnectOptions(cfg, cfg.temporalAddress!));
  try {
    return await fn(new Client({ connection, namespace: cfg.temporalNamespace, dataConverter }));
  } finally {
    await connection.close();
  }
}

const fmtMs = (ms: number): string =>
  ms < 60_000
    ? `${(ms / 1000).toFixed(1)}s`
    : ms < 3_600_000
      ? `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
      : `${Math.floor(ms / 3_600_000)}h${Math.round((ms % 3_600_000) / 60_000)}m`;

/** `trainyard runs [--pipeline P] [--limit N] [--json]`: newest first. Returns the exit code. */
export async function runsCommand(
  opts: { pipeline?: string; limit: number; json: boolean },
  out: Out = process.stdout,
): Promise<number> {
  const cfg = loadEngineConfig();
  const store = openStore(cfg);
  let rows: RunListEntry[];
  let from: string;
  if (cfg.temporalAddress) {
    rows = await withClient(cfg, (c) =>
      listPipelineRuns(c, {
        limit: opts.limit,
        ...(opts.pipeline ? { pipeline: opts.pipeline } : {}),
        conclusionOf: (runId) => store.getRecord<RunIndexEntry>(runIndexKey(runId)),
      }),
    );
    from = `Temporal at ${cfg.temporalAddress} (namespace ${cfg.temporalNamespace})`;
  } else {
    rows = (await listRuns(store, opts.pipeline ? { pipeline: opts.pipeline } : {})).slice(0, opts.limit).map((e) => ({
      runId: e.runId,
      workflowId: '',
      pipeline: e.pipeline,
      status: 'CLOSED',
      conclusion: e.conclusion,
      startedAt: e.startedAt,
      closedAt: e.finishedAt,
      durationMs: Math.max(0, Date.parse(e.finishedAt) - Date.parse(e.startedAt)),
    }));
    from = `${store.location}: finished runs only (set TEMPORAL_ADDRESS to list running ones)`;
  }
  if (opts.json) {
    out.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    out.write(`no runs (${from})\n`);
    return 0;
  }
  out.write(
    `${'RUN'.padEnd(30)}  ${'PIPELINE'.padEnd(16)}  ${'STATUS'.padEnd(10)}  ${'CONCLUSION'.padEnd(10)}  ${'STARTED'.padEnd(20)}  DURATION\n`,
  );
  for (const r of rows) {
    out.write(
      `${terminalText(r.runId ?? r.workflowId).padEnd(30)}  ${terminalText(r.pipeline ?? '?').padEnd(16)}  ${r.status.padEnd(10)}  ${(r.conclusion ?? '').padEnd(10)}  ${r.startedAt.slice(0, 19).padEnd(20)}  ${fmtMs(r.durationMs)}\n`,
    );
  }
  return 0;
}

/** A finished run's lineage as the status a running one answers with. */
function statusFromLineage(doc: LineageDoc): RunStatus {
  return {
    runId: doc.runId,
    pipeline: doc.pipeline.name,
    state: doc.conclusion,
    startedAt: doc.startedAt,
    finishedAt: doc.finishedAt,
    steps: doc.steps.map((s): StepStatus => ({
      name: s.name,
      state: s.state,
      ...(s.startedAt ? { startedAt: s.startedAt } : {}),
      ...(s.finishedAt ? { finishedAt: s.finishedAt } : {}),
      ...(s.message ? { message: s.message } : {}),
      ...(s.cache
        ? {
            cache: {
              decision: s.cache.decision,
              key: s.cache.key,
              reason: s.cache.reason,
              ...(s.cache.source ? { source: s.cache.source } : {}),
            },
          }
        : {}),
      ...(s.state === 'succeeded' || s.state === 'failed' || s.state === 'cancelled' || s.state === 'cached'
        ? {
            outcome: {
              state: s.state === 'cached' ? 'succeeded' : s.state,
              outputs: { ...s.outputs },
              attempts: s.attempts,
              ...(s.logDigest ? { logDigest: s.logDigest } : {}),
              producedBy: s.producedBy ?? {
                runId: doc.runId,
                commit: doc.source.commit,
                step: s.name,
                pipeline: doc.pipeline.name,
                finishedAt: doc.finishedAt,
              },
            },
          }
        : {}),
    })),
    lineageKey: lineageKeyOf(doc.runId),
  };
}

export interface FoundRun {
  status: RunStatus;
  workflowId: string | null;
}

/**
 * A run's status by run id or workflow id: from Temporal when TEMPORAL_ADDRESS is set (a
 * running run answers its status query), else from the store's lineage (finished runs).
 * Throws UsageError when neither knows it.
 */
export async function findRun(cfg: EngineConfig, store: ArtifactStore, run: string): Promise<FoundRun> {
  if (cfg.temporalAddress) {
    const found = await withClient(cfg, async (c) => {
      const wf = await findRunWorkflow(c, run);
      if (!wf) return undefined;
      try {
        return { status: await getRunStatus(c, wf.workflowId), workflowId: wf.workflowId };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        // A failed or terminated workflow answers no query: its lineage may still exist.
        const doc = wf.runId ? await loadLineage(store, wf.runId) : undefined;
        if (doc) return { status: statusFromLineage(doc), workflowId: wf.workflowId };
        throw err;
      }
    });
    if (found) return found;
  }
  const doc = await loadLineage(store, run);
  if (doc) return { status: statusFromLineage(doc), workflowId: null };
  throw new UsageError(
    `no run ${JSON.stringify(run)} ${cfg.temporalAddress ? `in Temporal at ${cfg.temporalAddress} nor ` : ''}in ${store.location}${cfg.temporalAddress ? '' : ' (set TEMPORAL_ADDRESS to see running runs)'}`,
  );
}

const msBetween = (start: string | undefined, end: string | undefined): number | null => {
  const ms = start && end ? Date.parse(end) - Date.parse(start) : NaN;
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
};

/**
 * What `status --json` and `run --json` print for a run: the run's status (RunStatus, as the
 * workflow's query answers it) with its workflow id, and on each step also `cached` (reused,
 * not run), `durationMs` (start to end, null while unknown) and `outputs` (output name →
 * sha256 digest, for `trainyard get`).
 */
export function runStatusJson(status: RunStatus, workflowId: string | null): Record<string, unknown> {
  return {
    workflowId,
    ...status,
    steps: status.steps.map((s) => ({
      ...s,
      cached: s.state === 'cached',
      durationMs: msBetween(s.startedAt, s.finishedAt),
      outputs: Object.fromEntries(Object.entries(s.outcome?.outputs ?? {}).map(([name, a]) => [name, a.digest])),
    })),
  };
}

/** `trainyard status RUN [--json]`: the step table of a running or finished run. */
export async function statusCommand(run: string, opts: { json: boolean }, out: Out = process.stdout): Promise<number> {
  const cfg = loadEngineConfig();
  const { status, workflowId } = await findRun(cfg, openStore(cfg), run);
  if (opts.json) {
    out.write(`${JSON.stringify(runStatusJson(status, workflowId), null, 2)}\n`);
    return 0;
  }
  out.write(`${renderTable(status).join('\n')}\n`);
  return 0;
}

/**
 * `trainyard cancel RUN`: asks the run to cancel (the same signal as Ctrl-C on `trainyard
 * run` and the check run's Cancel button); its containers are removed and its report written.
 * Exit 0 when asked, 1 when the run already ended.
 */
export async function cancelCommand(run: string, opts: { json: boolean }, out: Out = process.stdout): Promise<number> {
  const cfg = loadEngineConfig();
  if (!cfg.temporalAddress)
    throw new EnvError(
      'TEMPORAL_ADDRESS',
      'is required for `trainyard cancel` (host:port of the Temporal frontend that runs the run)',
    );
  return withClient(cfg, async (c) => {
    const wf = await findRunWorkflow(c, run);
    if (!wf) throw new UsageError(`no run ${JSON.stringify(run)} in Temporal at ${cfg.temporalAddress}`);
    const desc = await c.workflow.getHandle(wf.workflowId).describe();
    if (desc.status.name !== 'RUNNING') {
      if (opts.json)
        out.write(
          `${JSON.stringify({ workflowId: wf.workflowId, runId: wf.runId, cancelRequested: false, status: desc.status.name })}\n`,
        );
      else
        out.write(
          `run ${terminalText(wf.runId ?? wf.workflowId)} already ended (${desc.status.name}); nothing to cancel\n`,
        );
      return 1;
    }
    await cancelPipelineRun(c, wf.workflowId);
    if (opts.json)
      out.write(
        `${JSON.stringify({ workflowId: wf.workflowId, runId: wf.runId, cancelRequested: true, status: desc.status.name })}\n`,
      );
    else
      out.write(
        `cancel requested for run ${terminalText(wf.runId ?? wf.workflowId)} (workflow ${terminalText(wf.workflowId)}); its containers are removed and its report written: trainyard status ${terminalText(wf.runId ?? wf.workflowId)}\n`,
      );
    return 0;
  });
}
