// OpenLineage run events (https://openlineage.io/spec/2-0-2/OpenLineage.json): one job per
// pipeline (`<repo>/<pipeline>`) and one per step (`<repo>/<pipeline>.<step>`, with a
// `parent` facet naming the pipeline's run), datasets named by where the content-addressed
// artifact lives, POSTed one event per request as the OpenLineage HTTP transport does.
// Best effort: an endpoint that is down or refuses costs a run a few seconds at most and
// never fails it; what was not delivered is logged (run id, counts), the API key never.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { LineageEmitRequest, LineageEmitResult, LineageFact } from '../../model/openlineage.js';
import type { ArtifactRef } from '../../model/types.js';

/** The spec version whose RunEvent Trainyard writes (its `schemaURL`). */
export const RUN_EVENT_SCHEMA_URL = 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent';
const PARENT_FACET_URL = 'https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet';
const JOB_TYPE_FACET_URL = 'https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet';
const VERSION_FACET_URL =
  'https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet';

export interface OpenLineageConfig {
  /** Where each event is POSTed: the endpoint URL (base URL + `api/v1/lineage` by default). */
  endpoint: string;
  /** Namespace of Trainyard's jobs (TRAINYARD_OPENLINEAGE_NAMESPACE, default `trainyard`). */
  namespace: string;
  /** Sent as `Authorization: Bearer <key>`; never logged. */
  apiKey?: string;
  /** The events' `producer` URI: Trainyard and its version. */
  producer: string;
  log: Logger;
  /** Per request, ms (default 5000). */
  timeoutMs?: number;
  /** Tries per event while the endpoint is healthy (default 3); one try after a failure within `quietMs`. */
  attempts?: number;
  /** After an undelivered event, later sends within this many ms try once (default 30000). */
  quietMs?: number;
}

interface Facet {
  _producer: string;
  _schemaURL: string;
}
interface Dataset {
  namespace: string;
  name: string;
  facets: { version: Facet & { datasetVersion: string } };
}
/** An OpenLineage RunEvent as Trainyard writes it. */
export interface RunEvent {
  eventType: LineageFact['eventType'];
  eventTime: string;
  producer: string;
  schemaURL: string;
  run: {
    runId: string;
    facets?: {
      parent: Facet & {
        run: { runId: string };
        job: { namespace: string; name: string };
        root: { run: { runId: string }; job: { namespace: string; name: string } };
      };
    };
  };
  job: {
    namespace: string;
    name: string;
    facets: { jobType: Facet & { processingType: 'BATCH'; integration: 'TRAINYARD'; jobType: 'PIPELINE' | 'STEP' } };
  };
  inputs: Dataset[];
  outputs: Dataset[];
}

// UUIDv5 namespace of Trainyard's run ids (a random UUID fixed once: changing it changes every id).
const UUID_NAMESPACE = Buffer.from('5b0c6f1e7e1a4f4c9d3e2b8a61c0f7d2', 'hex');

