// Webhook intake benchmark, loopback only: `trainyard serve` (its own process) receives
// signed GitHub push deliveries for a fake GitHub API and either records each delivery in
// Temporal, whose intake activity on a control worker (`trainyard worker --no-host`, its own
// process) reads .trainyard/ at the commit, matches filters and starts the run, or, as the
// baseline, verifies and acknowledges the same deliveries without recording anything
// (TRAINYARD_ACK_ONLY=1), or records them with no control worker running (record only: serve's
// own path, without the intake's load on the same server and CPUs). No runner agent polls, so started runs wait for one and are
// terminated afterwards.
//
//   TEMPORAL_ADDRESS=127.0.0.1:7233 node --import tsx bench/webhooks.ts [--latency N] [--burst N] [--concurrency C]
//
// Latency: deliveries one at a time; ack = HTTP round trip (the delivery is durable when it
// comes back), start = Temporal's recorded start time of the run minus the moment the
// delivery was sent.
// Throughput: a burst of deliveries C at a time. Accepted deliveries/s: until every one was
// answered 2xx, i.e. recorded in Temporal (durable intake) — what the issue compares with the
// rate a bare Temporal client starts workflows at; runs started/s: until every delivery's run
// was started too, which adds the control worker's intake (reading .trainyard/ from the fake
// GitHub, matching filters, starting the run).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { FakeGitHub } from '../test/githost/fake-github.js';
import { deliver, pushPayload } from '../test/githost/payloads.js';
import { startDevServer } from '../app/devserver.js';
import { startServe } from '../test/githost/serve-process.js';
import { closeProcessGuard, trainyard } from '../test/service/cluster.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1 || v > 5000) throw new Error(`--${name} must be a whole number from 1 to 5000`);
  return v;
};
const LATENCY_N = arg('latency', 100);
const BURST_N = arg('burst', 300);
const CONCURRENCY = arg('concurrency', 32);
const SECRET = 'bench-secret';
const repo = { id: 1001, owner: 'bench-org', name: 'models' };
const PIPELINE = `name: bench
on:
  push: { branches: [main], paths: ["src/**"] }
steps:
  hello: { image: localhost/trainyard-busybox:1, run: echo hi }
`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

async function temporal(): Promise<{ address: string; stop?: () => Promise<void> }> {
  if (process.env.TEMPORAL_ADDRESS) return { address: process.env.TEMPORAL_ADDRESS };
  const dev = await startDevServer();
  return { address: dev.address, stop: () => dev.stop() };
}

interface ModeResult {
  mode: string;
  ackP50: number;
  ackP99: number;
  startP50?: number;
  startP99?: number;
  /** Deliveries answered 2xx per second over the burst. */
  acceptedPerSecond: number;
  /** Deliveries per second until every one's run had started (start-runs mode only). */
  startedPerSecond?: number;
  burst: number;
}

type Mode = 'ack' | 'record' | 'start';
const MODE_NAMES: Record<Mode, string> = { ack: 'acknowledge only', record: 'record only', start: 'start runs' };

