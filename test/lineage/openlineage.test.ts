// OpenLineage events of real runs (test Temporal, podman), received by a local HTTP server
// and validated against the OpenLineage JSON Schema (vendored in test/fixtures/openlineage/).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineageRunId, type RunEvent } from '../../activities/lineage/openlineage.js';
import { loadOpenLineageConfig } from '../../app/openlineage.js';
import { cancelSignal } from '../../model/contracts.js';
import { LineageFacts } from '../../workflows/openlineage.js';
import type { StepStatus } from '../../model/types.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine } from '../engine/harness.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'openlineage');
const schema = (f: string) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')) as Record<string, unknown>;

// The spec's formats, checked as the spec means them (ajv-formats is not a dependency).
const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
ajv.addFormat('date-time', {
  validate: (s: string) =>
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)),
});
ajv.addFormat('uri', { validate: (s: string) => URL.canParse(s) });
for (const f of ['ParentRunFacet.json', 'JobTypeJobFacet.json', 'DatasetVersionDatasetFacet.json'])
  ajv.addSchema(schema(f));
const validateEvent = ajv.compile(schema('OpenLineage.json'));
const validateParent = ajv.getSchema('https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json')!;
const validateJobType = ajv.getSchema('https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json')!;
const validateVersion = ajv.getSchema('https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json')!;

/** Every schema the event and its facets must pass; the errors, empty when valid. */
function schemaErrors(e: RunEvent): string[] {
  const errors: string[] = [];
  const check = (v: typeof validateEvent, value: unknown, what: string) => {
    if (!v(value)) errors.push(`${what}: ${ajv.errorsText(v.errors)}`);
  };
  check(validateEvent, e, 'event');
  check(validateJobType, e.job.facets, 'job facets');
  if (e.run.facets) check(validateParent, e.run.facets, 'run facets');
  for (const d of [...e.inputs, ...e.outputs]) check(validateVersion, d.facets, `dataset ${d.name}`);
  return errors;
}

type Mode = 'ok' | 'error' | 'silent';

