// Turns ready steps into executions: resolves their inputs to content digests, their image
// to a digest, their code to a digest, computes the cache key and asks the cache.
import { Context } from '@temporalio/activity';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { PrepareItem, PrepareRequest, Prepared } from '../workflows/contracts.js';
import type { ArtifactRef, CacheDecision, CacheKeyParts, ParamValue, ResolvedInput } from '../workflows/types.js';
import { cacheKey, latestRecordKey, lookup, whyHit, whyMiss, type LatestRecord } from './cache.js';
import { imageId } from './container/run.js';
import type { ContainerCliConfig } from './container/types.js';
import { selectCode, treeDigests } from './source/files.js';
import type { SourceProvider } from './source/types.js';
import { canonicalJson } from './store/canonical.js';
import { sha256Bytes } from './store/digest.js';
import { ingestUri } from './store/ingest.js';
import type { ArtifactStore } from './store/types.js';

export interface PrepareDeps {
  store: ArtifactStore;
  sources: SourceProvider;
  /** Resolves image names to local image ids; undefined = keep names. */
  cli?: ContainerCliConfig;
  s3?: S3ClientConfig;
}

const MAX_LISTED_CODE_FILES = 2000;

export function createPrepareSteps(deps: PrepareDeps) {
  const imageIds = new Map<string, Promise<string | undefined>>();
  const resolveImage = async (image: string): Promise<string> => {
    if (!deps.cli) return image;
    let p = imageIds.get(image);
    if (!p) {
      p = imageId(deps.cli, image).catch(() => undefined);
      imageIds.set(image, p);
      // Images can be rebuilt under the same tag: look again after a minute.
      setTimeout(() => imageIds.delete(image), 60_000).unref();
    }
    const id = await p;
    return id ? `${image}@${id}` : image;
  };

  async function prepareOne(req: PrepareRequest, item: PrepareItem, checkout: string): Promise<Prepared> {
    const { spec } = item;
    const files = selectCode(await treeDigests(checkout), spec.code);
    const codeDigest = sha256Bytes(canonicalJson(files.map((f) => [f.path, f.digest, f.executable])));
    const codeFiles = files.length <= MAX_LISTED_CODE_FILES ? Object.fromEntries(files.map((f) => [f.path, f.digest])) : {};

    const inputs: Record<string, ResolvedInput> = { ...item.upstream };
    for (const [name, src] of Object.entries(spec.inputs)) {
      if (src.kind === 'repo') {
        const path = await insideCheckout(checkout, src.path, `input ${name} of step ${item.step}`);
        const commit = req.source.commit;
        inputs[name] = { artifact: await deps.store.putPath(path), origin: { kind: 'repo', path: src.path, commit } };
      } else if (src.kind === 'uri') {
        inputs[name] = { artifact: await ingestUri(deps.store, src.uri, deps.s3), origin: { kind: 'uri', uri: src.uri } };
      } else if (!inputs[name]) {
        throw new Error(`input ${name} of step ${item.step}: upstream output ${src.step}.${src.output} is missing`);
      }
    }

    const visible = spec.params ?? Object.keys(req.params);
    const params: Record<string, ParamValue> = {};
    for (const p of visible.sort()) if (req.params[p] !== undefined) params[p] = req.params[p]!;
    const command = typeof spec.run === 'string' ? ['sh', '-c', spec.run] : spec.run;
    const image = await resolveImage(spec.image);
    const parts: CacheKeyParts = {
      image, command, env: spec.env, cacheVersion: spec.cacheVersion ?? null, params, code: codeDigest,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.artifact.digest])),
      outputs: [...spec.outputs].sort(),
    };
    const realKey = cacheKey(parts);
    const useCache = spec.cache && !req.noCache;
    const spec2 = {
      pipeline: req.pipeline, step: item.step, image: spec.image, command, env: spec.env, params,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.artifact])) as Record<string, ArtifactRef>,
      outputs: spec.outputs, source: req.source, timeoutSeconds: spec.timeoutSeconds, gpus: item.gpus,
    };
    // The listing travels by digest: thousands of paths would not fit in a Temporal payload.
    const listing = async () => ({ codeFilesRef: (await deps.store.putBytes(canonicalJson(codeFiles))).digest });
    if (!useCache) {
      // Its own execution, shared with nobody.
      const key = sha256Bytes(`${realKey}\n${req.runId}\n${item.step}`);
      const decision: CacheDecision = { decision: 'disabled', key: realKey, reason: spec.cache ? 'ran: cache disabled for this run (--no-cache)' : 'ran: cache disabled for this step (cache: false)' };
      return { step: item.step, key, useCache, ...(spec.cache ? { recordKey: realKey, ...(await listing()) } : {}), parts, inputs, spec: spec2, decision };
    }
    const hit = await lookup(deps.store, realKey);
    if (hit) {
      return { step: item.step, key: realKey, useCache, parts, inputs, spec: spec2, hit, decision: { decision: 'hit', key: realKey, reason: whyHit(hit.source), source: hit.source } };
    }
    const latest = await deps.store.getRecord<LatestRecord>(latestRecordKey(req.pipeline, item.step));
    const decision: CacheDecision = { decision: 'miss', key: realKey, reason: whyMiss(parts, codeFiles, latest) };
    return { step: item.step, key: realKey, useCache, parts, inputs, spec: spec2, decision, ...(await listing()) };
  }

  return async function prepareSteps(req: PrepareRequest): Promise<Prepared[]> {
    const checkout = await deps.sources.checkout(req.source);
    const out: Prepared[] = [];
    for (const item of req.items) {
      out.push(await prepareOne(req, item, checkout));
      heartbeat(item.step);
    }
    return out;
  };
}

function heartbeat(detail: string): void {
  try {
    Context.current().heartbeat(detail);
  } catch {
    // Called outside an activity (tests, benchmarks).
  }
}

async function insideCheckout(root: string, rel: string, what: string): Promise<string> {
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(join(realRoot, rel));
  } catch {
    throw new StepInvalid(`${what}: ${rel} does not exist at this commit`);
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep)) throw new StepInvalid(`${what}: ${rel} points outside the project`);
  return real;
}

export class StepInvalid extends Error {
  override name = 'StepInvalid';
}