async function runMode(
  mode: Mode,
  gh: FakeGitHub,
  client: Client,
  address: string,
  privateKey: string,
): Promise<ModeResult> {
  const ackOnly = mode === 'ack';
  // record: deliveries recorded with no control worker running, on a queue of their own (their
  // intake workflows are terminated after): serve's own path, without the intake's load.
  const queue = mode === 'record' ? `bench-${process.pid}-record` : `bench-${process.pid}`;
  const store = mkdtempSync(join(tmpdir(), 'trainyard-bench-'));
  const serve = await startServe({
    GITHUB_APP_ID: String(gh.appId),
    GITHUB_PRIVATE_KEY: privateKey,
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: gh.url,
    TEMPORAL_ADDRESS: address,
    TRAINYARD_STORE: store,
    TRAINYARD_WORK_ROOT: join(store, 'work'),
    TRAINYARD_WORKERS: 'none',
    TRAINYARD_ACK_ONLY: ackOnly ? '1' : '0',
    TRAINYARD_LOG_LEVEL: 'warn',
    TRAINYARD_CONTROL_QUEUE: queue,
  });
  const worker =
    mode !== 'start'
      ? undefined
      : trainyard(
          'bench-worker',
          ['worker', '--no-host'],
          {
            ...(process.env as Record<string, string>),
            GITHUB_APP_ID: String(gh.appId),
            GITHUB_PRIVATE_KEY: privateKey,
            GITHUB_WEBHOOK_SECRET: SECRET,
            GITHUB_API_URL: gh.url,
            TEMPORAL_ADDRESS: address,
            TRAINYARD_STORE: store,
            TRAINYARD_WORK_DIR: join(store, 'worker'),
            TRAINYARD_CONTROL_QUEUE: `bench-${process.pid}`,
            TRAINYARD_PUBLIC_URL: 'none',
            TRAINYARD_LOG_LEVEL: 'info',
          },
          store,
        );
  worker?.start();
  await worker?.ready(/worker ready/);
  const started: string[] = [];
  const recorded: string[] = [];
  const send = async (i: number) => {
    const before = gh.commit({ '.trainyard/bench.yaml': PIPELINE, 'src/x.txt': `${mode}-${i}-a` });
    const after = gh.commit({ '.trainyard/bench.yaml': PIPELINE, 'src/x.txt': `${mode}-${i}-b` });
    const sentAt = Date.now();
    const r = await deliver(
      serve.url,
      SECRET,
      'push',
      pushPayload(repo, gh.installationId, gh.url, { before, after, changed: { modified: ['src/x.txt'] } }),
    );
    if (r.status !== 200) throw new Error(`delivery answered ${r.status}`);
    recorded.push(`delivery:github:${r.deliveryId}`);
    const id = `push:github:${repo.owner}/${repo.name}:${after}:bench`;
    started.push(id);
    return { id, sentAt, ackMs: r.ms };
  };
  const startedAt = async (id: string, deadline: number): Promise<number> => {
    for (;;) {
      try {
        return (await client.workflow.getHandle(id).describe()).startTime.getTime();
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`run ${id} was not started within the deadline: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  try {
    for (let i = 0; i < 5; i++) {
      const w = await send(-1 - i);
      if (mode === 'start') await startedAt(w.id, Date.now() + 30_000);
    }
    const acks: number[] = [];
    const starts: number[] = [];
    for (let i = 0; i < LATENCY_N; i++) {
      const w = await send(i);
      acks.push(w.ackMs);
      if (mode === 'start') starts.push((await startedAt(w.id, Date.now() + 30_000)) - w.sentAt);
    }
    const t0 = performance.now();
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < BURST_N) {
          const i = LATENCY_N + next++;
          ids.push((await send(i)).id);
        }
      }),
    );
    const acceptedSeconds = (performance.now() - t0) / 1000;
    if (mode === 'start') {
      const deadline = Date.now() + 300_000;
      for (const id of ids) await startedAt(id, deadline);
    }
    const startedSeconds = (performance.now() - t0) / 1000;
    return {
      mode: MODE_NAMES[mode],
      ackP50: pct(acks, 50),
      ackP99: pct(acks, 99),
      ...(mode === 'start' ? { startP50: pct(starts, 50), startP99: pct(starts, 99) } : {}),
      acceptedPerSecond: BURST_N / acceptedSeconds,
      ...(mode === 'start' ? { startedPerSecond: BURST_N / startedSeconds } : {}),
      burst: BURST_N,
    };
  } finally {
    await serve.stop();
    if (mode === 'record') {
      for (const id of recorded)
        await client.workflow
          .getHandle(id)
          .terminate('benchmark over')
          .catch(() => undefined);
    }
    if (mode === 'start') {
      for (const id of started)
        await client.workflow
          .getHandle(id)
          .terminate('benchmark over')
          .catch(() => undefined);
    }
    await worker?.stop();
    await worker?.close();
    rmSync(store, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const t = await temporal();
  const gh = new FakeGitHub(4242, publicKey, repo, 99);
  await gh.start();
  const connection = await Connection.connect({ address: t.address });
  const client = new Client({ connection });
  try {
    const results = [
      await runMode('ack', gh, client, t.address, privateKey),
      await runMode('record', gh, client, t.address, privateKey),
      await runMode('start', gh, client, t.address, privateKey),
    ];
    if (gh.violations.length) throw new Error(`fake GitHub saw bad requests:\n${gh.violations.join('\n')}`);
    const f = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(1));
    console.log(
      `\nwebhook intake, loopback, ${LATENCY_N} sequential deliveries for latency, ${BURST_N} at concurrency ${CONCURRENCY} for throughput\n`,
    );
    console.log(
      '| mode | ack p50 ms | ack p99 ms | webhook→start p50 ms | webhook→start p99 ms | accepted deliveries/s | runs started/s |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of results)
      console.log(
        `| ${r.mode} | ${f(r.ackP50)} | ${f(r.ackP99)} | ${f(r.startP50)} | ${f(r.startP99)} | ${f(r.acceptedPerSecond)} | ${f(r.startedPerSecond)} |`,
      );
  } finally {
    await connection.close();
    await gh.stop();
    await t.stop?.();
    // The watchdog of the worker's process group holds a pipe open: without this the bench never exits.
    await closeProcessGuard();
  }
}

await main();
