// The service topology under faults: Temporal on a db file, 2 `trainyard serve` replicas
// (TRAINYARD_WORKERS=none), 2 control workers (`worker --no-host`) and 1 runner agent, each
// its own process, against the OpenAPI-checked fake GitHub with 3 repositories. 30 signed
// deliveries (pushes and `/train` comments), each to a random replica, some to both at once;
// meanwhile a replica, a worker and the agent (while a step container runs) are SIGKILLed
// and restarted, and the Temporal server is killed and restarted on the same port and db
// file. Like GitHub, the sender redelivers every delivery that got no 2xx (a connection
// error or a 503) until it is answered, and some are redelivered again after their run
// completed. Every delivery must produce exactly its run — none lost, none twice — with one
// completed check run; every step's output stored once; nothing left running at the end.
//
// Seeded: the plan and the fault schedule come from TRAINYARD_CHAOS_SEED (printed; random
// when unset), so a failure can be replayed with the same schedule.
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection, type WorkflowExecutionInfo } from '@temporalio/client';
import { expect, it } from 'vitest';
import { dataConverter } from '../../app/codec.js';
import type { intakeDelivery } from '../../workflows/intake.js';
import type { pipelineRun } from '../../workflows/pipeline.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { FakeGitHub, type FakeRepo } from '../githost/fake-github.js';
import { commentPayload, pushPayload } from '../githost/payloads.js';
import {
  closeProcessGuard,
  freePort,
  processesWith,
  seededRandom,
  TemporalServer,
  trainyard,
  type Proc,
} from './cluster.js';

const seedText = process.env.TRAINYARD_CHAOS_SEED?.trim();
if (seedText !== undefined && !/^\d{1,10}$/.test(seedText))
  throw new Error(`TRAINYARD_CHAOS_SEED must be a whole number, got ${JSON.stringify(seedText)}`);
const SEED = seedText ? Number(seedText) : Math.floor(Math.random() * 2 ** 31);
const REPLAY = `chaos seed ${SEED} (replay: TRAINYARD_CHAOS_SEED=${SEED} npx vitest run test/service/chaos.test.ts)`;

const DELIVERIES = 30;
/** Deliveries and faults are spread over this window from the start. */
const WINDOW_MS = 40_000;
const SECRET = 'chaos-webhook-secret';
const INSTALLATION = 64;
const rand = seededRandom(SEED);
const between = (lo: number, hi: number) => lo + rand() * (hi - lo);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pipelineFile = `name: chaos
on:
  push: { branches: [main] }
  comment: true
params:
  tag: { type: string, default: push }
steps:
  make:
    image: ${BUSYBOX_IMAGE}
    run: 'sleep 2; cat data.txt > /outputs/out; echo "tag=$PARAM_TAG" >> /outputs/out'
    outputs: [out]
`;

interface Planned {
  n: number;
  deliveryId: string;
  event: 'push' | 'issue_comment';
  payload: unknown;
  repo: FakeRepo;
  sha: string;
  /** The run workflow this delivery must produce. */
  runId: string;
  commentId?: number;
  at: number;
  both: boolean;
  redeliver: boolean;
  firstReplica: number;
  sends: number;
  refused: number;
  unavailable: number;
}

interface Fault {
  what: 'serve' | 'worker' | 'agent' | 'temporal';
  target: number;
  at: number;
  downMs: number;
  done?: string;
}

function sign(body: string): string {
  return `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
}

/** One POST as GitHub sends it; status 0 when the connection failed (a killed replica). */
async function post(url: string, d: Planned): Promise<{ status: number; json?: Record<string, unknown> }> {
  const body = JSON.stringify(d.payload);
  try {
    const res = await fetch(`${url}/api/github/webhooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': d.event,
        'x-github-delivery': d.deliveryId,
        'x-hub-signature-256': sign(body),
        'user-agent': 'GitHub-Hookshot/chaos',
      },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: Record<string, unknown> | undefined;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = undefined;
    }
    return { status: res.status, ...(json ? { json } : {}) };
  } catch {
    return { status: 0 };
  }
}

