// Turns ready steps into executions: resolves their inputs to content digests, their image
// to a digest, their code to a digest, computes the cache key and asks the cache.
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { realpath } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import type { PrepareAnswer, PrepareItem, PrepareRequest, PreparedHit } from '../model/contracts.js';
import type { ArtifactRef, CacheDecision, CacheKeyParts, ParamValue, ResolvedInput } from '../model/types.js';
import { cacheKey, keepListing, loadListing, lookup, whyHit, whyMiss, type LatestRecord } from './cache.js';
import { DamagedRecord, latestRecordKey } from './store/keys.js';
import { imageId } from './container/run.js';
import type { ContainerCliConfig } from './container/types.js';
import { stepCode, type StepCode } from './source/files.js';
import type { SourceProvider } from './source/types.js';
import { sha256Bytes } from './store/digest.js';
import { ingestUri } from './store/ingest.js';
import { mapLimit } from './store/base.js';
import { EntryRefused } from './store/manifest.js';
import type { ArtifactStore } from './store/types.js';
import { FailureType } from '../model/failures.js';

export interface PrepareDeps {
  store: ArtifactStore;
  sources: SourceProvider;
  /** Resolves image names to local image ids; undefined = keep names. */
  cli?: ContainerCliConfig;
  s3?: S3ClientConfig;
}

/** A step's cache key parts at a checkout, and what they were computed from. */
export interface StepKeyParts {
  /** With `missing` non-empty, `inputs` lacks those names and the key cannot be computed yet. */
  parts: CacheKeyParts;
  code: StepCode;
  inputs: Record<string, ResolvedInput>;
  /** Inputs from upstream outputs not known yet (the upstream step has not run). */
  missing: string[];
  command: string[];
  params: Record<string, ParamValue>;
}

/** `command\nimage` → the lookup of the image's local id, dropped after a minute. */
const imageIds = new Map<string, Promise<string | undefined>>();

/**
 * An image as cache keys name it: `image@sha256:…` with its local image id, or `image` when it
 * is not local or no container CLI resolves it. Each CLI and image is looked up once a minute
 * at most (images can be rebuilt under the same tag); never throws.
 */
export async function imageKeyOf(cli: ContainerCliConfig | undefined, image: string): Promise<string> {
  if (!cli) return image;
  const k = `${cli.command}\n${image}`;
  let p = imageIds.get(k);
  if (!p) {
    p = imageId(cli, image).catch(() => undefined);
    imageIds.set(k, p);
    setTimeout(() => imageIds.delete(k), 60_000).unref();
  }
  const id = await p;
  return id ? `${image}@${id}` : image;
}

/**
 * Starts the image id lookups of `images` ahead of the cache lookups that need them (each is a
 * container CLI call, ~0.1 s): `trainyard run` does while its embedded Temporal server starts.
 */
export function warmImageKeys(cli: ContainerCliConfig, images: Iterable<string>): void {
  for (const image of new Set(images)) void imageKeyOf(cli, image);
}

/**
 * Computes key parts: the image (by local image id when a container CLI resolves it), the
 * command, env, cache_version, visible parameter values, the code listing's digest and the
 * content digests of the inputs (repository inputs and URIs are stored on the way).
 * Throws StepInvalid for a repository input that does not exist, leaves the project or holds a link.
 */
export function createKeyParts(deps: PrepareDeps) {
  const resolveImage = (image: string): Promise<string> => imageKeyOf(deps.cli, image);

  return async function keyParts(
    req: Pick<PrepareRequest, 'source' | 'params'>,
    item: Pick<PrepareItem, 'step' | 'spec' | 'upstream'>,
    checkout: string,
  ): Promise<StepKeyParts> {
    const { spec } = item;
    const code = await stepCode(checkout, spec.code);
    const inputs: Record<string, ResolvedInput> = { ...item.upstream };
    const missing: string[] = [];
    for (const [name, src] of Object.entries(spec.inputs)) {
      if (src.kind === 'repo') {
        const what = `input ${name} of step ${item.step}`;
        const { real, rel } = await insideCheckout(checkout, src.path, what);
        const commit = req.source.commit;
        inputs[name] = {
          artifact: await putRepoInput(deps.store, real, rel, src.path, what),
          origin: { kind: 'repo', path: src.path, commit },
        };
      } else if (src.kind === 'uri') {
        inputs[name] = {
          artifact: await ingestUri(deps.store, src.uri, deps.s3),
          origin: { kind: 'uri', uri: src.uri },
        };
      } else if (!inputs[name]) {
        missing.push(name);
      }
    }
    const visible = spec.params ?? Object.keys(req.params);
    const params: Record<string, ParamValue> = {};
    for (const p of [...visible].sort()) if (req.params[p] !== undefined) params[p] = req.params[p]!;
    const command = typeof spec.run === 'string' ? ['sh', '-c', spec.run] : spec.run;
    const image = await resolveImage(spec.image);
    const parts: CacheKeyParts = {
      image,
      command,
      env: spec.env,
      cacheVersion: spec.cacheVersion ?? null,
      params,
      code: code.digest,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.artifact.digest])),
      outputs: [...spec.outputs].sort(),
      ...(spec.secrets?.length ? { secrets: [...spec.secrets].sort() } : {}),
    };
    return { parts, code, inputs, missing, command, params };
  };
}

