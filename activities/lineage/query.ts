// Answers `trainyard lineage <digest|run-id>` from the store's lineage records
// (storage.ts): a run's steps, or which runs produced and consumed an artifact.
import type { ArtifactStore } from '../store/types.js';
import type { CacheSource, Digest } from '../../model/types.js';
import type { LineageConclusion, LineageDoc, LineageTotals } from './document.js';
import { stepDetail } from '../report/statetext.js';
import { isDigest } from '../store/digest.js';
import {
  HEX_PREFIX,
  hexOf,
  loadLineage,
  tailOf,
  type ConsumedEntry,
  type DigestIndexEntry,
  type ProducedEntry,
} from './storage.js';
import { MIN_PREFIX_HEX, consumedIndexPrefix, digestPrefixIndexPrefix, producedIndexPrefix } from '../store/keys.js';

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