it('loses and doubles no delivery while replicas, workers, the agent and Temporal are killed', async () => {
  console.log(REPLAY);
  const t0 = Date.now();
  const nonce = randomUUID().slice(0, 8);
  const tag = `TRAINYARD_CHAOS_TAG=${nonce}`;
  const scratch = mkdtempSync(join(tmpdir(), 'trainyard-chaos-'));
  const logs = join(scratch, 'logs');
  mkdirSync(logs);
  const localQueue = `chaos-${nonce}-local`;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const repos: FakeRepo[] = [0, 1, 2].map((i) => ({ id: 7100 + i, owner: `chaos-${nonce}`, name: `models-${i}` }));
  const gh = new FakeGitHub(91, publicKey, repos[0]!, INSTALLATION);
  for (const r of repos.slice(1)) gh.addRepo(r);
  gh.roles.set('alice', 'write');

  const procs: Proc[] = [];
  let temporal: TemporalServer | undefined;
  let connection: Connection | undefined;
  const figures: Record<string, number | string> = {};
  const faults: Fault[] = [];
  let leftovers: { containers: string[]; processes: string[] } | undefined;

  const teardown = async () => {
    const rough: string[] = [];
    for (const p of procs) if (!(await p.stop())) rough.push(p.name);
    if (temporal && !(await temporal.proc.stop())) rough.push('temporal');
    await closeProcessGuard();
    await connection?.close().catch(() => undefined);
    await gh.stop();
    leftovers = {
      containers: execFileSync(
        'podman',
        ['ps', '-a', '--filter', `label=trainyard.queue=${localQueue}`, '--format', '{{.Names}}'],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter(Boolean),
      processes: processesWith(tag).map((p) => `${p.pid} ${p.cmdline}`),
    };
    figures['processes that needed SIGKILL at shutdown'] = rough.join(', ') || 'none';
    for (const p of procs) await p.close();
    if (temporal) await temporal.proc.close();
  };

  try {
    await ensureTestImages();
    await gh.start();
    temporal = await TemporalServer.create(
      join(scratch, 'temporal.db'),
      { ...(process.env as Record<string, string>), TRAINYARD_CHAOS_TAG: nonce },
      logs,
    );
    await temporal.start();

    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      TRAINYARD_CHAOS_TAG: nonce,
      TEMPORAL_ADDRESS: temporal.address,
      TRAINYARD_STORE: join(scratch, 'store'),
      GITHUB_APP_ID: '91',
      GITHUB_PRIVATE_KEY: privateKey,
      GITHUB_WEBHOOK_SECRET: SECRET,
      GITHUB_API_URL: gh.url,
      TRAINYARD_CONTROL_QUEUE: `chaos-${nonce}`,
      TRAINYARD_LOCAL_QUEUE: localQueue,
      TRAINYARD_STATUS_INTERVAL_MS: '1000',
      TRAINYARD_HEARTBEAT_TIMEOUT_SECONDS: '15',
      TRAINYARD_PUBLIC_URL: 'http://trainyard.test',
      TRAINYARD_LINK_SECRET: `chaos-link-secret-${nonce}-0123456789`,
      TRAINYARD_LOG_LEVEL: 'info',
    };
    delete env.TRAINYARD_HOST_QUEUE;
    const ports = [await freePort(), await freePort()];
    const replicas = ports.map((port, i) =>
      trainyard(
        `serve-${i}`,
        ['serve'],
        {
          ...env,
          TRAINYARD_WORKERS: 'none',
          TRAINYARD_BIND: '127.0.0.1',
          TRAINYARD_PORT: String(port),
          TRAINYARD_WORK_ROOT: join(scratch, `serve-${i}`),
        },
        logs,
      ),
    );
    const workers = [0, 1].map((i) =>
      trainyard(
        `worker-${i}`,
        ['worker', '--no-host'],
        { ...env, TRAINYARD_WORK_DIR: join(scratch, `worker-${i}`) },
        logs,
      ),
    );
    const agent = trainyard('agent', ['agent'], { ...env, TRAINYARD_WORK_DIR: join(scratch, 'agent') }, logs);
    procs.push(...replicas, ...workers, agent);
    for (const p of procs) p.start();
    await Promise.all([
      ...replicas.map((r) => r.ready(/listening on http/)),
      ...workers.map((w) => w.ready(/worker ready/)),
      agent.ready(/runner agent ready/),
    ]);
    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, dataConverter });
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);

    // The plan: commits, payloads, times and targets, all from the seed.
    const files = (data: string) => ({ '.trainyard/chaos.yaml': pipelineFile, 'data.txt': data });
    const heads = new Map(repos.map((r) => [r.name, gh.commit(files(`base ${r.name} ${nonce}`))]));
    const plan: Planned[] = [];
    for (let n = 0; n < DELIVERIES; n++) {
      const repo = repos[Math.floor(rand() * repos.length)]!;
      const full = `${repo.owner}/${repo.name}`;
      const common = {
        n,
        deliveryId: `chaos-${nonce}-${n}`,
        repo,
        at: between(0, WINDOW_MS),
        both: rand() < 0.25,
        redeliver: false,
        firstReplica: rand() < 0.5 ? 0 : 1,
        sends: 0,
        refused: 0,
        unavailable: 0,
      };
      if (rand() < 0.5) {
        const before = heads.get(repo.name)!;
        const after = gh.commit(files(`push ${n} ${nonce}`));
        heads.set(repo.name, after);
        const payload = pushPayload(repo, INSTALLATION, gh.url, { before, after, changed: { modified: ['data.txt'] } });
        plan.push({ ...common, event: 'push', payload, sha: after, runId: `push:github:${full}:${after}:chaos` });
      } else {
        const sha = gh.commit(files(`pr ${n} ${nonce}`));
        const pr = 100 + n;
        const commentId = 900_000 + n;
        gh.pulls.set(pr, { headSha: sha, headRepoId: repo.id });
        const payload = commentPayload(repo, INSTALLATION, gh.url, {
          pr,
          commentId,
          user: 'alice',
          body: `/train chaos tag=c${n}`,
        });
        plan.push({
          ...common,
          event: 'issue_comment',
          payload,
          sha,
          commentId,
          runId: `comment:github:${full}:${commentId}:chaos`,
        });
      }
    }
    for (const d of [...plan].sort(() => rand() - 0.5).slice(0, 6)) d.redeliver = true;
    faults.push(
      { what: 'serve', target: rand() < 0.5 ? 0 : 1, at: between(3_000, 30_000), downMs: between(1_000, 6_000) },
      { what: 'worker', target: rand() < 0.5 ? 0 : 1, at: between(3_000, 30_000), downMs: between(1_000, 6_000) },
      { what: 'agent', target: 0, at: between(8_000, 30_000), downMs: between(1_000, 6_000) },
      { what: 'temporal', target: 0, at: between(8_000, 30_000), downMs: between(1_000, 4_000) },
    );
    const runtimeRand = seededRandom(SEED ^ 0x5eed);

    const deliverUntilAnswered = async (d: Planned): Promise<void> => {
      await sleep(d.at);
      const deadline = Date.now() + 180_000;
      for (let attempt = 0; ; attempt++) {
        const targets = attempt === 0 ? (d.both ? [0, 1] : [d.firstReplica]) : [runtimeRand() < 0.5 ? 0 : 1];
        const answers = await Promise.all(targets.map((i) => post(urls[i]!, d)));
        d.sends += answers.length;
        d.refused += answers.filter((a) => a.status === 0).length;
        d.unavailable += answers.filter((a) => a.status === 503).length;
        const bad = answers.find((a) => a.status !== 0 && a.status !== 503 && (a.status < 200 || a.status >= 300));
        if (bad) throw new Error(`delivery ${d.n} answered ${bad.status}: ${JSON.stringify(bad.json)}`);
        if (answers.some((a) => a.status >= 200 && a.status < 300)) return;
        if (Date.now() > deadline) throw new Error(`delivery ${d.n} never answered 2xx in 180 s (${d.sends} sends)`);
        // Redelivery, as a user does from the app's Advanced tab; not a stand-in for an event.
        await sleep(300 + runtimeRand() * 900);
      }
    };

    const containerRunning = () =>
      execFileSync('podman', ['ps', '--filter', `label=trainyard.queue=${localQueue}`, '--format', '{{.Names}}'], {
        encoding: 'utf8',
      }).trim() !== '';
    const inject = async (f: Fault): Promise<void> => {
      await sleep(f.at);
      if (f.what === 'temporal') {
        await temporal!.proc.kill('SIGKILL');
        await sleep(f.downMs);
        await temporal!.start();
        f.done = `SIGKILLed ${(f.at / 1000).toFixed(1)} s into the deliveries, restarted (same port and db file) after ${(f.downMs / 1000).toFixed(1)} s`;
        return;
      }
      const proc = f.what === 'serve' ? replicas[f.target]! : f.what === 'worker' ? workers[f.target]! : agent;
      let note = '';
      if (f.what === 'agent') {
        // The agent dies mid-step: its container must not outlive it.
        const until = Date.now() + 120_000;
        while (!containerRunning() && Date.now() < until) await sleep(200);
        note = containerRunning() ? ' with a step container running' : ' (no step was running)';
      }
      await proc.kill('SIGKILL');
      await sleep(f.downMs);
      proc.start();
      f.done = `${proc.name} SIGKILLed${note}, restarted after ${(f.downMs / 1000).toFixed(1)} s`;
    };

    const tStart = Date.now();
    figures['seconds to start the processes'] = ((tStart - t0) / 1000).toFixed(1);
    await Promise.all([...plan.map(deliverUntilAnswered), ...faults.map(inject)]);
    const answeredAt = Date.now();

    // Every run completes with exactly one check run.
    const deadline = Date.now() + 300_000;
    const checksOf = (d: Planned) => gh.checkRunsFor(d.sha, 'trainyard/chaos').filter((c) => c.external_id === d.runId);
    for (;;) {
      const pending = plan.filter((d) => !checksOf(d).some((c) => c.status === 'completed'));
      if (pending.length === 0) break;
      if (Date.now() > deadline) {
        throw new Error(
          `runs without a completed check after 5 minutes (lost?): ${pending.map((d) => `#${d.n} ${d.runId}`).join(', ')}`,
        );
      }
      await sleep(500);
    }
    const runsDoneAt = Date.now();

    // Redelivered after their run completed: answered 2xx as seen before, nothing new started.
    for (const d of plan.filter((x) => x.redeliver)) {
      let answer: { status: number; json?: Record<string, unknown> } = { status: 0 };
      for (let i = 0; i < 20 && answer.status !== 200; i++) {
        answer = await post(urls[runtimeRand() < 0.5 ? 0 : 1]!, d);
        d.sends++;
        if (answer.status !== 200) await sleep(500);
      }
      expect(answer.status, `redelivery of #${d.n}`).toBe(200);
      expect(answer.json?.duplicate, `redelivery of #${d.n} must find its recorded delivery`).toBe(true);
    }

    // The delivery workflows: one per delivery id, each closed with exactly its run.
    const list = async (query: string): Promise<WorkflowExecutionInfo[]> => {
      const out: WorkflowExecutionInfo[] = [];
      for await (const w of client.workflow.list({ query })) out.push(w);
      return out;
    };
    const listDeadline = Date.now() + 120_000;
    let deliveries = await list('WorkflowType = "intakeDelivery"');
    while (deliveries.some((w) => w.status.name === 'RUNNING') && Date.now() < listDeadline) {
      await sleep(500);
      deliveries = await list('WorkflowType = "intakeDelivery"');
    }
    expect(deliveries.map((w) => w.workflowId).sort()).toEqual(
      plan.map((d) => `delivery:github:${d.deliveryId}`).sort(),
    );
    for (const d of plan) {
      const handle = client.workflow.getHandle<typeof intakeDelivery>(`delivery:github:${d.deliveryId}`);
      const outcome = await handle.result();
      expect(outcome.runs, `delivery #${d.n}`).toEqual([d.runId]);
    }
    // The runs: exactly the expected ones, each succeeded, each with one check run.
    const runs = await list('WorkflowType = "pipelineRun"');
    expect(runs.map((w) => w.workflowId).sort()).toEqual(plan.map((d) => d.runId).sort());
    const blobsDir = join(scratch, 'store', 'blobs', 'sha256');
    const keys = new Set<string>();
    for (const d of plan) {
      const checks = gh.checkRunsFor(d.sha, 'trainyard/chaos');
      expect(checks, `check runs of #${d.n} (${d.runId})`).toHaveLength(1);
      expect(checks[0]!.external_id).toBe(d.runId);
      expect(checks[0]!.status).toBe('completed');
      const c = checks[0]!;
      expect(
        c.conclusion,
        `conclusion of #${d.n}: ${c.output.title}\n${c.output.summary?.slice(0, 3000)}\n${c.output.text ?? ''}`,
      ).toBe('success');
      const status = await client.workflow.getHandle<typeof pipelineRun>(d.runId).result();
      const step = status.steps.find((s) => s.name === 'make')!;
      expect(step.state).toBe('succeeded');
      keys.add(step.cache!.key);
      // Stored once: one blob under the output's digest, whose bytes have that digest.
      const hex = step.outcome!.outputs.out!.digest.replace('sha256:', '');
      expect(readdirSync(join(blobsDir, hex.slice(0, 2))).filter((f) => f.startsWith(hex))).toEqual([hex]);
      const bytes = readFileSync(join(blobsDir, hex.slice(0, 2), hex));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(hex);
      expect(bytes.toString()).toContain(d.event === 'push' ? 'tag=push' : `tag=c${d.n}`);
      if (d.commentId !== undefined) {
        const replies = gh.comments.filter((c) => c.body.includes(`trainyard:reply-to:${d.commentId} `));
        expect(replies, `replies to comment #${d.n}`).toHaveLength(1);
        expect(replies[0]!.body).toContain('@alice started `chaos`');
      }
    }
    // The check's link, signed by whichever worker published it, opens on either replica.
    const details = gh.checkRunsFor(plan[0]!.sha, 'trainyard/chaos')[0]!.details_url!;
    expect(details).toMatch(/^http:\/\/trainyard\.test\/runs\//);
    for (const url of urls) {
      const page = await fetch(details.replace('http://trainyard.test', url));
      expect(page.status, `run page on ${url}`).toBe(200);
      expect(await page.text()).toContain('chaos succeeded');
    }
    // One step execution per cache key (single flight), each closed.
    const execs = await list('WorkflowType = "stepExecution"');
    expect(execs).toHaveLength(keys.size);
    expect(execs.every((w) => w.status.name === 'COMPLETED')).toBe(true);
    expect(gh.violations).toEqual([]);

    const lost = plan.filter((d) => !runs.some((w) => w.workflowId === d.runId)).length;
    const duplicated =
      runs.length -
      new Set(runs.map((w) => w.workflowId)).size +
      plan.reduce((n, d) => n + Math.max(0, gh.checkRunsFor(d.sha, 'trainyard/chaos').length - 1), 0);
    Object.assign(figures, {
      seed: SEED,
      deliveries: plan.length,
      'pushes / comments': `${plan.filter((d) => d.event === 'push').length} / ${plan.filter((d) => d.event !== 'push').length}`,
      'sent to both replicas at once': plan.filter((d) => d.both).length,
      'redelivered after their run completed': plan.filter((d) => d.redeliver).length,
      'POSTs in all': plan.reduce((n, d) => n + d.sends, 0),
      'connection errors (killed replica), redelivered': plan.reduce((n, d) => n + d.refused, 0),
      '503 (Temporal down), redelivered': plan.reduce((n, d) => n + d.unavailable, 0),
      'faults injected': faults.length,
      ...Object.fromEntries(faults.map((f) => [`fault ${f.what}`, f.done ?? 'not injected'])),
      'runs expected / started': `${plan.length} / ${runs.length}`,
      lost,
      duplicated,
      'seconds from the first delivery until all were answered': ((answeredAt - tStart) / 1000).toFixed(1),
      'seconds from the first delivery until every run completed': ((runsDoneAt - tStart) / 1000).toFixed(1),
    });
    expect(faults.every((f) => f.done)).toBe(true);
  } catch (err) {
    const tails = procs
      .concat(temporal ? [temporal.proc] : [])
      .map((p) => `--- ${p.name} (started ${p.starts}×) ---\n${p.output().slice(-3000)}`)
      .join('\n');
    if (err instanceof Error) err.message = `${err.message}\n${REPLAY}\n${tails}`;
    throw err;
  } finally {
    await teardown();
    rmSync(scratch, { recursive: true, force: true });
  }
  figures['left running: containers'] = leftovers!.containers.length;
  figures['left running: processes'] = leftovers!.processes.length;
  figures['wall time, s'] = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(
    `chaos figures:\n${Object.entries(figures)
      .map(([k, v]) => `  ${k}: ${v}`)
      .join('\n')}`,
  );
  expect(leftovers!.containers, REPLAY).toEqual([]);
  expect(leftovers!.processes, REPLAY).toEqual([]);
  expect(existsSync(scratch)).toBe(false);
}, 900_000);
