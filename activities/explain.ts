// `trainyard explain`: what goes into one step's cache key at a commit, and which parts
// differ from the step's last recorded execution. Read-only apart from what a run would
// store anyway (repository inputs, the code listing); needs no Temporal and runs nothing.
import type { CacheKeyParts, CacheSource, ParamValue, Pipeline, ResolvedInput, SourceRef } from '../model/types.js';
import {
  cacheKey,
  changedFiles,
  changedParts,
  keepListing,
  loadListing,
  lookup,
  type LatestRecord,
  type PartChange,
} from './cache.js';
import { latestRecordKey } from './store/keys.js';
import { createKeyParts, type PrepareDeps } from './prepare.js';
import { describeEntries, type StepCode } from './source/files.js';

export interface ExplainRequest {
  pipeline: Pipeline;
  step: string;
  source: SourceRef;
  params: Record<string, ParamValue>;
}

export interface Explanation {
  pipeline: string;
  step: string;
  commit: string;
  /** Undefined while an upstream step's output is not known (it has no cached result for its key). */
  key?: string;
  parts: CacheKeyParts;
  code: StepCode;
  inputs: Record<string, ResolvedInput>;
  /** Inputs from upstream steps whose key has no cached result: `name → step.output`. */
  pending: Record<string, string>;
  /** Set when the cache holds a result for this key. */
  cached?: CacheSource;
  /** The step's last recorded execution, and what differs from it. */
  last?: {
    record: LatestRecord;
    changes: PartChange[];
    /** Code paths that differ; undefined when that execution's listing is not in the store. */
    files?: string[];
  };
}

/**
 * Explain `req.step`: resolves its upstream steps' outputs from the cache (in the pipeline's
 * order), then its own key parts. Throws on an unknown step, or as a run's prepare would
 * (a missing repository input, one that holds a symbolic link).
 */
export async function explainStep(deps: PrepareDeps, req: ExplainRequest): Promise<Explanation> {
  const { pipeline, step } = req;
  if (!pipeline.steps[step])
    throw new Error(
      `no step ${JSON.stringify(step)} in pipeline ${pipeline.name}; its steps: ${pipeline.order.join(', ')}`,
    );
  const keyParts = createKeyParts(deps);
  const checkout = await deps.sources.checkout(req.source);
  const needed = upstreamOf(pipeline, step);
  const outputs = new Map<string, Record<string, ResolvedInput['artifact']> | undefined>();
  for (const name of pipeline.order) {
    if (!needed.has(name) && name !== step) continue;
    const spec = pipeline.steps[name]!;
    const upstream: Record<string, ResolvedInput> = {};
    const pending: Record<string, string> = {};
    for (const [input, src] of Object.entries(spec.inputs)) {
      if (src.kind !== 'step') continue;
      const artifact = outputs.get(src.step)?.[src.output];
      if (artifact) upstream[input] = { artifact, origin: { kind: 'step', step: src.step, output: src.output } };
      else pending[input] = `${src.step}.${src.output}`;
    }
    const k = await keyParts(req, { step: name, spec, upstream }, checkout);
    const key = k.missing.length ? undefined : cacheKey(k.parts);
    const hit = key && spec.cache ? await lookup(deps.store, key) : undefined;
    if (name !== step) {
      outputs.set(name, hit?.outputs);
      continue;
    }
    await keepListing(deps.store, k.code);
    const record = await deps.store.getRecord<LatestRecord>(latestRecordKey(pipeline.name, step));
    let last: Explanation['last'];
    if (record) {
      const prevFiles = await loadListing(deps.store, record);
      const changes = changedParts(k.parts, record.parts).filter(
        (c) => !(c.part.startsWith('input ') && pending[c.part.slice(6)]),
      );
      last = {
        record,
        changes,
        ...(prevFiles ? { files: changedFiles(prevFiles, describeEntries(k.code.entries)) } : {}),
      };
    }
    return {
      pipeline: pipeline.name,
      step,
      commit: req.source.commit,
      ...(key ? { key } : {}),
      parts: k.parts,
      code: k.code,
      inputs: k.inputs,
      pending,
      ...(hit ? { cached: hit.source } : {}),
      ...(last ? { last } : {}),
    };
  }
  throw new Error(`step ${step} is not in the pipeline's order`);
}

/** The steps whose outputs reach `step` through inputs, transitively. */
function upstreamOf(pipeline: Pipeline, step: string): Set<string> {
  const seen = new Set<string>();
  const visit = (s: string): void => {
    for (const src of Object.values(pipeline.steps[s]!.inputs)) {
      if (src.kind === 'step' && !seen.has(src.step)) {
        seen.add(src.step);
        visit(src.step);
      }
    }
  };
  visit(step);
  return seen;
}
