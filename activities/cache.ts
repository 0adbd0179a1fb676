// Cache keys and records. A key is a digest over what decides a step's outputs: the
// resolved definition, the parameters it sees, its code, and the CONTENT digests of its
// inputs — never an upstream key, so byte-identical upstream output still hits (early cutoff).
import type { CachedResult } from '../model/contracts.js';
import type { ArtifactRef, CacheKeyParts, CacheSource, MetricSample, ParamValue } from '../model/types.js';
import { boundMessage, clipText } from '../model/bounds.js';
import { storeSamples } from './runner/output.js';
import { describeEntries, parseListing, type StepCode, type TreeEntry } from './source/files.js';
import { canonicalJson } from './store/canonical.js';
import { sha256Bytes } from './store/digest.js';
import { cacheRecordKey, DamagedRecord } from './store/keys.js';
import type { ArtifactStore } from './store/types.js';

// 2: the code part became the digest of a listing that also holds symbolic links and empty folders.
const KEY_VERSION = 2;

export function cacheKey(parts: CacheKeyParts): string {
  return sha256Bytes(canonicalJson({ v: KEY_VERSION, ...parts }));
}

export interface LatestRecord {
  key: string;
  parts: CacheKeyParts;
  /** Records written before code listings were kept in the store: path → file digest. */
  codeFiles?: Record<string, string>;
  source: CacheSource;
}

/** Keep a step's code listing in the store under its digest (the key's `code` part). */
export async function keepListing(store: ArtifactStore, code: StepCode): Promise<void> {
  await store.putBytes(code.bytes); // a stored digest is not written again
}

/**
 * What a recorded execution's code was, as `path → what the step read there`; undefined when
 * its listing is not in the store (cleared, or recorded before listings were kept).
 */
export async function loadListing(
  store: ArtifactStore,
  latest: LatestRecord,
): Promise<Record<string, string> | undefined> {
  const bytes = await store.getBytes(latest.parts.code).catch(() => undefined);
  const entries = bytes && parseListing(bytes);
  if (entries) return describeEntries(entries);
  return latest.codeFiles && Object.keys(latest.codeFiles).length ? latest.codeFiles : undefined;
}

/**
 * The cache entry of `key`, or undefined when there is none. `outputs`: the step's declared
 * outputs, each of which the entry must hold. Throws DamagedRecord when the record is not an
 * entry of this key as Trainyard writes them (changed outside Trainyard): served as a hit, it
 * would hand later steps outputs that do not exist.
 */
export async function lookup(
  store: ArtifactStore,
  key: string,
  outputs: readonly string[] = [],
): Promise<CachedResult | undefined> {
  const recordKey = cacheRecordKey(key);
  const hit = await store.getRecord<CachedResult | LegacyCachedResult>(recordKey);
  if (hit === undefined || hit === null) return undefined;
  const problem = entryProblem(hit, key, outputs);
  if (problem) throw new DamagedRecord(recordKey, `${store.location}/records/${recordKey}.json`, problem);
  if (!Array.isArray(hit.metrics)) return hit as CachedResult;
  // Written before series went to the store: the samples were inline. Store them now, so
  // the result carries a reference like any other.
  const { metrics: samples, ...rest } = hit;
  const metrics = await storeSamples(store, samples);
  return { ...rest, ...(metrics ? { metrics } : {}) };
}

/** What makes `v` not a cache entry of `key` holding every one of `outputs`; undefined when it is one. */
function entryProblem(v: unknown, key: string, outputs: readonly string[]): string | undefined {
  if (typeof v !== 'object' || Array.isArray(v)) return 'is not a cache entry (not a JSON object)';
  const e = v as Partial<Record<keyof CachedResult, unknown>>;
  if (e.key !== key) return `is not the cache entry of ${key} (its key is ${JSON.stringify(e.key)})`;
  const source = e.source as Partial<CachedResult['source']> | undefined;
  if (
    typeof source !== 'object' ||
    source === null ||
    typeof source.runId !== 'string' ||
    typeof source.step !== 'string'
  )
    return 'is not a cache entry (no source run and step)';
  if (!Array.isArray(e.attempts)) return 'is not a cache entry (no attempts)';
  if (typeof e.outputs !== 'object' || e.outputs === null) return 'is not a cache entry (no outputs)';
  const stored = e.outputs as Record<string, Partial<ArtifactRef> | null>;
  for (const [name, ref] of Object.entries(stored))
    if (typeof ref?.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(ref.digest) || typeof ref.kind !== 'string')
      return `has no valid digest for output ${name}`;
  const missing = outputs.filter((o) => !stored[o]);
  if (missing.length > 0) return `lacks the step's output${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`;
  return undefined;
}

