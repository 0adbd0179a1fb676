// The audit view: runs listed straight from Temporal visibility by their search attributes
// (model/searchattributes.ts), and the setup command that registers those attributes.
import { Client, Connection, type WorkflowExecutionInfo } from '@temporalio/client';
import proto from '@temporalio/proto';
import { parseArgs } from 'node:util';
import { lineageKeyOf } from '../activities/store/keys.js';
import { SEARCH_ATTRIBUTES } from '../model/searchattributes.js';
import { dataConverter } from './codec.js';
import { EnvError, loadEngineConfig, temporalConnectOptions } from './config.js';
import { UsageError } from './local/run.js';

/**
 * Adds the run search attributes (Keyword) the namespace lacks, through the operator service;
 * returns the names added (none when all were there). Idempotent. Throws the server's error
 * (e.g. PERMISSION_DENIED on Temporal Cloud, where attributes are added in the web UI or with
 * `tcld namespace search-attributes add`).
 */
export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = Object.values(SEARCH_ATTRIBUTES).filter((n) => !have.has(n));
  if (missing.length === 0) return [];
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((n) => [n, keyword])),
  });
  return missing;
}

export interface RunFilters {
  /** `owner/repo` (GitHub, GitLab) or the local repository path, exactly. */
  repository?: string;
  /** Full commit SHA. */
  commit?: string;
  branch?: string;
  pipeline?: string;
  /** running, or a conclusion: succeeded, failed, cancelled. */
  status?: string;
}

export interface RunListing {
  workflowId: string;
  runId?: string;
  pipeline?: string;
  repository?: string;
  commit?: string;
  branch?: string;
  trigger?: string;
  requester?: string;
  /** running, succeeded, failed, cancelled; or Temporal's status for a run closed without one (terminated, timed out). */
  status: string;
  startedAt: string;
  closedAt?: string;
  durationMs?: number;
  /** The run's lineage document in the store (`trainyard lineage <runId>`); absent while running. */
  lineageKey?: string;
  /** `sha256:<hex>` of that document as stored (runs finished by this version on). */
  lineageDigest?: string;
  /** Compute cost in USD from the lineage totals; absent when nothing was priced or still running. */
  costUsd?: number;
}

const STATUSES = new Set(['running', 'succeeded', 'failed', 'cancelled']);
// Values go into a visibility query inside single quotes: what could end the literal is refused.
const SAFE = /^[A-Za-z0-9._/@:+ -]{1,300}$/;

/** The visibility query for these filters; throws UsageError naming the flag of a bad value. */
export function runsQuery(f: RunFilters): string {
  const parts = [`WorkflowType = 'pipelineRun'`];
  const add = (flag: string, attr: string, v: string | undefined) => {
    if (v === undefined) return;
    if (!SAFE.test(v))
      throw new UsageError(
        `${flag}: ${JSON.stringify(v)} is not a value runs are listed by (letters, digits, . _ / @ : + - and spaces)`,
      );
    parts.push(`${attr} = '${v}'`);
  };
  add('--repo', SEARCH_ATTRIBUTES.repository, f.repository);
  add('--commit', SEARCH_ATTRIBUTES.commit, f.commit);
  add('--branch', SEARCH_ATTRIBUTES.branch, f.branch);
  add('--pipeline', SEARCH_ATTRIBUTES.pipeline, f.pipeline);
  if (f.status !== undefined) {
    if (!STATUSES.has(f.status))
      throw new UsageError(`--status must be one of ${[...STATUSES].join(', ')}, got ${JSON.stringify(f.status)}`);
    parts.push(
      f.status === 'running' ? `ExecutionStatus = 'Running'` : `${SEARCH_ATTRIBUTES.conclusion} = '${f.status}'`,
    );
  }
  return parts.join(' AND ');
}

const first = (sa: Record<string, unknown> | undefined, name: string): string | undefined => {
  const v = sa?.[name];
  return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
};

function listingOf(w: WorkflowExecutionInfo): RunListing {
  const sa = w.searchAttributes as Record<string, unknown> | undefined;
  const runId = typeof w.memo?.runId === 'string' ? w.memo.runId : undefined;
  const conclusion = first(sa, SEARCH_ATTRIBUTES.conclusion);
  const status = w.status.name === 'RUNNING' ? 'running' : (conclusion ?? w.status.name.toLowerCase());
  const closedAt = w.closeTime?.toISOString();
  return {
    workflowId: w.workflowId,
    ...(runId ? { runId } : {}),
    ...Object.fromEntries(
      (
        [
          ['pipeline', SEARCH_ATTRIBUTES.pipeline],
          ['repository', SEARCH_ATTRIBUTES.repository],
          ['commit', SEARCH_ATTRIBUTES.commit],
          ['branch', SEARCH_ATTRIBUTES.branch],
          ['trigger', SEARCH_ATTRIBUTES.trigger],
          ['requester', SEARCH_ATTRIBUTES.requester],
        ] as const
      ).flatMap(([k, n]) => (first(sa, n) !== undefined ? [[k, first(sa, n)]] : [])),
    ),
    status,
    startedAt: w.startTime.toISOString(),
    ...(closedAt ? { closedAt, durationMs: w.closeTime!.getTime() - w.startTime.getTime() } : {}),
    ...(typeof w.memo?.lineageKey === 'string'
      ? { lineageKey: w.memo.lineageKey }
      : conclusion && runId
        ? { lineageKey: lineageKeyOf(runId) }
        : {}),
    ...(typeof w.memo?.lineageDigest === 'string' ? { lineageDigest: w.memo.lineageDigest } : {}),
    ...(typeof w.memo?.costUsd === 'number' && Number.isFinite(w.memo.costUsd) ? { costUsd: w.memo.costUsd } : {}),
  };
}

