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
import { stepDetail } from '../report/statetext.js';
import { terminalText } from '../usertext.js';
import { METRICS_SUMMARY_SCHEMA, type MetricsSummary } from '../runner/summary.js';

import { isDigest } from '../store/digest.js';
const HEX_PREFIX = /^(?:sha256:)?([0-9a-f]+)$/;
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

const hexOf = (digest: string): string => digest.slice('sha256:'.length);

/** listRecords may answer full keys or keys relative to the prefix; this gives the part after the prefix. */
function tailOf(prefix: string, key: string): string {
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

// ---- answering `trainyard lineage <digest|run-id>` ----

export interface RunStepSummary {
  name: string;
  state: string;
  cacheDecision: string | null;
  reason: string | null;
  producedBy: CacheSource | null;
  inputs: Record<string, Digest>;
  outputs: Record<string, Digest>;
}

/** Which run an index entry belongs to. */
export interface RunRef {
  runId: string;
  pipeline: string;
  commit: string;
  finishedAt: string;
}

export type Producer = RunRef & ProducedEntry;
export type Consumer = RunRef & ConsumedEntry;

export type LineageAnswer =
  | {
      kind: 'run';
      runId: string;
      pipeline: { name: string; file: string; digest: Digest };
      commit: string;
      dirtyBase: string | null;
      conclusion: LineageConclusion;
      startedAt: string;
      finishedAt: string;
      params: LineageDoc['params'];
      totals: LineageTotals;
      steps: RunStepSummary[];
    }
  | {
      kind: 'artifact';
      digest: Digest;
      size: number | null;
      artifactKind: 'file' | 'dir' | null;
      uri: string | null;
      producers: Producer[];
      consumers: Consumer[];
    }
  | { kind: 'ambiguous'; query: string; candidates: Digest[] }
  | { kind: 'not_found'; query: string; message: string };

function runAnswer(doc: LineageDoc): LineageAnswer {
  const digests = (m: Record<string, { digest: Digest }>): Record<string, Digest> =>
    Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.digest]));
  return {
    kind: 'run',
    runId: doc.runId,
    pipeline: doc.pipeline,
    commit: doc.source.commit,
    dirtyBase: doc.source.dirtyBase,
    conclusion: doc.conclusion,
    startedAt: doc.startedAt,
    finishedAt: doc.finishedAt,
    params: doc.params,
    totals: doc.totals,
    steps: doc.steps.map((s) => ({
      name: s.name,
      state: s.state,
      cacheDecision: s.cache?.decision ?? null,
      reason: s.cache?.reason ?? (stepDetail(s.state, s.message) || null),
      producedBy: s.producedBy,
      inputs: digests(s.inputs),
      outputs: digests(s.outputs),
    })),
  };
}

async function readIndex<E>(store: ArtifactStore, prefix: string): Promise<DigestIndexEntry<E>[]> {
  const keys = await store.listRecords(prefix);
  const out: DigestIndexEntry<E>[] = [];
  for (const k of keys) {
    const rec = await store.getRecord<DigestIndexEntry<E>>(`${prefix}${tailOf(prefix, k)}`);
    if (rec) out.push(rec);
  }
  return out.sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
}

function flatten<E>(recs: DigestIndexEntry<E>[]): (RunRef & E)[] {
  return recs.flatMap((r) =>
    r.entries.map((e) => ({ runId: r.runId, pipeline: r.pipeline, commit: r.commit, finishedAt: r.finishedAt, ...e })),
  );
}

async function artifactAnswer(store: ArtifactStore, digest: Digest): Promise<LineageAnswer> {
  const produced = await readIndex<ProducedEntry>(store, producedIndexPrefix(digest));
  const consumed = await readIndex<ConsumedEntry>(store, consumedIndexPrefix(digest));
  if (produced.length === 0 && consumed.length === 0) {
    return { kind: 'not_found', query: digest, message: `no run in ${store.location} produced or consumed ${digest}` };
  }
  const any = produced[0] ?? consumed[0]!;
  return {
    kind: 'artifact',
    digest,
    size: any.size,
    artifactKind: any.kind,
    uri: any.uri,
    producers: flatten(produced),
    consumers: flatten(consumed),
  };
}

/**
 * `query` is a run id, a full digest (`sha256:<64 hex>`), or a digest prefix of at least
 * MIN_PREFIX_HEX hex digits (with or without `sha256:`), resolved through the prefix index.
 */
export async function lineageOf(store: ArtifactStore, query: string): Promise<LineageAnswer> {
  const q = query.trim();
  // Tested as a copy: Digest is a string, and narrowing q by the guard would leave `never` below.
  const digest: unknown = q;
  if (isDigest(digest)) return artifactAnswer(store, digest);
  const doc = await loadLineage(store, q);
  if (doc) return runAnswer(doc);
  const hex = HEX_PREFIX.exec(q.toLowerCase())?.[1];
  if (hex === undefined || hex.length > 64) {
    return {
      kind: 'not_found',
      query: q,
      message: `no run ${JSON.stringify(q)} in ${store.location}, and it is not a sha256 digest`,
    };
  }
  if (hex.length === 64) return artifactAnswer(store, `sha256:${hex}`);
  if (hex.length < MIN_PREFIX_HEX) {
    return {
      kind: 'not_found',
      query: q,
      message: `no run ${JSON.stringify(q)}; as a digest prefix it is too short: give at least ${MIN_PREFIX_HEX} hex digits or the full sha256:<64 hex> digest`,
    };
  }
  const prefix = digestPrefixIndexPrefix(hex);
  const candidates = (await store.listRecords(prefix))
    .map((k) => tailOf(prefix, k))
    .filter((d) => isDigest(d) && hexOf(d).startsWith(hex))
    .sort();
  if (candidates.length === 0) {
    return {
      kind: 'not_found',
      query: q,
      message: `no run and no artifact matching ${JSON.stringify(q)} in ${store.location}`,
    };
  }
  if (candidates.length > 1) return { kind: 'ambiguous', query: q, candidates };
  return artifactAnswer(store, candidates[0]!);
}