/**
 * The execution key of a step that runs without the cache (`--no-cache`, `cache: false`):
 * its own execution, shared with nobody, so the run id and step name are part of it. The
 * status's cache decision keeps the real key; this finds the execution (and its live log).
 */
export function uncachedExecKey(realKey: string, runId: string, step: string): string {
  return sha256Bytes(`${realKey}\n${runId}\n${step}`);
}

/** Cache lookups of one `prepareSteps` call in flight at once (each is a few store reads). */
const PREPARE_CONCURRENCY = 16;

export function createPrepareSteps(deps: PrepareDeps) {
  const keyParts = createKeyParts(deps);

  async function prepareOne(req: PrepareRequest, item: PrepareItem, checkout: string): Promise<PrepareAnswer> {
    const { spec } = item;
    const { parts, code, inputs, missing, command, params } = await keyParts(req, item, checkout);
    if (missing.length) {
      const src = spec.inputs[missing[0]!] as { step: string; output: string };
      throw new Error(`input ${missing[0]} of step ${item.step}: upstream output ${src.step}.${src.output} is missing`);
    }
    const realKey = cacheKey(parts);
    const useCache = spec.cache && !req.noCache;
    const spec2 = {
      pipeline: req.pipeline,
      step: item.step,
      image: spec.image,
      command,
      env: spec.env,
      params,
      inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.artifact])) as Record<
        string,
        ArtifactRef
      >,
      outputs: spec.outputs,
      source: req.source,
      timeoutSeconds: spec.timeoutSeconds,
      gpus: item.gpus,
      ...(spec.secrets?.length ? { secrets: spec.secrets } : {}),
    };
    if (!useCache) {
      // Its own execution, shared with nobody.
      const key = uncachedExecKey(realKey, req.runId, item.step);
      const decision: CacheDecision = {
        decision: 'disabled',
        key: realKey,
        reason: spec.cache
          ? 'ran: cache disabled for this run (--no-cache)'
          : 'ran: cache disabled for this step (cache: false)',
      };
      if (spec.cache) await keepListing(deps.store, code);
      return {
        step: item.step,
        key,
        useCache,
        ...(spec.cache ? { recordKey: realKey } : {}),
        parts,
        inputs,
        spec: spec2,
        decision,
      };
    }
    const found = await lookup(deps.store, realKey, spec.outputs);
    if (found) {
      const { parts: _parts, ...hit } = found;
      return {
        step: item.step,
        key: realKey,
        inputs,
        image: spec.image,
        hit,
        decision: { decision: 'hit', key: realKey, reason: whyHit(found.source), source: found.source },
      };
    }
    // Kept so the next miss (or `trainyard explain`) can name the files that changed.
    await keepListing(deps.store, code);
    const latest = await deps.store.getRecord<LatestRecord>(latestRecordKey(req.pipeline, item.step));
    const decision: CacheDecision = {
      decision: 'miss',
      key: realKey,
      reason: whyMiss(parts, code.entries, latest, latest && (await loadListing(deps.store, latest))),
    };
    return { step: item.step, key: realKey, useCache, parts, inputs, spec: spec2, decision };
  }

  /**
   * A look-ahead item (`after` set) once the steps it waits for are answered: prepared only
   * when they all hit. Any failure of its own leaves it out: the run prepares it again once it
   * is ready, and a bad input is then named on that step, not on the steps prepared now.
   */
  async function prepareAfter(
    req: PrepareRequest,
    item: PrepareItem,
    checkout: string,
    answers: ReadonlyMap<string, Promise<PrepareAnswer | undefined>>,
  ): Promise<PrepareAnswer | undefined> {
    const upstream = await Promise.all(item.after!.map((a) => answers.get(a)?.catch(() => undefined)));
    const hits = new Map(upstream.filter((p): p is PreparedHit => Boolean(p?.hit)).map((p) => [p.step, p]));
    const ready = withUpstreamHits(item, hits);
    return ready && (await prepareOne(req, ready, checkout).catch(() => undefined));
  }

  /**
   * A ready item. A fault of its own (StepInvalid: its definition; DamagedRecord: its cache
   * record) is its answer, so it fails alone: thrown, it failed the whole call, and every step
   * of the call with this one's message, after retries that could not mend it.
   */
  async function prepareReady(req: PrepareRequest, item: PrepareItem, checkout: string): Promise<PrepareAnswer> {
    try {
      return await prepareOne(req, item, checkout);
    } catch (err) {
      if (err instanceof StepInvalid || err instanceof DamagedRecord) return { step: item.step, invalid: err.message };
      throw err;
    }
  }

  return async function prepareSteps(req: PrepareRequest): Promise<PrepareAnswer[]> {
    const checkout = await deps.sources.checkout(req.source);
    // Lookups are mostly waiting on the store: several at a time. Items come in topological
    // order and are taken in that order, so what an item waits for has always been taken.
    // No heartbeat per item (each costs as much as a lookup): every control activity
    // heartbeats while it runs (activities/liveness.ts).
    const answers = new Map<string, Promise<PrepareAnswer | undefined>>();
    const out = await mapLimit(req.items, PREPARE_CONCURRENCY, async (item) => {
      const answer = item.after ? prepareAfter(req, item, checkout, answers) : prepareReady(req, item, checkout);
      answers.set(item.step, answer);
      return await answer;
    });
    return out.filter((p): p is PrepareAnswer => p !== undefined);
  };
}

