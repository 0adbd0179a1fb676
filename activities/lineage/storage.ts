// Stores lineage documents and the small index records that answer "which runs produced /
// consumed this artifact" from the store alone, by listing one key prefix instead of
// scanning every run.
//
// Record layout: activities/store/keys.ts (runs/<runId>/lineage, …/report, index/runs/,
// index/produced/, index/consumed/, index/digest-prefix/, index/branch/ in compare.ts).
import type { ArtifactStore } from '../store/types.js';
import {
  MIN_PREFIX_HEX,
  RUN_INDEX_PREFIX,
  consumedIndexPrefix,
  digestPrefixIndexKey,
  digestPrefixIndexPrefix,
  lineageKeyOf,
  producedIndexPrefix,
  reportKeyOf,
  runIndexKey,
} from '../store/keys.js';
import type { CacheSource, Digest, InputOrigin, RunStatus } from '../../model/types.js';
import {
  LINEAGE_SCHEMA_ID,
  type LineageConclusion,
  type LineageDoc,
  type LineageTotals,
  type SourceStepFacts,
} from './document.js';
import { renderReport } from '../report/markdown.js';
import { recordBranchRun } from './compare.js';
import { METRICS_SUMMARY_SCHEMA, type MetricsSummary } from '../runner/summary.js';

import { isDigest } from '../store/digest.js';
/** A digest or digest prefix as a user types it: optional `sha256:`, then hex. */
export const HEX_PREFIX = /^(?:sha256:)?([0-9a-f]+)$/;
const INDEX_WRITE_CONCURRENCY = 16;
// The store's record-key alphabet (activities/store/keys.ts), one segment, not `.`/`..`.
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/;

export interface RunIndexEntry {
  runId: string;
  pipeline: string;
  file: string;
  commit: string;
  conclusion: LineageConclusion;
  startedAt: string;
  finishedAt: string;
  totals: LineageTotals;
}

export interface ProducedEntry {
  step: string;
  output: string;
  state: string;
  /** True when the output was reused (cache hit or joined execution) rather than made by this run. */
  reused: boolean;
  producedBy: CacheSource | null;
  image: string | null;
  /** The producing step's own inputs: one hop upstream. */
  inputs: { name: string; digest: Digest; origin: InputOrigin }[];
}

export interface ConsumedEntry {
  step: string;
  input: string;
  state: string;
  origin: InputOrigin;
}

/** One record per (digest, run): a run can produce or consume the same bytes in several steps (fan-out). */
export interface DigestIndexEntry<E> {
  runId: string;
  pipeline: string;
  commit: string;
  finishedAt: string;
  size: number;
  kind: 'file' | 'dir';
  uri: string;
  entries: E[];
}

export interface SavedLineage {
  lineageKey: string;
  reportKey: string;
  reportMarkdown: string;
}

function assertRunId(runId: string): void {
  if (!RUN_ID.test(runId)) {
    throw new Error(
      `lineage: run id ${JSON.stringify(runId)} is not usable as a store key (letters, digits and ._:- only, starting with a letter or digit)`,
    );
  }
}

function group<E>(
  doc: LineageDoc,
  into: Map<string, DigestIndexEntry<E>>,
  a: { digest: string; size: number; kind: 'file' | 'dir'; uri: string },
  e: E,
): void {
  if (!isDigest(a.digest)) return; // nothing else is a content address; never let it shape a key
  let rec = into.get(a.digest);
  if (!rec) {
    rec = {
      runId: doc.runId,
      pipeline: doc.pipeline.name,
      commit: doc.source.commit,
      finishedAt: doc.finishedAt,
      size: a.size,
      kind: a.kind,
      uri: a.uri,
      entries: [],
    };
    into.set(a.digest, rec);
  }
  rec.entries.push(e);
}

export function indexEntriesOf(doc: LineageDoc): {
  produced: Map<string, DigestIndexEntry<ProducedEntry>>;
  consumed: Map<string, DigestIndexEntry<ConsumedEntry>>;
} {
  const produced = new Map<string, DigestIndexEntry<ProducedEntry>>();
  const consumed = new Map<string, DigestIndexEntry<ConsumedEntry>>();
  for (const s of doc.steps) {
    const inputs = Object.entries(s.inputs).map(([name, i]) => ({ name, digest: i.digest, origin: i.origin }));
    for (const [name, i] of Object.entries(s.inputs)) {
      group(doc, consumed, i, { step: s.name, input: name, state: s.state, origin: i.origin });
    }
    const reused = !s.executedHere && s.producedBy !== null && s.producedBy.runId !== doc.runId;
    for (const [name, o] of Object.entries(s.outputs)) {
      group(doc, produced, o, {
        step: s.name,
        output: name,
        state: s.state,
        reused: reused || s.cache?.decision === 'hit' || s.cache?.decision === 'joined',
        producedBy: s.producedBy,
        image: s.image.resolved ?? s.image.ref,
        inputs,
      });
    }
  }
  return { produced, consumed };
}

