// Cache keys and records. A key is a digest over what decides a step's outputs: the
// resolved definition, the parameters it sees, its code, and the CONTENT digests of its
// inputs — never an upstream key, so byte-identical upstream output still hits (early cutoff).
import type { CachedResult } from '../workflows/contracts.js';
import type { CacheKeyParts, CacheSource, MetricSample, ParamValue } from '../workflows/types.js';
import { boundMessage, clipText } from '../workflows/bounds.js';
import { storeSamples } from './runner/output.js';
import { canonicalJson } from './store/canonical.js';
import { sha256Bytes } from './store/digest.js';
import type { ArtifactStore } from './store/types.js';

const KEY_VERSION = 1;

export function cacheKey(parts: CacheKeyParts): string {
  return sha256Bytes(canonicalJson({ v: KEY_VERSION, ...parts }));
}

const hex = (k: string): string => k.replace(/^sha256:/, '');
export const cacheRecordKey = (key: string): string => `cache/${hex(key)}`;
/** The last successful execution of a pipeline's step: to say what changed on a miss. */
export const latestRecordKey = (pipeline: string, step: string): string => `cache-latest/${pipeline}/${step}`;

export interface LatestRecord {
  key: string;
  parts: CacheKeyParts;
  codeFiles: Record<string, string>;
  source: CacheSource;
}

export async function lookup(store: ArtifactStore, key: string): Promise<CachedResult | undefined> {
  const hit = await store.getRecord<CachedResult | LegacyCachedResult>(cacheRecordKey(key));
  if (!hit || !Array.isArray(hit.metrics)) return hit as CachedResult | undefined;
  // Written before series went to the store: the samples were inline. Store them now, so
  // the result carries a reference like any other.
  const { metrics: samples, ...rest } = hit;
  const metrics = await storeSamples(store, samples);
  return { ...rest, ...(metrics ? { metrics } : {}) };
}

/** A cache record of an earlier version, with the samples inline. */
type LegacyCachedResult = Omit<CachedResult, 'metrics'> & { metrics: MetricSample[] };

export async function record(store: ArtifactStore, result: CachedResult): Promise<void> {
  await store.putRecord(cacheRecordKey(result.key), result);
}

const short = (d: string): string => hex(d).slice(0, 12);
const fmt = (v: ParamValue | undefined): string => (v === undefined ? 'unset' : clipText(JSON.stringify(v), 100));

/** Plain sentence: what part of the key differs from the last execution of this step. */
export function whyMiss(now: CacheKeyParts, nowFiles: Record<string, string>, prev: LatestRecord | undefined): string {
  if (!prev) return 'ran: first execution of this step';
  const p = prev.parts;
  const why: string[] = [];
  if (p.image !== now.image) why.push(`image changed (${p.image} → ${now.image})`);
  if (canonicalJson(p.command) !== canonicalJson(now.command)) why.push('command changed');
  const envKeys = [...new Set([...Object.keys(p.env), ...Object.keys(now.env)])].filter((k) => p.env[k] !== now.env[k]);
  if (envKeys.length) why.push(`env changed (${envKeys.join(', ')})`);
  if (p.cacheVersion !== now.cacheVersion) why.push(`cache_version changed (${p.cacheVersion ?? 'unset'} → ${now.cacheVersion ?? 'unset'})`);
  const paramKeys = [...new Set([...Object.keys(p.params), ...Object.keys(now.params)])].filter((k) => p.params[k] !== now.params[k]);
  for (const k of paramKeys) why.push(`parameter ${k} changed (${fmt(p.params[k])} → ${fmt(now.params[k])})`);
  if (p.code !== now.code) {
    const files = [...new Set([...Object.keys(prev.codeFiles), ...Object.keys(nowFiles)])].filter((f) => prev.codeFiles[f] !== nowFiles[f]).sort();
    const list = files.length > 5 ? `${files.slice(0, 5).join(', ')} and ${files.length - 5} more` : files.join(', ');
    why.push(files.length ? `code changed (${list})` : 'code changed');
  }
  const inputKeys = [...new Set([...Object.keys(p.inputs), ...Object.keys(now.inputs)])].filter((k) => p.inputs[k] !== now.inputs[k]);
  for (const k of inputKeys) {
    why.push(`input ${k} changed (${p.inputs[k] ? short(p.inputs[k]!) : 'none'} → ${now.inputs[k] ? short(now.inputs[k]!) : 'none'})`);
  }
  if (canonicalJson(p.outputs) !== canonicalJson(now.outputs)) why.push('declared outputs changed');
  if (why.length === 0) return 'ran: no cached result for this key (it was never recorded, or the store was cleared)';
  // The reason travels in run status (a Temporal payload) and shows in every report row.
  return boundMessage(`ran: ${why.join('; ')}`);
}

export function whyHit(src: CacheSource): string {
  return `reused: same key as step ${src.step} of run ${src.runId} (commit ${src.commit.slice(0, 12)}${src.finishedAt ? `, ${src.finishedAt}` : ''})`;
}