/** An OpenLineage HTTP endpoint: records what it is sent; answers 201, 500 or nothing. */
class Receiver {
  mode: Mode = 'ok';
  readonly events: RunEvent[] = [];
  readonly requests: { path: string; authorization: string | undefined }[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ path: req.url ?? '', authorization: req.headers.authorization });
        if (this.mode === 'silent') return;
        if (this.mode === 'error') {
          res.writeHead(500).end('down');
          return;
        }
        this.events.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as RunEvent);
        res.writeHead(201).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  of(workflowId: string, runId: string): RunEvent[] {
    const root = lineageRunId(workflowId, runId);
    return this.events.filter((e) => e.run.runId === root || e.run.facets?.parent.run.runId === root);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const sha256 = (text: string) => `sha256:${createHash('sha256').update(text).digest('hex')}`;

describe('OpenLineage events', () => {
  const receiver = new Receiver();
  const logLines: string[] = [];
  let engine: Engine;
  const KEY = 'ol-key-0123456789';

  beforeAll(async () => {
    await receiver.start();
    const log = pino({ level: 'warn' }, { write: (s: string) => void logLines.push(s) });
    const cfg = loadOpenLineageConfig(
      {
        TRAINYARD_OPENLINEAGE_URL: receiver.url,
        TRAINYARD_OPENLINEAGE_NAMESPACE: 'ml-team',
        TRAINYARD_OPENLINEAGE_API_KEY: KEY,
      },
      log,
    )!;
    // Short enough for a test; the default (5 s) is what a silent endpoint costs per try.
    engine = await startEngine({ workers: { openLineage: { ...cfg, timeoutMs: 1500 } } });
  });
  afterAll(async () => {
    await engine?.stop();
    await receiver.close();
  });

  it('a run and each step send START then COMPLETE or FAIL, with the parent run and the datasets by digest', async () => {
    receiver.mode = 'ok';
    const repo = engine.repo().write({
      '.trainyard/ol.yaml': `
name: ol
steps:
  prepare:
    image: ${BUSYBOX_IMAGE}
    run: echo data-${engine.salt} > /outputs/dataset
    outputs: [dataset]
  train:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/dataset /inputs/dataset > /outputs/model
    inputs: { dataset: steps.prepare.outputs.dataset }
    outputs: [model]
  broken:
    image: ${BUSYBOX_IMAGE}
    run: echo no; exit 3
    env: { SALT: "${engine.salt}" }
`,
    });
    repo.commit();
    const { workflowId, runId } = await engine.start(repo, '.trainyard/ol.yaml');
    const status = await engine.result(workflowId);
    expect(status.state).toBe('failed');
    expect(stepOf(status, 'broken').state).toBe('failed');

    // Every event is in by the time the run has finished: the run waits for its last send.
    const events = receiver.of(workflowId, runId);
    for (const e of events) expect(schemaErrors(e), `${e.job.name} ${e.eventType}`).toEqual([]);
    expect(receiver.requests.every((r) => r.path === '/api/v1/lineage' && r.authorization === `Bearer ${KEY}`)).toBe(
      true,
    );

    const job = `${repo.path}/ol`;
    const sequence = (name: string) => events.filter((e) => e.job.name === name).map((e) => e.eventType);
    expect(sequence(job)).toEqual(['START', 'FAIL']);
    expect(sequence(`${job}.prepare`)).toEqual(['START', 'COMPLETE']);
    expect(sequence(`${job}.train`)).toEqual(['START', 'COMPLETE']);
    expect(sequence(`${job}.broken`)).toEqual(['START', 'FAIL']);
    expect(
      events.every(
        (e) =>
          e.job.namespace === 'ml-team' &&
          e.schemaURL === 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent',
      ),
    ).toBe(true);
    expect(events[0]).toMatchObject({ eventType: 'START', job: { name: job } });
    expect(events.at(-1)).toMatchObject({ eventType: 'FAIL', job: { name: job } });

    // One run id per job run, the same on its START and its end; steps name the run as parent.
    const root = events.find((e) => e.job.name === job)!.run.runId;
    expect(root).toBe(lineageRunId(workflowId, runId));
    const stepEvents = events.filter((e) => e.job.name !== job);
    for (const e of stepEvents) {
      expect(e.run.facets?.parent).toMatchObject({ run: { runId: root }, job: { namespace: 'ml-team', name: job } });
      expect(e.run.runId).not.toBe(root);
    }
    expect(new Set(stepEvents.map((e) => e.run.runId)).size).toBe(3);
    expect(events.find((e) => e.job.name === job && e.eventType === 'FAIL')!.run.facets).toBeUndefined();

    // Datasets are the stored artifacts, named by their content digest.
    const dataset = sha256(`data-${engine.salt}\n`);
    const model = sha256(`data-${engine.salt}\n`.repeat(2));
    expect(stepOf(status, 'prepare').outcome!.outputs.dataset!.digest).toBe(dataset);
    const end = (step: string) => events.find((e) => e.job.name === `${job}.${step}` && e.eventType !== 'START')!;
    const start = (step: string) => events.find((e) => e.job.name === `${job}.${step}` && e.eventType === 'START')!;
    const digestsOf = (ds: RunEvent['inputs']) => ds.map((d) => d.facets.version.datasetVersion);
    expect(digestsOf(end('prepare').outputs)).toEqual([dataset]);
    expect(digestsOf(start('train').inputs)).toEqual([dataset]);
    expect(digestsOf(end('train').inputs)).toEqual([dataset]);
    expect(digestsOf(end('train').outputs)).toEqual([model]);
    expect(end('broken').outputs).toEqual([]);
    for (const d of [...end('prepare').outputs, ...end('train').inputs, ...end('train').outputs]) {
      // The local store: OpenLineage's `file` namespace, the blob's path, which ends in the digest.
      expect(d.namespace).toBe('file');
      expect(d.name.endsWith(`/${d.facets.version.datasetVersion.slice('sha256:'.length)}`)).toBe(true);
      expect(readFileSync(d.name, 'utf8')).toBe(
        d === end('train').outputs[0] ? `data-${engine.salt}\n`.repeat(2) : `data-${engine.salt}\n`,
      );
    }
    expect(logLines.join('')).not.toContain(KEY);
  });

  it('a cancelled run and its running step end with ABORT', async () => {
    receiver.mode = 'ok';
    const repo = engine.repo().write({
      '.trainyard/stop.yaml': `
name: stop
steps:
  forever:
    image: ${BUSYBOX_IMAGE}
    run: sleep 300
    env: { SALT: "${engine.salt}-stop" }
  later:
    image: ${BUSYBOX_IMAGE}
    run: "true"
    needs: [forever]
`,
    });
    repo.commit();
    const { workflowId, runId } = await engine.start(repo, '.trainyard/stop.yaml');
    const job = `${repo.path}/stop`;
    await waitFor(
      () => receiver.of(workflowId, runId).some((e) => e.job.name === `${job}.forever` && e.eventType === 'START'),
      60_000,
    );
    await engine.client.workflow.getHandle(workflowId).signal(cancelSignal);
    expect((await engine.result(workflowId)).state).toBe('cancelled');
    const events = receiver.of(workflowId, runId);
    for (const e of events) expect(schemaErrors(e)).toEqual([]);
    expect(events.filter((e) => e.job.name === job).map((e) => e.eventType)).toEqual(['START', 'ABORT']);
    expect(events.filter((e) => e.job.name === `${job}.forever`).map((e) => e.eventType)).toEqual(['START', 'ABORT']);
    // Never started: no job run at all.
    expect(events.filter((e) => e.job.name === `${job}.later`)).toEqual([]);
  });

  it.each([
    ['answers 500', 'error' as const, /HTTP 500/],
    ['does not answer', 'silent' as const, /no answer within 1500 ms/],
  ])('an endpoint that %s does not fail the run; a warning names the run', async (_what, mode, why) => {
    receiver.mode = mode;
    const before = receiver.requests.length;
    const repo = engine.repo().write({
      '.trainyard/down.yaml': `
name: down
steps:
  only:
    image: ${BUSYBOX_IMAGE}
    run: echo ${mode}-${engine.salt} > /outputs/o
    outputs: [o]
`,
    });
    repo.commit();
    const { workflowId, runId } = await engine.start(repo, '.trainyard/down.yaml');
    const status = await engine.result(workflowId);
    expect(status.state).toBe('succeeded');
    expect(receiver.requests.length).toBeGreaterThan(before);
    const warnings = logLines
      .map((l) => JSON.parse(l) as { runId?: string; error?: string; msg: string })
      .filter((l) => l.runId === runId);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]!.msg).toMatch(/OpenLineage endpoint did not take the events; the run goes on/);
    expect(warnings[0]!.error).toMatch(why);
    expect(logLines.join('')).not.toContain(KEY);
  });
});

