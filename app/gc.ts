// `trainyard gc`: retention for the artifact store (activities/store/gc.ts does the work;
// this file reads the flags and asks Temporal what the open runs still use).
import { Client, Connection } from '@temporalio/client';
import { parseArgs } from 'node:util';
import { collectGarbage, type GcSummary } from '../activities/store/gc.js';
import { openStore } from './store.js';
import { FRESHEN_AFTER_MS } from '../activities/store/s3.js';
import { statusQuery } from '../model/contracts.js';
import { dataConverter } from './codec.js';
import { loadEngineConfig, temporalConnectOptions } from './config.js';
import { UsageError } from './local/run.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `90d`, `12h`, `30m`, `45s`, `2w` → milliseconds; throws UsageError naming the flag otherwise. */
export function parseDuration(flag: string, text: string): number {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!m)
    throw new UsageError(
      `${flag} must be a whole number and a unit (s, m, h, d, w), e.g. 90d; got ${JSON.stringify(text)}`,
    );
  return Number(m[1]) * UNITS[m[2]!]!;
}

/**
 * The live status of every open pipeline run (Temporal visibility: ExecutionStatus
 * 'Running'), for gc to mark what they use. A run whose prepareSteps activity started before
 * `since` may be reusing a cache record gc has just deleted: its status is read once that
 * activity has finished (Temporal queries see every event recorded before them). Throws when
 * a run cannot be queried (no worker on its control queue) or such an activity is still
 * running after `deadlineMs`: gc then deletes no blob.
 */
export async function openRunReferences(
  client: Client,
  since: number,
  deadlineMs = 120_000,
  controlQueue?: string,
): Promise<unknown[]> {
  const out: unknown[] = [];
  const deadline = Date.now() + deadlineMs;
  if (controlQueue !== undefined && !/^[A-Za-z0-9._:-]{1,200}$/.test(controlQueue))
    throw new Error(`gc: not a task queue name: ${JSON.stringify(controlQueue)}`);
  // `controlQueue`: only the runs of one deployment (its control queue), when several share a namespace.
  const scope = controlQueue === undefined ? '' : ` AND TaskQueue = '${controlQueue}'`;
  for await (const w of client.workflow.list({
    query: `WorkflowType = 'pipelineRun' AND ExecutionStatus = 'Running'${scope}`,
  })) {
    const handle = client.workflow.getHandle(w.workflowId, w.runId);
    for (;;) {
      const desc = await handle.describe();
      if (desc.status.name !== 'RUNNING') break;
      const busy = (desc.raw.pendingActivities ?? []).some((a) => {
        const t = a.lastStartedTime;
        const started = t ? Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;
        return a.activityType?.name === 'prepareSteps' && started > 0 && started <= since;
      });
      if (!busy) break;
      if (Date.now() > deadline)
        throw new Error(
          `gc: run ${w.workflowId} is still preparing steps after ${deadlineMs / 1000}s; nothing was deleted from the store's blobs`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
    try {
      out.push(await handle.query(statusQuery));
    } catch (err) {
      // Closed meanwhile: its lineage document (a root) names what it used.
      if ((await handle.describe().catch(() => undefined))?.status.name !== 'RUNNING') continue;
      throw new Error(
        `gc: cannot read what open run ${w.workflowId} uses (${(err as Error).message}); is a worker polling its control queue? Nothing was deleted from the store's blobs`,
      );
    }
  }
  return out;
}

const size = (n: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
};

/** The summary as `trainyard gc` prints it. */
export function formatGcSummary(s: GcSummary, graceText: string): string {
  const b = s.blobs;
  return [
    `trainyard gc${s.applied ? '' : ' (dry run)'}: ${s.store}`,
    `  runs:          ${s.runs.total} (kept ${s.runs.kept}, expired ${s.runs.expired}); open runs checked: ${s.runs.open}`,
    `  cache records: ${s.cacheRecords.total} (kept ${s.cacheRecords.kept}, expired ${s.cacheRecords.expired})`,
    `  records:       ${s.records.deleted} ${s.applied ? 'deleted' : 'to delete'}`,
    `  blobs:         ${b.total} objects, ${size(b.totalBytes)}; reachable ${b.reachable} (${size(b.reachableBytes)}); newer than ${graceText} ${b.young} (${size(b.youngBytes)})`,
    `  ${`${s.applied ? 'deleted' : 'to delete'}:`.padEnd(15)}${b.deleted} objects, ${size(b.deletedBytes)}`,
    ...(s.applied ? [] : ['Nothing was deleted; run again with --apply to delete.']),
  ].join('\n');
}

/** `trainyard gc [--older-than 90d] [--keep-last N] [--grace 24h] [--apply] [--json]`; returns the exit code. */
export async function gcCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'older-than': { type: 'string', default: '90d' },
      'keep-last': { type: 'string', default: '5' },
      grace: { type: 'string', default: '24h' },
      apply: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const olderThanMs = parseDuration('--older-than', values['older-than']!);
  const graceMs = parseDuration('--grace', values.grace!);
  // Reuse of an S3 blob younger than this is not recorded (activities/store/s3.ts).
  if (graceMs < FRESHEN_AFTER_MS)
    throw new UsageError(
      `--grace must be at least 1h (a blob reused within its first hour is not re-dated), got ${values.grace}`,
    );
  const keepLast = Number(values['keep-last']);
  if (!Number.isInteger(keepLast) || keepLast < 0)
    throw new UsageError(`--keep-last must be a whole number (runs kept per pipeline), got ${values['keep-last']}`);
  const cfg = loadEngineConfig();
  const store = openStore(cfg);
  let connection: Connection | undefined;
  try {
    let openReferences: (() => Promise<unknown[]>) | undefined;
    if (cfg.temporalAddress) {
      connection = await Connection.connect(temporalConnectOptions(cfg, cfg.temporalAddress));
      const client = new Client({ connection, namespace: cfg.temporalNamespace, dataConverter });
      openReferences = () => openRunReferences(client, Date.now());
    } else {
      process.stderr.write(
        `trainyard gc: TEMPORAL_ADDRESS is not set, so open runs are not checked; only blobs older than ${values.grace} can go\n`,
      );
    }
    const summary = await collectGarbage(store, {
      olderThanMs,
      keepLast,
      graceMs,
      apply: values.apply!,
      ...(openReferences ? { openReferences } : {}),
    });
    process.stdout.write(
      values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatGcSummary(summary, values.grace!)}\n`,
    );
    return 0;
  } finally {
    await connection?.close();
  }
}