// ---- plain text for the CLI ----

/** Strips terminal control sequences and line breaks from user-controlled text; bidi controls shown. */
const plain = terminalText;

function originText(o: InputOrigin): string {
  switch (o.kind) {
    case 'step':
      return `step ${plain(o.step)}.${plain(o.output)}`;
    case 'uri':
      return plain(o.uri);
    case 'repo':
      return `repo ${plain(o.path)} @ ${plain(o.commit.slice(0, 12))}`;
  }
}

export function formatLineageAnswer(answer: LineageAnswer): string {
  const lines: string[] = [];
  switch (answer.kind) {
    case 'not_found':
      return `not found: ${plain(answer.message)}`;
    case 'ambiguous':
      lines.push(`${plain(answer.query)} matches ${answer.candidates.length} artifacts; give more digits:`);
      for (const c of answer.candidates) lines.push(`  ${c}`);
      return lines.join('\n');
    case 'run': {
      const t = answer.totals;
      lines.push(`run ${plain(answer.runId)}: ${answer.conclusion}`);
      lines.push(
        `  pipeline  ${plain(answer.pipeline.name)} (${plain(answer.pipeline.file)}, ${answer.pipeline.digest})`,
      );
      lines.push(
        `  commit    ${plain(answer.commit)}${answer.dirtyBase ? ` (dirty snapshot of ${plain(answer.dirtyBase)})` : ''}`,
      );
      lines.push(`  time      ${plain(answer.startedAt)} → ${plain(answer.finishedAt)}`);
      const params = Object.entries(answer.params).map(([k, v]) => `${plain(k)}=${plain(JSON.stringify(v))}`);
      if (params.length) lines.push(`  params    ${params.join(' ')}`);
      lines.push(`  steps     ${t.steps} (ran ${t.ran}, cached ${t.cached}, failed ${t.failed}, skipped ${t.skipped})`);
      for (const s of answer.steps) {
        lines.push(
          `  - ${plain(s.name)}: ${s.state}${s.cacheDecision ? ` [cache ${s.cacheDecision}]` : ''}${s.reason ? ` — ${plain(s.reason)}` : ''}`,
        );
        if (s.producedBy && s.producedBy.runId !== answer.runId) {
          lines.push(
            `      reused from run ${plain(s.producedBy.runId)} step ${plain(s.producedBy.step)} @ ${plain(s.producedBy.commit.slice(0, 12))}`,
          );
        }
        for (const [n, d] of Object.entries(s.inputs)) lines.push(`      in  ${plain(n)} ${d}`);
        for (const [n, d] of Object.entries(s.outputs)) lines.push(`      out ${plain(n)} ${d}`);
      }
      return lines.join('\n');
    }
    case 'artifact': {
      lines.push(
        `artifact ${answer.digest}${answer.size !== null ? ` (${answer.artifactKind}, ${answer.size} bytes)` : ''}`,
      );
      if (answer.uri) lines.push(`  at ${plain(answer.uri)}`);
      const made = answer.producers.filter((p) => !p.reused);
      const reused = answer.producers.filter((p) => p.reused);
      lines.push(made.length ? 'produced by:' : 'produced by: (no run in this store executed it)');
      for (const p of made) {
        lines.push(
          `  run ${plain(p.runId)} (${plain(p.pipeline)} @ ${plain(p.commit.slice(0, 12))}, ${plain(p.finishedAt)}) step ${plain(p.step)} output ${plain(p.output)}`,
        );
        if (p.image) lines.push(`    image ${plain(p.image)}`);
        if (p.inputs.length === 0) lines.push('    from no inputs');
        for (const i of p.inputs) lines.push(`    from ${plain(i.name)} ${i.digest} ← ${originText(i.origin)}`);
      }
      if (reused.length) {
        lines.push('reused (cache) by:');
        for (const p of reused) {
          const src = p.producedBy ? ` from run ${plain(p.producedBy.runId)}` : '';
          lines.push(
            `  run ${plain(p.runId)} (${plain(p.pipeline)} @ ${plain(p.commit.slice(0, 12))}) step ${plain(p.step)} output ${plain(p.output)}${src}`,
          );
        }
      }
      lines.push(answer.consumers.length ? 'consumed by:' : 'consumed by: (nothing yet)');
      for (const c of answer.consumers) {
        lines.push(
          `  run ${plain(c.runId)} (${plain(c.pipeline)} @ ${plain(c.commit.slice(0, 12))}, ${plain(c.finishedAt)}) step ${plain(c.step)} input ${plain(c.input)} [${c.state}]`,
        );
      }
      return lines.join('\n');
    }
  }
}
