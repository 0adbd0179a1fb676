// End to end on GitLab's side: `trainyard serve` as its own process, GitLab's documented
// Push Hook and Note Hook examples adapted to the test project, sent with the secret token
// over HTTP; API calls go to the fake GitLab; runs go through Temporal and podman.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers } from '../../activities/container/run.js';
import { cancelPipelineRun } from '../../app/engine.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { FakeGitLab } from './fake-gitlab.js';
import { startServe, type ServeProcess } from './serve-process.js';
import { sample } from '../service/promtext.js';

const TOKEN = 'glpat-test-token';
const SECRET = 'gitlab-hook-secret';
const PROJECT = 15;
const pipeline = `name: tiny
on:
  push: { branches: [master], paths: ["src/**"] }
  comment: true
params:
  n: { type: integer, default: 1 }
steps:
  hello:
    image: ${BUSYBOX_IMAGE}
    run: 'echo "hello n=$PARAM_N"'
`;
const slow = `name: slow
on:
  comment: true
steps:
  wait:
    image: ${BUSYBOX_IMAGE}
    run: 'echo started; sleep 600'
`;
const gl = new FakeGitLab(TOKEN, PROJECT);
let serve: ServeProcess;
let client: Client;
let connection: Connection;
const queue = `gl-e2e-${process.pid}`;
// Note ids make workflow ids; the Temporal server outlives test runs.
const NOTE_BASE = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);

const example = (name: string) =>
  JSON.parse(readFileSync(new URL(`./gitlab-examples/${name}.json`, import.meta.url), 'utf8')) as Record<string, any>;

function adapt(hook: Record<string, any>): Record<string, any> {
  hook.project_id = PROJECT;
  Object.assign(hook.project, {
    id: PROJECT,
    web_url: `${gl.url}/mike/diaspora`,
    git_http_url: `${gl.url}/mike/diaspora.git`,
    path_with_namespace: 'mike/diaspora',
  });
  return hook;
}