/** A name-based UUID (version 5, SHA-1; RFC 9562 §5.5): the same name always gives the same id. */
export function uuidFromName(name: string): string {
  const h = createHash('sha1').update(UUID_NAMESPACE).update(name, 'utf8').digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The OpenLineage run id of a pipeline run, or of one of its steps: stable, so a resent event is the same event. */
export function lineageRunId(workflowId: string, runId: string, step?: string): string {
  return uuidFromName(JSON.stringify(step === undefined ? [workflowId, runId] : [workflowId, runId, step]));
}

/**
 * A dataset as OpenLineage's naming conventions name stored objects: `s3://bucket` + the
 * object key in S3, `file` + the path in a local folder (https://openlineage.io/docs/spec/naming).
 * The key is content-addressed, so the name carries the digest; the `version` facet says it.
 */
export function datasetOf(artifact: ArtifactRef, producer: string): Dataset {
  const facets = { version: { _producer: producer, _schemaURL: VERSION_FACET_URL, datasetVersion: artifact.digest } };
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(artifact.uri);
  if (s3) return { namespace: `s3://${s3[1]}`, name: s3[2]!, facets };
  if (artifact.uri.startsWith('file:')) return { namespace: 'file', name: fileURLToPath(artifact.uri), facets };
  return { namespace: 'trainyard', name: artifact.digest, facets };
}

/** The RunEvents of a request's facts, in its order. */
export function runEvents(req: LineageEmitRequest, cfg: Pick<OpenLineageConfig, 'namespace' | 'producer'>): RunEvent[] {
  const pipelineJob = { namespace: cfg.namespace, name: `${req.repository}/${req.pipeline}` };
  const pipelineRun = { runId: lineageRunId(req.workflowId, req.runId) };
  const jobType = (t: 'PIPELINE' | 'STEP') => ({
    jobType: {
      _producer: cfg.producer,
      _schemaURL: JOB_TYPE_FACET_URL,
      processingType: 'BATCH' as const,
      integration: 'TRAINYARD' as const,
      jobType: t,
    },
  });
  const datasets = (m: Record<string, ArtifactRef> | undefined) =>
    Object.keys(m ?? {})
      .sort()
      .map((k) => datasetOf(m![k]!, cfg.producer));
  return req.facts.map((f) => {
    const base = {
      eventType: f.eventType,
      eventTime: f.eventTime,
      producer: cfg.producer,
      schemaURL: RUN_EVENT_SCHEMA_URL,
    };
    if (f.step === undefined)
      return {
        ...base,
        run: pipelineRun,
        job: { ...pipelineJob, facets: jobType('PIPELINE') },
        inputs: [],
        outputs: [],
      };
    return {
      ...base,
      run: {
        runId: lineageRunId(req.workflowId, req.runId, f.step),
        facets: {
          parent: {
            _producer: cfg.producer,
            _schemaURL: PARENT_FACET_URL,
            run: pipelineRun,
            job: pipelineJob,
            root: { run: pipelineRun, job: pipelineJob },
          },
        },
      },
      job: { namespace: cfg.namespace, name: `${pipelineJob.name}.${f.step}`, facets: jobType('STEP') },
      inputs: datasets(f.inputs),
      outputs: datasets(f.outputs),
    };
  });
}

/** One POST; resolves to the failure (a sentence) or undefined when the endpoint took it (2xx). */
async function post(cfg: OpenLineageConfig, body: string): Promise<{ error: string; retry: boolean } | undefined> {
  try {
    const res = await fetch(cfg.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cfg.apiKey ? { authorization: `Bearer ${cfg.apiKey}` } : {}) },
      body,
      signal: AbortSignal.timeout(cfg.timeoutMs ?? 5000),
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return undefined;
    // 4xx but 408/429: the event itself was refused; sending it again changes nothing.
    return { error: `HTTP ${res.status}`, retry: res.status >= 500 || res.status === 408 || res.status === 429 };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return {
      error: e.name === 'TimeoutError' ? `no answer within ${cfg.timeoutMs ?? 5000} ms` : (e.cause?.code ?? e.message),
      retry: true,
    };
  }
}

/**
 * The `emitOpenLineage` control activity: without a configuration it answers `enabled: false`
 * at once (the run then asks no more); with one it sends the request's events in order and
 * never throws. An event the endpoint does not take after its tries ends the batch (the
 * endpoint is down: the rest would wait as long), logged as a warning with the run id.
 */
export function createEmitOpenLineage(
  cfg: OpenLineageConfig | undefined,
): (req: LineageEmitRequest) => Promise<LineageEmitResult> {
  let quietUntil = 0;
  return async function emitOpenLineage(req) {
    if (!cfg) return { enabled: false };
    const events = runEvents(req, cfg);
    for (let i = 0; i < events.length; i++) {
      const tries = Date.now() < quietUntil ? 1 : (cfg.attempts ?? 3);
      let failure: { error: string; retry: boolean } | undefined;
      for (let t = 0; t < tries; t++) {
        if (t > 0) await new Promise((r) => setTimeout(r, 250 * 4 ** (t - 1)));
        failure = await post(cfg, JSON.stringify(events[i]));
        if (!failure?.retry) break;
      }
      if (!failure) continue;
      const ev = events[i]!;
      if (!failure.retry) {
        cfg.log.warn(
          {
            runId: req.runId,
            workflowId: req.workflowId,
            job: ev.job.name,
            eventType: ev.eventType,
            error: failure.error,
          },
          'OpenLineage endpoint refused an event; the run goes on',
        );
        continue;
      }
      quietUntil = Date.now() + (cfg.quietMs ?? 30_000);
      cfg.log.warn(
        {
          runId: req.runId,
          workflowId: req.workflowId,
          endpoint: new URL(cfg.endpoint).origin,
          undelivered: events.length - i,
          error: failure.error,
        },
        'OpenLineage endpoint did not take the events; the run goes on without them',
      );
      break;
    }
    return { enabled: true };
  };
}