/** A cache record of an earlier version, with the samples inline. */
type LegacyCachedResult = Omit<CachedResult, 'metrics'> & { metrics: MetricSample[] };

export async function record(store: ArtifactStore, result: CachedResult): Promise<void> {
  await store.putRecord(cacheRecordKey(result.key), result);
}

const short = (d: string): string => d.replace(/^sha256:/, '').slice(0, 12);
const fmt = (v: ParamValue | undefined): string => (v === undefined ? 'unset' : clipText(JSON.stringify(v), 100));

/** One part of a cache key and whether it differs from the last execution of the step. */
export interface PartChange {
  /** `image`, `command`, `env NAME`, `cache_version`, `parameter NAME`, `code`, `input NAME`, `outputs`, `secrets`. */
  part: string;
  before: string;
  after: string;
}

/** Which parts of `now` differ from `prev` (the key's parts of the step's last execution). */
export function changedParts(now: CacheKeyParts, prev: CacheKeyParts): PartChange[] {
  const out: PartChange[] = [];
  const push = (part: string, before: string, after: string) => before !== after && out.push({ part, before, after });
  push('image', prev.image, now.image);
  push('command', canonicalJson(prev.command), canonicalJson(now.command));
  for (const k of union(prev.env, now.env)) push(`env ${k}`, prev.env[k] ?? 'unset', now.env[k] ?? 'unset');
  push('cache_version', prev.cacheVersion ?? 'unset', now.cacheVersion ?? 'unset');
  for (const k of union(prev.params, now.params)) push(`parameter ${k}`, fmt(prev.params[k]), fmt(now.params[k]));
  push('code', prev.code, now.code);
  for (const k of union(prev.inputs, now.inputs)) push(`input ${k}`, prev.inputs[k] ?? 'none', now.inputs[k] ?? 'none');
  push('outputs', prev.outputs.join(', '), now.outputs.join(', '));
  push('secrets', (prev.secrets ?? []).join(', ') || 'none', (now.secrets ?? []).join(', ') || 'none');
  return out;
}

/** Paths whose entry differs between two listings (`path → what is read there`), sorted. */
export function changedFiles(before: Record<string, string>, after: Record<string, string>): string[] {
  return union(before, after).filter((f) => before[f] !== after[f]);
}

const union = (a: Record<string, unknown>, b: Record<string, unknown>): string[] =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();

/**
 * Plain sentence: what part of the key differs from the last execution of this step.
 * `nowCode` is the step's code listing now; `prevCode` that of the last execution when known.
 */
export function whyMiss(
  now: CacheKeyParts,
  nowCode: TreeEntry[],
  prev: LatestRecord | undefined,
  prevCode?: Record<string, string>,
): string {
  if (!prev) return 'ran: first execution of this step';
  const why: string[] = [];
  const changes = changedParts(now, prev.parts);
  const envKeys = changes.filter((c) => c.part.startsWith('env ')).map((c) => c.part.slice(4));
  for (const c of changes) {
    if (c.part === 'image') why.push(`image changed (${c.before} → ${c.after})`);
    else if (c.part === 'command') why.push('command changed');
    else if (c.part === `env ${envKeys[0]}`) why.push(`env changed (${envKeys.join(', ')})`);
    else if (c.part === 'cache_version') why.push(`cache_version changed (${c.before} → ${c.after})`);
    else if (c.part.startsWith('parameter ')) why.push(`${c.part} changed (${c.before} → ${c.after})`);
    else if (c.part === 'code') {
      const files = prevCode ? changedFiles(prevCode, describeEntries(nowCode)) : [];
      const list = files.length > 5 ? `${files.slice(0, 5).join(', ')} and ${files.length - 5} more` : files.join(', ');
      why.push(files.length ? `code changed (${list})` : 'code changed');
    } else if (c.part.startsWith('input '))
      why.push(
        `${c.part} changed (${c.before === 'none' ? 'none' : short(c.before)} → ${c.after === 'none' ? 'none' : short(c.after)})`,
      );
    else if (c.part === 'outputs') why.push('declared outputs changed');
    else if (c.part === 'secrets') why.push(`secret names changed (${c.before} → ${c.after})`);
  }
  if (why.length === 0) return 'ran: no cached result for this key (it was never recorded, or the store was cleared)';
  // The reason travels in run status (a Temporal payload) and shows in every report row.
  return boundMessage(`ran: ${why.join('; ')}`);
}

export function whyHit(src: CacheSource): string {
  return `reused: same key as step ${src.step} of run ${src.runId} (commit ${src.commit.slice(0, 12)}${src.finishedAt ? `, ${src.finishedAt}` : ''})`;
}