/**
 * Pipeline runs matching `filters`, newest first, straight from visibility: Temporal pages
 * the answer (`pageSize` a request) and this yields as the pages come. Continued-as-new
 * executions of one run share its workflow id; only the latest is listed.
 */
export async function* listRuns(
  client: Client,
  filters: RunFilters,
  opts: { pageSize?: number } = {},
): AsyncGenerator<RunListing> {
  const seen = new Set<string>();
  for await (const w of client.workflow.list({ query: runsQuery(filters), pageSize: opts.pageSize ?? 100 })) {
    if (seen.has(w.workflowId)) continue;
    seen.add(w.workflowId);
    yield listingOf(w);
  }
}

const duration = (ms: number | undefined): string => {
  if (ms === undefined) return '-';
  const s = Math.round(ms / 1000);
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
      : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
};

const cost = (usd: number | undefined): string =>
  usd === undefined ? '-' : usd > 0 && usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;

/**
 * One line of `trainyard runs`: start, conclusion, duration, cost (USD, `-` when nothing was
 * priced), pipeline, commit, branch, trigger:requester, the lineage document's digest (first
 * 12 hex digits; `-` while running) and the run id.
 */
export function formatRun(r: RunListing): string {
  return [
    r.startedAt.replace(/\.\d+Z$/, 'Z'),
    r.status.padEnd(9),
    duration(r.durationMs).padStart(7),
    cost(r.costUsd).padStart(8),
    (r.pipeline ?? '-').padEnd(12),
    (r.commit ?? '-').slice(0, 12),
    (r.branch ?? '-').padEnd(10),
    `${r.trigger ?? '-'}:${r.requester ?? '-'}`,
    r.lineageDigest ? r.lineageDigest.slice(0, 19) : '-'.padEnd(19),
    r.runId ?? r.workflowId,
  ].join('  ');
}

async function connect(): Promise<{ client: Client; connection: Connection; namespace: string }> {
  const cfg = loadEngineConfig();
  if (!cfg.temporalAddress)
    throw new EnvError('TEMPORAL_ADDRESS', 'is required (host:port of the Temporal frontend whose runs to list)');
  const connection = await Connection.connect(temporalConnectOptions(cfg, cfg.temporalAddress));
  return {
    connection,
    namespace: cfg.temporalNamespace,
    client: new Client({ connection, namespace: cfg.temporalNamespace, dataConverter }),
  };
}

/** `trainyard runs [--repo R] [--commit SHA] [--branch B] [--pipeline P] [--status S] [--limit N] [--json]`. */
export async function runsCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      repo: { type: 'string' },
      commit: { type: 'string' },
      branch: { type: 'string' },
      pipeline: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string', default: '50' },
      json: { type: 'boolean', default: false },
    },
  });
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit must be a positive whole number, got ${values.limit}`);
  const filters: RunFilters = {
    ...(values.repo !== undefined ? { repository: values.repo } : {}),
    ...(values.commit !== undefined ? { commit: values.commit } : {}),
    ...(values.branch !== undefined ? { branch: values.branch } : {}),
    ...(values.pipeline !== undefined ? { pipeline: values.pipeline } : {}),
    ...(values.status !== undefined ? { status: values.status } : {}),
  };
  runsQuery(filters); // bad values fail before connecting
  const { client, connection } = await connect();
  try {
    let n = 0;
    for await (const r of listRuns(client, filters, { pageSize: Math.min(limit, 100) })) {
      process.stdout.write(values.json ? `${JSON.stringify(r)}\n` : `${formatRun(r)}\n`);
      if (++n >= limit) break;
    }
    if (n === 0 && !values.json) process.stderr.write('no runs match\n');
    return 0;
  } finally {
    await connection.close();
  }
}

/** `trainyard setup-temporal`: registers the run search attributes in TEMPORAL_NAMESPACE. */
export async function setupTemporalCommand(argv: string[]): Promise<number> {
  parseArgs({ args: argv, strict: true, options: {} });
  const { connection, namespace } = await connect();
  try {
    const added = await registerSearchAttributes(connection, namespace);
    process.stdout.write(
      added.length
        ? `registered in namespace ${namespace}: ${added.join(', ')}\n`
        : `namespace ${namespace} already has the run search attributes\n`,
    );
    return 0;
  } finally {
    await connection.close();
  }
}