describe('the events a run owes', () => {
  const art = (d: string) => ({
    digest: `sha256:${d.repeat(64)}`,
    size: 1,
    kind: 'file' as const,
    uri: `file:///s/${d}`,
  });
  const at = (n: number) => `2026-01-01T00:00:0${n}.000Z`;
  const events = (facts: ReturnType<LineageFacts['take']>) =>
    facts.map((f) => `${f.step ?? 'run'} ${f.eventType} ${f.eventTime.slice(18, 19)}`);

  it('a step answered from the cache starts and completes at once; one that never started sends nothing; one that failed unstarted sends START and FAIL', () => {
    const steps: StepStatus[] = [
      {
        name: 'hit',
        state: 'cached',
        finishedAt: at(2),
        inputs: { x: { artifact: art('a'), origin: { kind: 'uri', uri: 's3://b/x' } } },
        outcome: {
          state: 'succeeded',
          outputs: { y: art('b') },
          attempts: [],
          producedBy: { runId: 'r0', commit: 'c', step: 'hit', pipeline: 'p', finishedAt: at(1) },
        },
      },
      { name: 'blocked', state: 'skipped', message: 'skipped: x failed' },
      { name: 'never', state: 'cancelled', message: 'run cancelled' },
      { name: 'nohost', state: 'failed', finishedAt: at(3), message: 'no host' },
    ];
    const facts = new LineageFacts(false);
    const got = facts.take(steps, at(0));
    expect(events(got)).toEqual(['run START 0', 'hit START 2', 'hit COMPLETE 2', 'nohost START 3', 'nohost FAIL 3']);
    expect(got[2]).toMatchObject({ inputs: { x: art('a') }, outputs: { y: art('b') } });
    // Sent once only.
    expect(facts.take(steps, at(0))).toEqual([]);
  });

  it('after a continue-as-new, a step running before it is not started again but still ends', () => {
    const running: StepStatus = { name: 'long', state: 'running', startedAt: at(1) };
    const facts = new LineageFacts(true, {
      long: running,
      done: { name: 'done', state: 'succeeded', startedAt: at(0), finishedAt: at(1) },
    });
    expect(facts.take([running], at(0))).toEqual([]);
    expect(events(facts.take([{ ...running, state: 'failed', finishedAt: at(5) }], at(0)))).toEqual(['long FAIL 5']);
  });
});

describe('OpenLineage settings', () => {
  it('are off without a URL, and a bad one is refused naming the variable', () => {
    expect(loadOpenLineageConfig({})).toBeUndefined();
    expect(() => loadOpenLineageConfig({ TRAINYARD_OPENLINEAGE_URL: 'ftp://lineage' })).toThrow(
      /^TRAINYARD_OPENLINEAGE_URL: must be an http\(s\) URL, got "ftp:\/\/lineage"/,
    );
    expect(
      loadOpenLineageConfig({
        TRAINYARD_OPENLINEAGE_URL: 'http://marquez:5000/',
        TRAINYARD_OPENLINEAGE_ENDPOINT: '/custom/lineage',
      }),
    ).toMatchObject({
      endpoint: 'http://marquez:5000/custom/lineage',
      namespace: 'trainyard',
      producer: expect.stringMatching(/^https:\/\/github\.com\/trainyard\/trainyard\/tree\/v\d+\.\d+\.\d+$/),
    });
  });
});

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}
