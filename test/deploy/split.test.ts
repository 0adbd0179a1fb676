// deploy/local/split.sh as a platform engineer uses it (docs/deploying.md, *On one machine,
// process by process*): it starts Temporal on a db file, moto, the fake GitHub, two serve
// replicas, a worker and an agent as processes of their own; a push sent to one replica and a
// `/train` comment to the other with deploy/local/deliver.sh run end to end — completed check
// runs with a Details link that opens on either replica, the PR reply, `trainyard runs`,
// `status`, `logs`, /metrics — and Ctrl-C stops every process and removes its folder.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { spawnGuard } from '../../app/guard.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { TOKEN } from '../githost/fake-github.js';
import { REPO_ROOT } from '../githost/serve-process.js';
import { processesWith } from '../service/cluster.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(500);
  }
}

interface Check { status: string; conclusion: string | null; details_url: string | null; output: { title: string | null; summary: string | null } }

it('split.sh starts the split topology, a push and a /train comment run end to end, Ctrl-C leaves nothing', async () => {
  expect(BUSYBOX_IMAGE).toBe('localhost/trainyard-busybox:1'); // the image the fake's default pipeline names
  await ensureTestImages();
  const tag = randomUUID().slice(0, 8);
  const marker = `TRAINYARD_SPLIT_TEST_TAG=${tag}`;
  // Its own process group, so that the SIGINT below is a terminal's Ctrl-C; the watchdog ends
  // it should this test runner die first.
  const script = spawn('bash', ['deploy/local/split.sh'], {
    cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TRAINYARD_SPLIT_BASE_PORT: 'auto', TRAINYARD_SPLIT_TEST_TAG: tag },
  });
  const guard = spawnGuard();
  guard.followGroup(script.pid!, 60_000);
  let out = '';
  script.stdout.on('data', (d: Buffer) => (out += d.toString()));
  script.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => script.once('exit', (code) => r(code)));
  let dir = '';
  try {
    const readyBy = Date.now() + 300_000;
    while (!/^split topology ready in (\S+)$/m.test(out)) {
      if (script.exitCode !== null) throw new Error(`split.sh exited ${script.exitCode} before it was ready:\n${out.slice(-6000)}`);
      if (Date.now() > readyBy) throw new Error(`split.sh not ready within 300 s:\n${out.slice(-6000)}`);
      await sleep(200);
    }
    dir = /^split topology ready in (\S+)$/m.exec(out)![1]!;
    const [, serve0, serve1] = /serve replicas\s+(\S+)\s+(\S+)/.exec(out)!;
    const [, workerUrl] = /worker, agent\s+(\S+)\s+(\S+)/.exec(out)!;
    const envFile = join(dir, 'trainyard.env');
    const env = Object.fromEntries(readFileSync(envFile, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(out).toMatch(/^ok\s+Temporal: /m);
    expect(out).toMatch(/^ok\s+store: s3:\/\/trainyard\/store: wrote and read back a record$/m);
    expect(out).toMatch(/^ok\s+GitHub App: /m);
    const fakeLog = readFileSync(join(dir, 'github.log'), 'utf8');
    const pushed = /push of ([0-9a-f]{40}) to main/.exec(fakeLog)![1]!;
    const prHead = /\(head ([0-9a-f]{40})\)/.exec(fakeLog)![1]!;
    const cliEnv = { ...process.env, ...env };

    const sent = [
      await run('bash', ['deploy/local/deliver.sh', serve0!, 'push', join(dir, 'github', 'push.json')], { cwd: REPO_ROOT, env: cliEnv }),
      await run('bash', ['deploy/local/deliver.sh', serve1!, 'issue_comment', join(dir, 'github', 'comment.json')], { cwd: REPO_ROOT, env: cliEnv }),
    ];
    for (const s of sent) expect(JSON.parse(s.stdout)).toMatchObject({ ok: true, handled: true });

    const github = async (path: string): Promise<unknown> => {
      const res = await fetch(`${env.GITHUB_API_URL}/repos/octo-org/models${path}`, { headers: { authorization: `token ${TOKEN}` } });
      return res.json();
    };
    const completed = (sha: string) => until(`completed check run on ${sha}`, 240_000, async () => {
      const { check_runs: runs } = (await github(`/commits/${sha}/check-runs`)) as { check_runs: Check[] };
      return runs.length === 1 && runs[0]!.status === 'completed' ? runs[0] : undefined;
    });
    for (const sha of [pushed, prHead]) {
      const check = await completed(sha);
      expect(check.conclusion, check.output.summary ?? '').toBe('success');
      expect(check.output.summary).toContain('hello succeeded');
      expect(check.details_url).toMatch(new RegExp(`^${serve0}/runs/`));
      for (const replica of [serve0!, serve1!]) {
        const page = await fetch(check.details_url!.replace(serve0!, replica));
        expect(page.status, `run page on ${replica}`).toBe(200);
        expect(await page.text()).toContain('hello succeeded');
      }
    }
    const comments = (await github('/issues/1/comments')) as { body: string }[];
    expect(comments.filter((c) => c.body.startsWith('@alice started `hello`'))).toHaveLength(1);

    // By the run search attributes, which split.sh registered (trainyard setup-temporal).
    const listed = await run(process.execPath, ['bin/trainyard.js', 'runs', '--repo', 'octo-org/models', '--json'], { cwd: REPO_ROOT, env: cliEnv });
    const runs = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { workflowId: string; status: string; trigger?: string });
    expect(runs.map((r) => `${r.trigger} ${r.status}`).sort()).toEqual(['comment succeeded', 'push succeeded']);
    const pushRun = runs.find((r) => r.trigger === 'push')!;
    const status = await run(process.execPath, ['bin/trainyard.js', 'status', pushRun.workflowId], { cwd: REPO_ROOT, env: cliEnv });
    expect(status.stdout).toMatch(/^hello\s+✔ succeeded/m);
    const logs = await run(process.execPath, ['bin/trainyard.js', 'logs', pushRun.workflowId, 'hello'], { cwd: REPO_ROOT, env: cliEnv });
    expect(logs.stdout).toContain('hello from the fake GitHub');
    const metrics = async (url: string) => (await fetch(`${url}/metrics`)).text();
    expect(await metrics(serve0!)).toMatch(/^trainyard_webhook_deliveries_total\{source="github",event="push",outcome="200"\} 1$/m);
    expect(await metrics(serve1!)).toMatch(/^trainyard_webhook_deliveries_total\{source="github",event="issue_comment",outcome="200"\} 1$/m);
    expect(await metrics(workerUrl!)).toMatch(/^trainyard_runs_finished_total\{trigger="push",conclusion="succeeded"\} 1$/m);
    expect(processesWith(marker).length, 'split.sh and what it started run').toBeGreaterThanOrEqual(8);

    process.kill(-script.pid!, 'SIGINT');
    expect(await exited, out.slice(-4000)).toBe(130);
    let left = processesWith(marker);
    const goneBy = Date.now() + 60_000;
    while (left.length && Date.now() < goneBy) {
      await sleep(200);
      left = processesWith(marker);
    }
    expect(left.map((p) => `${p.pid} ${p.cmdline}`), 'processes left after Ctrl-C').toEqual([]);
    expect(existsSync(dir), `${dir} removed`).toBe(false);
    expect(out).toMatch(/fake GitHub stopped: \d+ requests, every one fit GitHub's OpenAPI description/);
  } finally {
    if (script.exitCode === null && script.signalCode === null) {
      try { process.kill(-script.pid!, 'SIGTERM'); } catch { /* gone */ }
      await exited;
    }
    await guard.close();
    // split.sh removes it; should it not have (the assertion above failed), nothing is left either.
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}, 600_000);