/**
 * A look-ahead item made ready: its inputs from the `after` steps filled from their cached
 * outputs. Undefined when one of those steps is not a hit in this call (the run prepares the
 * item once that step has run) or lacks the output the item reads.
 */
export function withUpstreamHits(item: PrepareItem, hits: ReadonlyMap<string, PreparedHit>): PrepareItem | undefined {
  if (!item.after!.every((s) => hits.has(s))) return undefined;
  const upstream = { ...item.upstream };
  for (const [name, src] of Object.entries(item.spec.inputs)) {
    if (src.kind !== 'step' || !item.after!.includes(src.step)) continue;
    const artifact = hits.get(src.step)!.hit.outputs[src.output];
    if (!artifact) return undefined;
    upstream[name] = { artifact, origin: { kind: 'step', step: src.step, output: src.output } };
  }
  return { step: item.step, spec: item.spec, gpus: item.gpus, upstream };
}

/** A repo path as the real path it leads to, refused when that is outside the project. `rel` is the real path relative to the root. */
export async function insideCheckout(root: string, rel: string, what: string): Promise<{ real: string; rel: string }> {
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(join(realRoot, rel));
  } catch {
    throw new StepInvalid(`${what}: ${rel} does not exist at this commit`);
  }
  if (real !== realRoot && !real.startsWith(realRoot + sep))
    throw new StepInvalid(`${what}: ${rel} points outside the project`);
  return { real, rel: relative(realRoot, real).split(sep).join('/') };
}

/**
 * Store a repository file or folder input. A folder holding a symbolic link (or anything but
 * files and folders) is refused, naming the input and the link by its path in the project.
 */
export async function putRepoInput(
  store: ArtifactStore,
  real: string,
  realRel: string,
  declared: string,
  what: string,
): Promise<ArtifactRef> {
  try {
    return await store.putPath(real);
  } catch (err) {
    if (!(err instanceof EntryRefused)) throw err;
    const at = [realRel, err.path].filter(Boolean).join('/') || declared;
    const via = realRel === posix.normalize(declared).replace(/\/+$/, '') ? '' : ` (${declared} leads to ${realRel})`;
    throw new StepInvalid(
      err.what === 'a symbolic link'
        ? `${what}: ${at} is a symbolic link${via}. A repository folder input may not contain links ` +
            `(a link could lead outside the input); commit the file itself, or name the link's target as the input.`
        : `${what}: ${at} is ${err.what}${via}; a repository input may hold only files and folders.`,
    );
  }
}

/** A step that cannot run as specified; its name is the failure type the workflow does not retry. */
export class StepInvalid extends Error {
  override name = FailureType.StepInvalid;
}
