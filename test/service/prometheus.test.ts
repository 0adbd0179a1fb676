// /metrics after real work: a worker's health port after two runs of a pipeline (the second
// fully cached), the Temporal SDK's own port, and a `trainyard serve` process after signed and
// unsigned deliveries. Values are checked, not only names.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../app/devserver.js';
import { startHealthServer, type HealthServer } from '../../app/health.js';
import { BUSYBOX_IMAGE, startEngine, type Engine } from '../engine/harness.js';
import { deliver } from '../githost/payloads.js';
import { startServe, type ServeProcess } from '../githost/serve-process.js';
import { temporalAddress } from '../setup/services.js';
import { sample } from './promtext.js';

describe('a worker after two runs', () => {
  let engine: Engine;
  let health: HealthServer | undefined;
  let sdkPort: number;
  beforeAll(async () => {
    // Read when the Temporal Runtime is installed (startEngine does it first).
    sdkPort = await freePort();
    process.env.TRAINYARD_TEMPORAL_METRICS_PORT = String(sdkPort);
    process.env.TRAINYARD_HEALTH_BIND = '127.0.0.1';
    engine = await startEngine();
    health = await startHealthServer(
      { TRAINYARD_HEALTH_PORT: String(await freePort()), TRAINYARD_HEALTH_BIND: '127.0.0.1' },
      { role: 'worker', queues: [engine.hostQueue] },
    );
  });
  afterAll(async () => {
    await health?.close();
    await engine?.stop();
  });

  it('counts runs, step durations, cache decisions and stored artifacts', async () => {
    const repo = engine.repo().write({
      '.trainyard/m.yaml': `
name: m
steps:
  a:
    image: ${BUSYBOX_IMAGE}
    run: echo a-${engine.salt} > /outputs/x
    outputs: [x]
  b:
    image: ${BUSYBOX_IMAGE}
    run: cat /inputs/x /inputs/x > /outputs/y
    inputs: { x: steps.a.outputs.x }
    outputs: [y]
`,
    });
    repo.commit();
    expect((await engine.run(repo, '.trainyard/m.yaml')).state).toBe('succeeded');
    const second = await engine.run(repo, '.trainyard/m.yaml');
    expect(second.steps.map((s) => s.state)).toEqual(['cached', 'cached']);

    const res = await fetch(`${health!.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'trainyard_runs_started_total', { trigger: 'cli' })).toBe(2);
    expect(sample(text, 'trainyard_runs_finished_total', { trigger: 'cli', conclusion: 'succeeded' })).toBe(2);
    expect(sample(text, 'trainyard_cache_lookups_total', { decision: 'miss', reason: 'first_execution' })).toBe(2);
    expect(sample(text, 'trainyard_cache_lookups_total', { decision: 'hit' })).toBe(2);
    expect(sample(text, 'trainyard_step_duration_seconds_count', { state: 'succeeded' })).toBe(2);
    // Cached steps ran nothing: no duration to observe.
    expect(sample(text, 'trainyard_step_duration_seconds_count', { state: 'cached' })).toBeUndefined();
    expect(sample(text, 'trainyard_step_duration_seconds_sum', { state: 'succeeded' })).toBeGreaterThan(0);
    // Two outputs and two logs, each written once (the second run wrote nothing).
    expect(sample(text, 'trainyard_artifacts_stored_total')).toBeGreaterThanOrEqual(4);
    const y = second.steps[1]!.outcome!.outputs.y!;
    expect(sample(text, 'trainyard_artifact_bytes_stored_total')).toBeGreaterThanOrEqual(y.size + y.size / 2);
    // The series are declared even before anything happened to them.
    for (const name of [
      'trainyard_ec2_instances',
      'trainyard_githost_api_calls_total',
      'trainyard_githost_rate_limit_remaining',
      'trainyard_webhook_deliveries_total',
    ])
      expect(text).toContain(`# TYPE ${name} `);
    expect(sample(text, 'trainyard_process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it("serves the Temporal SDK's own series on TRAINYARD_TEMPORAL_METRICS_PORT", async () => {
    const text = await (await fetch(`http://127.0.0.1:${sdkPort}/metrics`)).text();
    // Workflow tasks of the runs above, as the SDK counts them.
    expect(sample(text, 'temporal_workflow_completed', {})).toBeGreaterThanOrEqual(2);
  });
});

describe('trainyard serve', () => {
  const SECRET = 'prometheus-test-secret';
  let serve: ServeProcess;
  let scratch: string;
  beforeAll(async () => {
    scratch = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'prom-serve-'));
    const { privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    serve = await startServe({
      GITHUB_APP_ID: '77',
      GITHUB_PRIVATE_KEY: privateKey,
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_API_URL: 'http://127.0.0.1:9',
      TEMPORAL_ADDRESS: temporalAddress(),
      TRAINYARD_STORE: join(scratch, 'store'),
      TRAINYARD_WORK_ROOT: join(scratch, 'work'),
      TRAINYARD_WORKERS: 'none',
      TRAINYARD_ACK_ONLY: '1',
      TRAINYARD_LOG_LEVEL: 'warn',
    });
  });
  afterAll(async () => {
    await serve?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('counts deliveries by source, event and outcome, and times them', async () => {
    expect((await deliver(serve.url, SECRET, 'ping', { zen: 'hi', hook_id: 1 })).status).toBe(200);
    expect((await deliver(serve.url, SECRET, 'ping', { zen: 'again', hook_id: 1 })).status).toBe(200);
    expect((await deliver(serve.url, 'wrong secret', 'push', { ref: 'refs/heads/main' })).status).toBe(401);
    expect((await deliver(serve.url, 'wrong secret', 'made_up_event_name', {})).status).toBe(401);
    const text = await (await fetch(`${serve.url}/metrics`)).text();
    expect(
      sample(text, 'trainyard_webhook_deliveries_total', { source: 'github', event: 'ping', outcome: '200' }),
    ).toBe(2);
    expect(
      sample(text, 'trainyard_webhook_deliveries_total', { source: 'github', event: 'push', outcome: '401' }),
    ).toBe(1);
    // An event name Trainyard does not know is not a label value (no series per stranger's string).
    expect(
      sample(text, 'trainyard_webhook_deliveries_total', { source: 'github', event: 'other', outcome: '401' }),
    ).toBe(1);
    expect(text).not.toContain('made_up_event_name');
    expect(sample(text, 'trainyard_webhook_delivery_seconds_count', { source: 'github', outcome: '200' })).toBe(2);
    expect(
      sample(text, 'trainyard_webhook_delivery_seconds_bucket', { source: 'github', outcome: '200', le: '+Inf' }),
    ).toBe(2);
  });
});