export async function saveLineage(
  store: ArtifactStore,
  doc: LineageDoc,
  opts: { detailsUrl?: string; maxBytes?: number; comparison?: string[] } = {},
): Promise<SavedLineage> {
  assertRunId(doc.runId);
  const lineageKey = lineageKeyOf(doc.runId);
  const reportKey = reportKeyOf(doc.runId);
  const reportMarkdown = renderReport(doc, opts);
  // The document first: an index entry must never point at a run whose document is missing.
  await store.putRecord(lineageKey, doc);
  await store.putRecord(reportKey, { markdown: reportMarkdown });
  const { produced, consumed } = indexEntriesOf(doc);
  const digests = new Set<string>([...produced.keys(), ...consumed.keys()]);
  const writes: [string, unknown][] = [];
  for (const [d, rec] of produced) writes.push([`${producedIndexPrefix(d)}${doc.runId}`, rec]);
  for (const [d, rec] of consumed) writes.push([`${consumedIndexPrefix(d)}${doc.runId}`, rec]);
  for (const d of digests) writes.push([digestPrefixIndexKey(d), { digest: d }]);
  // A few at a time: a 2,000-step run means thousands of small PUTs against S3.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < writes.length) {
      const [key, value] = writes[next++]!;
      await store.putRecord(key, value);
    }
  };
  await Promise.all(Array.from({ length: Math.min(INDEX_WRITE_CONCURRENCY, writes.length) }, worker));
  const entry: RunIndexEntry = {
    runId: doc.runId,
    pipeline: doc.pipeline.name,
    file: doc.pipeline.file,
    commit: doc.source.commit,
    conclusion: doc.conclusion,
    startedAt: doc.startedAt,
    finishedAt: doc.finishedAt,
    totals: doc.totals,
  };
  await recordBranchRun(store, doc);
  // Written last: a run is listed only once everything about it is findable.
  await store.putRecord(runIndexKey(doc.runId), entry);
  return { lineageKey, reportKey, reportMarkdown };
}

export const hexOf = (digest: string): string => digest.slice('sha256:'.length);

/** listRecords may answer full keys or keys relative to the prefix; this gives the part after the prefix. */
export function tailOf(prefix: string, key: string): string {
  return key.startsWith(prefix) ? key.slice(prefix.length) : key;
}

export async function loadLineage(store: ArtifactStore, runId: string): Promise<LineageDoc | undefined> {
  if (!RUN_ID.test(runId)) return undefined;
  const doc = await store.getRecord<LineageDoc>(lineageKeyOf(runId));
  if (doc && doc.schema !== LINEAGE_SCHEMA_ID) {
    throw new Error(
      `lineage: run ${runId} has a document of format ${JSON.stringify(doc.schema)}, this version reads ${LINEAGE_SCHEMA_ID}`,
    );
  }
  return doc;
}

export async function listRuns(store: ArtifactStore, filter: { pipeline?: string } = {}): Promise<RunIndexEntry[]> {
  const prefix = RUN_INDEX_PREFIX;
  const keys = await store.listRecords(prefix);
  const entries: RunIndexEntry[] = [];
  for (const k of keys) {
    const e = await store.getRecord<RunIndexEntry>(`${prefix}${tailOf(prefix, k)}`);
    if (e && (!filter.pipeline || e.pipeline === filter.pipeline)) entries.push(e);
  }
  return entries.sort((a, b) => b.finishedAt.localeCompare(a.finishedAt));
}

/**
 * For each reused step of a finished run, what its original execution took and cost,
 * read from the source run's lineage (so the report can state the cache's savings).
 */
export async function lookupSourceSteps(
  store: ArtifactStore,
  status: RunStatus,
): Promise<Record<string, SourceStepFacts>> {
  const facts: Record<string, SourceStepFacts> = {};
  const docs = new Map<string, LineageDoc | undefined>();
  for (const s of status.steps) {
    const src =
      s.cache?.source ?? (s.outcome && s.outcome.producedBy.runId !== status.runId ? s.outcome.producedBy : undefined);
    if (!src || src.runId === status.runId) continue;
    if (!docs.has(src.runId)) docs.set(src.runId, await loadLineage(store, src.runId).catch(() => undefined));
    const orig = docs.get(src.runId)?.steps.find((x) => x.name === src.step);
    if (!orig) continue;
    const f: SourceStepFacts = {};
    if (orig.durationMs !== null) f.durationMs = orig.durationMs;
    if (orig.costUsd !== null) f.costUsd = orig.costUsd;
    facts[s.name] = f;
  }
  return facts;
}

/**
 * The metrics summaries the run's steps refer to (StepMetrics.summary), read from the store
 * a few at a time. One that cannot be read becomes `{ problem }`, which the report shows.
 */
export async function loadMetricSummaries(
  store: ArtifactStore,
  status: RunStatus,
): Promise<Record<Digest, MetricsSummary | { problem: string }>> {
  const digests = [
    ...new Set(status.steps.flatMap((s) => (s.outcome?.metrics?.summary ? [s.outcome.metrics.summary] : []))),
  ];
  const out: Record<Digest, MetricsSummary | { problem: string }> = {};
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < digests.length) {
      const d = digests[next++]!;
      try {
        const parsed = JSON.parse((await store.getBytes(d)).toString('utf8')) as MetricsSummary;
        out[d] =
          parsed.schema === METRICS_SUMMARY_SCHEMA
            ? parsed
            : { problem: `the metrics summary ${d} has an unknown format` };
      } catch (err) {
        out[d] = { problem: `the metrics summary ${d} could not be read: ${(err as Error).message}` };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(INDEX_WRITE_CONCURRENCY, digests.length) }, worker));
  return out;
}