async function post(event: string, body: unknown, token: string | null = SECRET, key = randomUUID()): Promise<number> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-gitlab-event': event,
    'idempotency-key': key,
  };
  if (token !== null) headers['x-gitlab-token'] = token;
  const res = await fetch(`${serve.url}/api/gitlab/webhooks`, { method: 'POST', headers, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 90_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n--- serve output ---\n${serve.output().slice(-6000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What a user sees on GitLab for a commit and a merge request: every status posted, the notes and each note's edits. */
const visible = (sha: string, mr: number) =>
  JSON.stringify({
    statuses: gl.statuses.filter((st) => st.sha === sha),
    notes: [...gl.notes.values()].filter((n) => n.mr === mr),
  });

/** Step containers of this server's runner, asked of whichever container CLI this host uses. */
async function leftoverContainers(): Promise<string[]> {
  return (await listContainers(await resolveContainerCli(process.env), { 'trainyard.queue': `${queue}-host` })).map(
    (c) => c.name,
  );
}

async function workflowsFor(prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId STARTS_WITH "${prefix}"` })) ids.push(w.workflowId);
  return ids;
}

let scratch: string;
beforeAll(async () => {
  await ensureTestImages();
  await gl.start();
  scratch = mkdtempSync(join(tmpdir(), 'trainyard-gl-e2e-'));
  serve = await startServe({
    GITLAB_URL: gl.url,
    GITLAB_TOKEN: TOKEN,
    GITLAB_WEBHOOK_SECRET: SECRET,
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_STORE: join(scratch, 'store'),
    TRAINYARD_WORK_ROOT: join(scratch, 'work'),
    TRAINYARD_CONTROL_QUEUE: queue,
    TRAINYARD_HOST_QUEUE: `${queue}-host`,
    TRAINYARD_STATUS_INTERVAL_MS: '300',
    TRAINYARD_PUBLIC_URL: 'http://trainyard.test',
  });
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
});

afterAll(async () => {
  await serve?.stop();
  await connection?.close();
  await gl.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('GitLab end to end', () => {
  it('answers 401 without the secret token and starts nothing', async () => {
    const after = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'unsigned' });
    const hook = adapt(example('push'));
    Object.assign(hook, { after, checkout_sha: after });
    expect(await post('Push Hook', hook, null)).toBe(401);
    expect(await post('Push Hook', hook, 'wrong')).toBe(401);
    await serve.idle();
    expect(gl.calls).toEqual([]);
    expect(await workflowsFor(`push:gitlab:${PROJECT}:${after}`)).toEqual([]);
  });

  it('runs a push and reports pending → running → success on the commit status, once per Idempotency-Key and once per commit', async () => {
    const before = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'a' });
    const after = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'b' });
    const hook = adapt(example('push'));
    // The example says 4 commits but lists 2: the server must ask compare for the rest.
    Object.assign(hook, { before, after, checkout_sha: after });
    gl.conflictsToSend = 1;
    const key = randomUUID();
    expect(await post('Push Hook', hook, SECRET, key)).toBe(200);
    expect(await post('Push Hook', hook, SECRET, key)).toBe(200);
    const done = await waitFor('final status', () => {
      const s = gl.latest(after, 'trainyard/tiny');
      return s && ['success', 'failed', 'canceled'].includes(s.state) ? s : undefined;
    });
    expect(done.state).toBe('success');
    const states = gl.statuses.filter((s) => s.sha === after).map((s) => s.state);
    expect(states[0]).toMatch(/pending|running/);
    expect(states).toContain('running');
    expect(done.target_url).toMatch(/^http:\/\/trainyard\.test\/runs\//);
    expect([...(done.description ?? '')].length).toBeLessThanOrEqual(255);
    expect(gl.calls.some((c) => c.path.endsWith('/repository/compare'))).toBe(true);
    expect(await workflowsFor(`push:gitlab:${PROJECT}:${after}`)).toHaveLength(1);

    // Delivered again once the run is over (its workflow closed): under the same Idempotency-Key
    // (GitLab's "Resend request"), and under a new one for the same commit (a second push event of that sha).
    await client.workflow.getHandle(`push:gitlab:${PROJECT}:${after}:tiny`).result();
    const seen = visible(after, 0);
    expect(await post('Push Hook', hook, SECRET, key)).toBe(200);
    expect(await post('Push Hook', hook, SECRET, randomUUID())).toBe(200);
    await serve.idle();
    expect(visible(after, 0)).toBe(seen);
    expect(await workflowsFor(`push:gitlab:${PROJECT}:${after}`)).toHaveLength(1);
    expect(gl.violations).toEqual([]);
  });

  it('runs `/train` from a Developer on a merge request and keeps one report note, edited on re-run, not on a redelivery', async () => {
    const head = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'mr' });
    gl.mergeRequests.set(1, { sha: head, sourceProjectId: PROJECT });
    gl.members.set(8, 30);
    const note = adapt(example('note-merge-request'));
    note.user.id = 8;
    note.user.username = 'dev';
    note.object_attributes.id = NOTE_BASE + 5001;
    note.object_attributes.note = '/train tiny n=3';
    const key = randomUUID();
    expect(await post('Note Hook', note, SECRET, key)).toBe(200);
    await waitFor('award', () => gl.awards.find((a) => a.noteId === NOTE_BASE + 5001 && a.name === 'eyes'));
    const report = await waitFor('report note', () =>
      [...gl.notes.values()].find((n) => n.mr === 1 && /Succeeded/.test(n.body)),
    );
    expect(report.body).toContain('trainyard/tiny');
    // Once its workflow has closed, the run has published all it ever will.
    await client.workflow.getHandle(`comment:gitlab:${PROJECT}:${NOTE_BASE + 5001}:tiny`).result();
    await serve.idle();

    // The same note delivered again after its run finished, under its key and under a new one.
    const seen = visible(head, 1);
    expect(await post('Note Hook', note, SECRET, key)).toBe(200);
    expect(await post('Note Hook', note, SECRET, randomUUID())).toBe(200);
    await serve.idle();
    expect(visible(head, 1)).toBe(seen);
    expect(await workflowsFor(`comment:gitlab:${PROJECT}:${NOTE_BASE + 5001}:`)).toHaveLength(1);

    note.object_attributes.id = NOTE_BASE + 5002;
    note.object_attributes.note = '/train tiny n=4';
    expect(await post('Note Hook', note)).toBe(200);
    await waitFor(
      'second run finished',
      () => gl.statuses.filter((s) => s.sha === head && s.state === 'success').length >= 2,
    );
    await waitFor('note edited', () => (gl.notes.get(report.id)?.edits ?? 0) >= 3);
    expect([...gl.notes.values()].filter((n) => n.mr === 1 && n.body.includes('trainyard/tiny'))).toHaveLength(1);
  });

  it('refuses a Reporter, and a fork merge request until a Maintainer approves its commit', async () => {
    const head = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'fork' });
    gl.mergeRequests.set(2, { sha: head, sourceProjectId: 999 });
    gl.members.set(9, 20);
    gl.members.set(10, 30);
    gl.members.set(11, 40);
    const note = adapt(example('note-merge-request'));
    note.merge_request.iid = 2;
    const say = async (userId: number, id: number, text: string) => {
      note.user.id = userId;
      note.user.username = `user${userId}`;
      note.object_attributes.id = id;
      note.object_attributes.note = text;
      expect(await post('Note Hook', note)).toBe(200);
    };
    await say(9, NOTE_BASE + 6001, '/train tiny');
    await waitFor('reporter refusal', () =>
      [...gl.notes.values()].find((n) => n.mr === 2 && n.body.includes('needs write access')),
    );
    await say(10, NOTE_BASE + 6002, '/train tiny');
    await waitFor('fork refusal', () =>
      [...gl.notes.values()].find((n) => n.mr === 2 && n.body.includes('comes from a fork')),
    );
    expect(gl.statuses.filter((s) => s.sha === head && s.name === 'trainyard/tiny')).toEqual([]);
    await say(11, NOTE_BASE + 6003, '/ok-to-train');
    await waitFor('approval', () =>
      [...gl.notes.values()].find((n) => n.mr === 2 && n.body.includes('approved commit')),
    );
    await say(10, NOTE_BASE + 6004, '/train tiny');
    await waitFor('fork run', () => gl.latest(head, 'trainyard/tiny')?.state === 'success');
  });
  it('cancels the running `/train` run of a merge request when a newer `/train` of it starts; the older commit status says "Superseded by <sha>" and its container is gone', async () => {
    const first = gl.commit({ '.trainyard/slow.yaml': slow, 'src/a.txt': 'mr-7' });
    gl.mergeRequests.set(7, { sha: first, sourceProjectId: PROJECT });
    gl.members.set(12, 30);
    const note = adapt(example('note-merge-request'));
    note.merge_request.iid = 7;
    note.user.id = 12;
    note.user.username = 'dev7';
    note.object_attributes.id = NOTE_BASE + 7001;
    note.object_attributes.note = '/train slow';
    expect(await post('Note Hook', note)).toBe(200);
    await waitFor('first run running', () => gl.latest(first, 'trainyard/slow')?.state === 'running');
    const firstContainers = await waitFor("the first run's container", async () => {
      const names = await leftoverContainers();
      return names.length === 1 && names;
    });
    // A push to the merge request, then `/train` again: the first run is of an older commit.
    const second = gl.commit({ '.trainyard/slow.yaml': slow, 'src/a.txt': 'mr-7b' });
    gl.mergeRequests.set(7, { sha: second, sourceProjectId: PROJECT });
    note.object_attributes.id = NOTE_BASE + 7002;
    expect(await post('Note Hook', note)).toBe(200);
    const old = await waitFor('the first run superseded', () => {
      const st = gl.latest(first, 'trainyard/slow');
      return st?.state === 'canceled' && st;
    });
    expect(old.description).toMatch(new RegExp(`^Superseded by ${second.slice(0, 12)}: .* — run `));
    // The merge request's one report note says it too (posted after the status).
    const report = await waitFor('the report note', () =>
      [...gl.notes.values()].find((n) => n.mr === 7 && n.body.includes('trainyard/slow: Superseded')),
    );
    expect(report.body).toContain(`of commit \`${second}\` is newer in this run's concurrency group`);
    await waitFor('second run running', () => gl.latest(second, 'trainyard/slow')?.state === 'running');
    // Only the newer run's container is left.
    const secondContainers = await waitFor("the newer run's container alone", async () => {
      const names = await leftoverContainers();
      return names.length === 1 && !firstContainers.includes(names[0]!) && names;
    });
    expect(secondContainers).toHaveLength(1);
    // GitLab has no Cancel button on a commit status: cancel it as `trainyard cancel` does, to end clean.
    await cancelPipelineRun(client, `comment:gitlab:${PROJECT}:${NOTE_BASE + 7002}:slow`);
    const cancelled = await waitFor('the newer run cancelled', () => {
      const st = gl.latest(second, 'trainyard/slow');
      return st?.state === 'canceled' && st;
    });
    expect(cancelled.description).toMatch(/^Cancelled/);
    await waitFor('containers removed', async () => (await leftoverContainers()).length === 0, 30_000);
    expect(gl.violations).toEqual([]);
  });

  it('runs a Tag Push Hook on the commit the tag points at (checkout_sha), for pipelines whose tag filter matches', async () => {
    const release = `name: release
on:
  push: { tags: ["v[0-9]+.*", "!v0.*"] }
steps:
  pack:
    image: ${BUSYBOX_IMAGE}
    run: echo packed
`;
    const commit = gl.commit({
      '.trainyard/tiny.yaml': pipeline,
      '.trainyard/release.yaml': release,
      'src/a.txt': 'tagged',
    });
    const hook = adapt(example('tag-push'));
    // An annotated tag: `after` is the tag object, which is no commit.
    Object.assign(hook, { after: 'a'.repeat(40), checkout_sha: commit, ref: 'refs/tags/v1.0.0' });
    expect(await post('Tag Push Hook', hook)).toBe(200);
    const done = await waitFor('release status', () => {
      const st = gl.latest(commit, 'trainyard/release');
      return st && ['success', 'failed', 'canceled'].includes(st.state) ? st : undefined;
    });
    expect(done.state).toBe('success');
    // `tiny` filters branches only, so a tag push never runs it.
    expect(gl.statuses.filter((st) => st.sha === commit && st.name === 'trainyard/tiny')).toEqual([]);
    expect(await workflowsFor(`push:gitlab:${PROJECT}:${commit}:`)).toEqual([
      `push:gitlab:${PROJECT}:${commit}:release`,
    ]);
    expect(gl.statuses.filter((st) => st.sha === 'a'.repeat(40))).toEqual([]);
    expect(gl.violations).toEqual([]);
  });

  it('counts its GitLab API calls by status on /metrics, and the rate-limit budget GitLab reports', async () => {
    const before = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'm1' });
    const after = gl.commit({ '.trainyard/tiny.yaml': pipeline, 'src/a.txt': 'm2' });
    const hook = adapt(example('push'));
    Object.assign(hook, { before, after, checkout_sha: after });
    gl.conflictsToSend = 1;
    expect(await post('Push Hook', hook)).toBe(200);
    await waitFor('final status', () =>
      ['success', 'failed', 'canceled'].includes(gl.latest(after, 'trainyard/tiny')?.state ?? ''),
    );
    await client.workflow.getHandle(`push:gitlab:${PROJECT}:${after}:tiny`).result();
    await serve.idle();

    // Every call the fake answered, by status, is what serve counted (the counter moves once
    // serve has read the answer, a moment after the fake recorded it).
    const answered = () => {
      const n = new Map<string, number>();
      for (const c of gl.calls) n.set(String(c.status), (n.get(String(c.status)) ?? 0) + 1);
      return n;
    };
    let text = '';
    const counted = (status: string) => sample(text, 'trainyard_githost_api_calls_total', { host: 'gitlab', status });
    const deadline = Date.now() + 30_000;
    for (;;) {
      text = await (await fetch(`${serve.url}/metrics`)).text();
      if ([...answered()].every(([status, n]) => counted(status) === n) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(Object.fromEntries([...answered()].map(([status]) => [status, counted(status)]))).toEqual(
      Object.fromEntries(answered()),
    );
    expect(answered().get('409')).toBeGreaterThan(0);
    expect(answered().get('200')).toBeGreaterThan(0);
    // The archive download (repository/archive) is a call too.
    expect(gl.calls.some((c) => c.path.endsWith('/repository/archive.tar.gz'))).toBe(true);

    const remaining = sample(text, 'trainyard_githost_rate_limit_remaining', {
      host: 'gitlab',
      resource: 'throttle_authenticated_api',
    });
    expect(remaining).toBeLessThan(gl.rateLimit.limit);
    expect(gl.rateLimitRemaining.slice(-10)).toContain(remaining);
  });
});
