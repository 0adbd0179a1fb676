// End to end on GitHub's side: `trainyard serve` as its own process, real example payloads
// from @octokit/webhooks-examples signed with the test secret and posted over HTTP, every
// API call it makes going to the fake GitHub (checked against GitHub's OpenAPI
// description), runs going through the real engine: Temporal and podman containers.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers } from '../../activities/container/run.js';
import { deliveryWorkflowId } from '../../activities/intake/ids.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { FakeGitHub, type CheckRunState } from './fake-github.js';
import { checkRunPayload, checkSuitePayload, commentPayload, deliver, pushPayload } from './payloads.js';
import { startServe, type ServeProcess } from './serve-process.js';

const SECRET = 'e2e-webhook-secret';
const repo = { id: 1001, owner: 'octo-org', name: 'models' };
const FORK_REPO_ID = 2002;
const INSTALLATION = 42;
const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

const tiny = `name: tiny
on:
  push: { branches: [main], paths: ["src/**", ".trainyard/tiny.yaml"] }
  comment: true
params:
  n: { type: integer, default: 1, min: 1, max: 100 }
steps:
  hello:
    image: ${BUSYBOX_IMAGE}
    run: 'echo "hello n=$PARAM_N"; cat src/data.txt; mkdir -p /outputs/out; echo done > /outputs/out/x'
    outputs: [out]
`;
const slow = `name: slow
on:
  comment: true
steps:
  wait:
    image: ${BUSYBOX_IMAGE}
    run: 'echo started; sleep 600'
`;
const failing = `name: failing
on:
  comment: true
steps:
  prep:
    image: ${BUSYBOX_IMAGE}
    run: echo fine
  explode:
    image: ${BUSYBOX_IMAGE}
    needs: [prep]
    run: 'echo "loading data"; echo "boom: the model diverged" >&2; exit 3'
`;
const quick = `name: quick
on:
  comment: true
steps:
  hi:
    image: ${BUSYBOX_IMAGE}
    run: echo quick
`;
const gpu = `name: gpu
on:
  push: { branches: [main] }
machines:
  big: { instance: [p4d.24xlarge], gpus: 8 }
steps:
  train:
    image: ${BUSYBOX_IMAGE}
    machine: big
    run: echo train
`;
const broken = `name: broken
on:
  push: { branches: [main] }
steps:
  a:
    image: ${BUSYBOX_IMAGE}
    run: echo a
    needz: [b]
  b:
    imag: ${BUSYBOX_IMAGE}
`;

// A token only the serve process's runner holds (TRAINYARD_SECRETS_FROM_ENV allows it).
const HF_TOKEN = `hf_${randomUUID().replace(/-/g, '')}`;
const secretive = `name: secretive
on:
  comment: true
steps:
  upload:
    image: ${BUSYBOX_IMAGE}
    secrets: [HF_TOKEN]
    run: 'echo "uploading with token=$HF_TOKEN"; exit 4'
`;

const gh = new FakeGitHub(77, publicKey, repo, INSTALLATION);
let serve: ServeProcess;
let client: Client;
let connection: Connection;
const queue = `gh-e2e-${process.pid}`;

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

const completed = (sha: string, name: string) =>
  waitFor(`completed check ${name} on ${sha.slice(0, 7)}`, () =>
    gh.checkRunsFor(sha, name).find((c) => c.status === 'completed'),
  );

const send = (event: string, payload: unknown, deliveryId?: string) =>
  deliver(serve.url, SECRET, event, payload, deliveryId);
const push = (before: string, after: string, changed: string[], extra: { ref?: string; deleted?: boolean } = {}) =>
  send('push', pushPayload(repo, INSTALLATION, gh.url, { before, after, changed: { modified: changed }, ...extra }));
// Comment ids make workflow ids; the Temporal server outlives test runs.
let commentId = 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
const comment = async (pr: number, user: string, body: string) => {
  const id = ++commentId;
  const payload = commentPayload(repo, INSTALLATION, gh.url, { pr, commentId: id, user, body });
  return { ...(await send('issue_comment', payload)), commentId: id, payload };
};

async function workflowsFor(prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId STARTS_WITH "${prefix}"` })) ids.push(w.workflowId);
  return ids;
}

/** Containers of this server's runner, asked of whichever container CLI this host uses. */
async function leftoverContainers(): Promise<string[]> {
  return (await listContainers(await resolveContainerCli(process.env), { 'trainyard.queue': `${queue}-host` })).map(
    (c) => c.name,
  );
}

/** What a user sees on GitHub for a commit or pull request: its check runs (every update) and the bot's comments. */
const visible = (sha: string, pr?: number) =>
  JSON.stringify({ checks: gh.checkRunsFor(sha), comments: gh.comments.filter((c) => c.issue === pr) });

let base: string;
let scratch: string;
const files = (data: string, extra: Record<string, string> = {}) => ({
  '.trainyard/tiny.yaml': tiny,
  '.trainyard/slow.yaml': slow,
  'src/data.txt': data,
  'README.md': 'readme',
  ...extra,
});

beforeAll(async () => {
  await ensureTestImages();
  await gh.start();
  gh.roles.set('alice', 'write');
  gh.roles.set('maria', 'maintain');
  gh.roles.set('eve', 'read');
  scratch = mkdtempSync(join(tmpdir(), 'trainyard-gh-e2e-'));
  serve = await startServe({
    GITHUB_APP_ID: '77',
    GITHUB_PRIVATE_KEY: privateKey,
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: gh.url,
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_STORE: join(scratch, 'store'),
    TRAINYARD_WORK_ROOT: join(scratch, 'work'),
    TRAINYARD_CONTROL_QUEUE: queue,
    TRAINYARD_HOST_QUEUE: `${queue}-host`,
    TRAINYARD_STATUS_INTERVAL_MS: '300',
    TRAINYARD_PUBLIC_URL: 'http://trainyard.test',
    TRAINYARD_LOG_LEVEL: 'info',
    TRAINYARD_SECRETS_FROM_ENV: 'HF_TOKEN',
    HF_TOKEN,
  });
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
  base = gh.commit(files('v0'));
});

afterAll(async () => {
  await serve?.stop();
  await connection?.close();
  await gh.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('GitHub App end to end', () => {
  it('answers 401 to a missing or wrong signature and starts nothing', async () => {
    const after = gh.commit(files('unsigned'));
    const calls = gh.calls.length;
    const payload = pushPayload(repo, INSTALLATION, gh.url, {
      before: base,
      after,
      changed: { modified: ['src/data.txt'] },
    });
    expect((await deliver(serve.url, null, 'push', payload)).status).toBe(401);
    expect((await deliver(serve.url, 'not-the-secret', 'push', payload)).status).toBe(401);
    await serve.idle();
    expect(gh.calls.length).toBe(calls);
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${after}`)).toEqual([]);
  });

  let firstRun: CheckRunState;
  // How fast the webhook is answered is measured by bench/webhooks.ts.
  it('runs a push through the whole check-run lifecycle, once for a redelivered webhook, also after the run', async () => {
    const after = gh.commit(files('v1'));
    const r = await push(base, after, ['src/data.txt']);
    expect(r.status).toBe(200);
    const again = await send(
      'push',
      pushPayload(repo, INSTALLATION, gh.url, { before: base, after, changed: { modified: ['src/data.txt'] } }),
      r.deliveryId,
    );
    expect(again.status).toBe(200);
    firstRun = await completed(after, 'trainyard/tiny');
    expect(firstRun.conclusion).toBe('success');
    expect(firstRun.statuses[0]).toMatch(/queued|in_progress/);
    expect(firstRun.statuses).toContain('in_progress');
    expect(firstRun.output.summary).toContain('## ✅ tiny succeeded');
    expect(firstRun.output.summary).toContain(after);
    expect(firstRun.output.summary).toMatch(/\| `hello` \| `out` \| `sha256:/);
    expect(firstRun.details_url).toMatch(/^http:\/\/trainyard\.test\/runs\//);
    // The details link is the run's page on this server, signed; a forged signature gets nothing.
    const page = await fetch(firstRun.details_url!.replace('http://trainyard.test', serve.url));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('## ✅ tiny succeeded');
    expect(
      (await fetch(firstRun.details_url!.replace('http://trainyard.test', serve.url).replace(/sig=.*/, 'sig=forged')))
        .status,
    ).toBe(404);
    expect(firstRun.actions.map((a) => a.identifier)).toEqual(['rerun']);
    // Re-delivery and the duplicate were answered, but one run and one check exist.
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${after}`)).toHaveLength(1);
    expect(gh.checkRunsFor(after, 'trainyard/tiny')).toHaveLength(1);
    // `slow` has no push trigger: no check for it.
    expect(gh.checkRunsFor(after, 'trainyard/slow')).toHaveLength(0);

    // Redelivered once the run is over, its workflow closed (GitHub's "Redeliver", and the same
    // push under a new delivery id): nothing new starts, and the finished check is not touched.
    await client.workflow.getHandle(`push:github:${repo.owner}/${repo.name}:${after}:tiny`).result();
    const seen = visible(after);
    const payload = pushPayload(repo, INSTALLATION, gh.url, {
      before: base,
      after,
      changed: { modified: ['src/data.txt'] },
    });
    expect((await send('push', payload, r.deliveryId)).status).toBe(200);
    expect((await send('push', payload)).status).toBe(200);
    await serve.idle();
    expect(visible(after)).toBe(seen);
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${after}`)).toHaveLength(1);
    expect(gh.violations).toEqual([]);
  });

  it('gives a passing "results stand" check, naming the earlier run, when the push touches no watched path', async () => {
    const before = gh.commit(files('v1'));
    const after = gh.commit(files('v1', { 'README.md': 'new words' }));
    expect((await push(before, after, ['README.md'])).status).toBe(200);
    const check = await completed(after, 'trainyard/tiny');
    expect(check.conclusion).toBe('success');
    expect(check.output.title).toContain('results of run');
    expect(check.output.summary).toContain(firstRun.head_sha.slice(0, 12));
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${after}`)).toEqual([]);
  });

  it('starts nothing for a branch deletion or a branch the pipeline does not watch', async () => {
    const after = gh.commit(files('other-branch'));
    expect((await push(base, after, ['src/data.txt'], { ref: 'refs/heads/feature' })).status).toBe(200);
    expect((await push(base, after, [], { ref: 'refs/heads/main', deleted: true })).status).toBe(200);
    await serve.idle();
    expect(gh.checkRunsFor(after)).toEqual([]);
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${after}`)).toEqual([]);
  });

  it('fails the check of an invalid pipeline file with every error and annotations at its lines', async () => {
    const after = gh.commit(files('v2', { '.trainyard/broken.yaml': broken }));
    expect((await push(base, after, ['.trainyard/broken.yaml'])).status).toBe(200);
    const check = await completed(after, 'trainyard/broken');
    expect(check.conclusion).toBe('failure');
    expect(check.output.summary).toMatch(/\.trainyard\/broken\.yaml:8:\d+/);
    expect(check.output.summary).toMatch(/\.trainyard\/broken\.yaml:10:\d+/);
    expect(check.annotations.map((a) => a.start_line).sort()).toEqual(expect.arrayContaining([8, 10]));
    expect(
      check.annotations.every((a) => a.path === '.trainyard/broken.yaml' && a.annotation_level === 'failure'),
    ).toBe(true);
  });

  it('fails the check of a pipeline the server policy refuses, with the reason at the line', async () => {
    const after = gh.commit(files('v3', { '.trainyard/gpu.yaml': gpu }));
    expect((await push(base, after, ['.trainyard/gpu.yaml'])).status).toBe(200);
    const check = await completed(after, 'trainyard/gpu');
    expect(check.conclusion).toBe('failure');
    expect(check.output.title).toBe('Refused by server policy');
    expect(check.output.summary).toMatch(/no EC2 configured/);
    expect(check.annotations).toContainEqual(expect.objectContaining({ path: '.trainyard/gpu.yaml', start_line: 9 }));
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${after}:gpu`)).toEqual([]);
  });

  it("puts the failing step's log tail and an annotation at its line on a failed check", async () => {
    const head = gh.commit(files('pr-12', { '.trainyard/failing.yaml': failing }));
    gh.pulls.set(12, { headSha: head, headRepoId: repo.id });
    await comment(12, 'alice', '/train failing');
    const check = await completed(head, 'trainyard/failing');
    expect(check.conclusion).toBe('failure');
    expect(check.output.text).toContain('boom: the model diverged');
    expect(check.output.text).toContain('loading data');
    expect(check.annotations).toContainEqual(
      expect.objectContaining({ path: '.trainyard/failing.yaml', start_line: 8, annotation_level: 'failure' }),
    );
    expect(check.annotations.find((a) => a.start_line === 8)?.message).toContain('boom');
  });

  it('runs `/train` with parameters for a collaborator, reacting and replying with the check link, once for a redelivery after the run', async () => {
    const head = gh.commit(files('pr-7'));
    gh.pulls.set(7, { headSha: head, headRepoId: repo.id });
    const train = await comment(7, 'alice', '/train tiny n=42');
    expect(train.status).toBe(200);
    const check = await completed(head, 'trainyard/tiny');
    expect(check.conclusion).toBe('success');
    expect(gh.reactions).toContainEqual({ commentId: train.commentId, content: 'eyes' });
    const reply = await waitFor('reply', () =>
      gh.comments.find((c) => c.issue === 7 && c.body.includes('@alice started')),
    );
    expect(reply.body).toContain('`n=42`');
    expect(reply.body).toContain(`/runs/${check.id}`);
    expect(check.output.summary).toMatch(/\| `n` \| `42` \|/);

    // The same comment delivered again after its run finished (its workflow closed), under its
    // own delivery id and a new one.
    await client.workflow.getHandle(`comment:github:${repo.owner}/${repo.name}:${train.commentId}:tiny`).result();
    await serve.idle();
    const seen = visible(head, 7);
    expect((await send('issue_comment', train.payload, train.deliveryId)).status).toBe(200);
    expect((await send('issue_comment', train.payload)).status).toBe(200);
    await serve.idle();
    expect(visible(head, 7)).toBe(seen);
    expect(await workflowsFor(`comment:github:${repo.owner}/${repo.name}:${train.commentId}:`)).toHaveLength(1);
  });

  it('refuses `/train` from a commenter without write access, and bad parameters, starting nothing', async () => {
    const head = gh.commit(files('pr-8'));
    gh.pulls.set(8, { headSha: head, headRepoId: repo.id });
    const refused = [await comment(8, 'eve', '/train tiny')];
    const refusal = await waitFor('refusal', () => gh.comments.find((c) => c.issue === 8 && c.body.includes('@eve')));
    expect(refusal.body).toContain('needs write access');
    refused.push(await comment(8, 'alice', '/train tiny n=1000'));
    const bad = await waitFor('parameter error', () =>
      gh.comments.find((c) => c.issue === 8 && c.body.includes('n') && c.body.includes('@alice')),
    );
    expect(bad.body).toMatch(/"n" must be/);
    refused.push(await comment(8, 'alice', '/train nosuch'));
    const unknown = await waitFor('unknown pipeline', () =>
      gh.comments.find((c) => c.issue === 8 && c.body.includes('no pipeline `nosuch`')),
    );
    expect(unknown.body).toContain('`tiny`');
    await serve.idle();
    // A comment's run would have the workflow id comment:github:<repo>:<comment id>:<pipeline>.
    for (const { commentId: id } of refused)
      expect(await workflowsFor(`comment:github:${repo.owner}/${repo.name}:${id}:`), `comment ${id}`).toEqual([]);
    expect(gh.checkRunsFor(head)).toEqual([]);
  });

  it('refuses a fork until a maintainer approves the exact head commit, and again after a new push', async () => {
    const first = gh.commit(files('fork-1'));
    gh.pulls.set(9, { headSha: first, headRepoId: FORK_REPO_ID });
    await comment(9, 'alice', '/train tiny');
    await waitFor('fork refusal', () => gh.comments.find((c) => c.issue === 9 && c.body.includes('comes from a fork')));
    const waiting = await completed(first, 'trainyard/approval');
    expect(waiting.conclusion).toBe('action_required');
    expect(gh.checkRunsFor(first, 'trainyard/tiny')).toEqual([]);

    await comment(9, 'alice', '/ok-to-train');
    await waitFor('non-maintainer refusal', () =>
      gh.comments.find((c) => c.issue === 9 && c.body.includes('only maintainers')),
    );
    await comment(9, 'maria', '/ok-to-train');
    await waitFor('approval', () => gh.comments.find((c) => c.issue === 9 && c.body.includes('@maria approved')));
    await comment(9, 'alice', '/train tiny');
    expect((await completed(first, 'trainyard/tiny')).conclusion).toBe('success');

    const second = gh.commit(files('fork-2'));
    gh.pulls.set(9, { headSha: second, headRepoId: FORK_REPO_ID });
    const refusals = gh.comments.filter((c) => c.issue === 9 && c.body.includes('comes from a fork')).length;
    await comment(9, 'alice', '/train tiny');
    await waitFor(
      'second fork refusal',
      () => gh.comments.filter((c) => c.issue === 9 && c.body.includes('comes from a fork')).length > refusals,
    );
    expect(gh.checkRunsFor(second, 'trainyard/tiny')).toEqual([]);
  });

  it('hands a step its secret masked as *** on the check, and withholds it from an approved fork', async () => {
    const own = gh.commit(files('pr-13', { '.trainyard/secretive.yaml': secretive }));
    gh.pulls.set(13, { headSha: own, headRepoId: repo.id });
    await comment(13, 'alice', '/train secretive');
    const check = await completed(own, 'trainyard/secretive');
    // The step ran with the token (and failed on purpose, so its log tail is on the check).
    expect(check.conclusion).toBe('failure');
    expect(check.output.text).toContain('uploading with token=***');
    expect(check.annotations.find((a) => a.start_line === 5)?.message).toContain('exited with code 4');

    const forked = gh.commit(files('fork-13', { '.trainyard/secretive.yaml': secretive }));
    gh.pulls.set(14, { headSha: forked, headRepoId: FORK_REPO_ID });
    await comment(14, 'maria', '/ok-to-train');
    await waitFor('approval', () => gh.comments.find((c) => c.issue === 14 && c.body.includes('@maria approved')));
    await comment(14, 'alice', '/train secretive');
    const fork = await completed(forked, 'trainyard/secretive');
    expect(fork.conclusion).toBe('failure');
    // Markdown-escaped on the check: HF\_TOKEN.
    expect(fork.output.summary).toContain(
      'not started: it needs secrets (HF\\_TOKEN), and runs of pull requests from forks receive no secrets',
    );
    expect(fork.output.text ?? '').not.toContain('uploading');
    expect(visible(own, 13) + visible(forked, 14) + serve.output()).not.toContain(HF_TOKEN);
  });

  it('cancels a running run from the Cancel button, leaving no container', async () => {
    const head = gh.commit(files('pr-10'));
    gh.pulls.set(10, { headSha: head, headRepoId: repo.id });
    await comment(10, 'alice', '/train slow');
    const running = await waitFor('slow step running', () =>
      gh
        .checkRunsFor(head, 'trainyard/slow')
        .find((c) => c.status === 'in_progress' && /1 running/.test(c.output.title ?? '')),
    );
    expect(running.actions.map((a) => a.identifier)).toEqual(['cancel']);
    // The check says "running" once the execution is started; the container follows moments later.
    await waitFor('the step container', async () => (await leftoverContainers()).length > 0);
    await send(
      'check_run',
      checkRunPayload(repo, INSTALLATION, gh.url, {
        action: 'requested_action',
        identifier: 'cancel',
        checkRunId: running.id,
        name: running.name,
        headSha: head,
        externalId: running.external_id!,
        user: 'alice',
      }),
    );
    const done = await completed(head, 'trainyard/slow');
    expect(done.conclusion).toBe('cancelled');
    await waitFor('containers removed', async () => (await leftoverContainers()).length === 0, 30_000);
  });

  it('cancels the running `/train` run of a pull request when a newer `/train` of it starts; the older check says "superseded by <sha>"', async () => {
    const first = gh.commit(files('pr-16'));
    gh.pulls.set(16, { headSha: first, headRepoId: repo.id });
    await comment(16, 'alice', '/train slow');
    await waitFor('first run going', () =>
      gh
        .checkRunsFor(first, 'trainyard/slow')
        .find((c) => c.status === 'in_progress' && /1 running/.test(c.output.title ?? '')),
    );
    // A push to the pull request, then `/train` again: the first run is of an older commit.
    const second = gh.commit(files('pr-16b'));
    gh.pulls.set(16, { headSha: second, headRepoId: repo.id });
    await comment(16, 'alice', '/train slow');
    const old = await completed(first, 'trainyard/slow');
    expect(old.conclusion).toBe('cancelled');
    expect(old.output.title).toMatch(new RegExp(`^Superseded by ${second.slice(0, 12)}: `));
    expect(old.output.summary).toContain(`of commit \`${second}\` is newer in this run's concurrency group`);
    const now = await waitFor('second run going', () =>
      gh
        .checkRunsFor(second, 'trainyard/slow')
        .find((c) => c.status === 'in_progress' && /1 running/.test(c.output.title ?? '')),
    );
    // Only the newer run's container is left (once it has been created); Cancel it to end the test clean.
    await waitFor("the newer run's container alone", async () => (await leftoverContainers()).length === 1);
    await send(
      'check_run',
      checkRunPayload(repo, INSTALLATION, gh.url, {
        action: 'requested_action',
        identifier: 'cancel',
        checkRunId: now.id,
        name: now.name,
        headSha: second,
        externalId: now.external_id!,
        user: 'alice',
      }),
    );
    const cancelled = await completed(second, 'trainyard/slow');
    expect([cancelled.conclusion, cancelled.output.title]).toEqual([
      'cancelled',
      expect.stringMatching(/^Cancelled: /),
    ]);
    await waitFor('containers removed', async () => (await leftoverContainers()).length === 0, 30_000);
    expect(gh.violations).toEqual([]);
  });

  it("re-runs a check from GitHub's Re-run, with the same parameters, as a new check run", async () => {
    const head = gh.commit(files('pr-11'));
    gh.pulls.set(11, { headSha: head, headRepoId: repo.id });
    await comment(11, 'alice', '/train tiny n=7');
    const first = await completed(head, 'trainyard/tiny');
    await send(
      'check_run',
      checkRunPayload(repo, INSTALLATION, gh.url, {
        action: 'rerequested',
        checkRunId: first.id,
        name: first.name,
        headSha: head,
        externalId: first.external_id!,
        user: 'alice',
      }),
      randomUUID(),
    );
    const second = await waitFor('second check', () =>
      gh.checkRunsFor(head, 'trainyard/tiny').find((c) => c.id !== first.id && c.status === 'completed'),
    );
    expect(second.conclusion).toBe('success');
    expect(second.external_id).toMatch(/^rerun:/);
    expect(second.output.summary).toMatch(/\| `n` \| `7` \|/);
    expect(gh.violations).toEqual([]);
  });

  it('re-runs every Trainyard check of the suite from "Re-run all checks", once for a redelivery, also after the re-runs', async () => {
    const head = gh.commit(files('pr-14', { '.trainyard/quick.yaml': quick }));
    gh.pulls.set(14, { headSha: head, headRepoId: repo.id });
    await comment(14, 'alice', '/train tiny n=5');
    await comment(14, 'alice', '/train quick');
    const firsts = [await completed(head, 'trainyard/tiny'), await completed(head, 'trainyard/quick')];
    const suite = gh.suiteOf(head);
    // A reader cannot re-run: nothing starts.
    await send(
      'check_suite',
      checkSuitePayload(repo, INSTALLATION, gh.url, { suiteId: suite, headSha: head, user: 'eve' }),
    );
    const delivery = randomUUID();
    const payload = checkSuitePayload(repo, INSTALLATION, gh.url, { suiteId: suite, headSha: head, user: 'alice' });
    expect((await send('check_suite', payload, delivery)).status).toBe(200);
    expect((await send('check_suite', payload, delivery)).status).toBe(200);
    const reruns = await waitFor('two re-run checks completed', () => {
      const fresh = gh.checkRunsFor(head).filter((c) => !firsts.some((f) => f.id === c.id));
      return fresh.length === 2 && fresh.every((c) => c.status === 'completed') && fresh;
    });
    expect(reruns.map((c) => c.name).sort()).toEqual(['trainyard/quick', 'trainyard/tiny']);
    for (const c of reruns) {
      expect(c.conclusion).toBe('success');
      expect(c.external_id).toMatch(new RegExp(`^rerun:github:${repo.owner}/${repo.name}:\\d+:${delivery}$`));
    }
    expect(reruns.find((c) => c.name === 'trainyard/tiny')!.output.summary).toMatch(/\| `n` \| `5` \|/);
    // The same "Re-run all checks" delivered again once those runs are over: nothing new.
    for (const id of await workflowsFor(`rerun:github:${repo.owner}/${repo.name}:`)) {
      if (id.endsWith(delivery)) await client.workflow.getHandle(id).result();
    }
    await serve.idle();
    const seen = visible(head, 14);
    expect((await send('check_suite', payload, delivery)).status).toBe(200);
    await serve.idle();
    expect(visible(head, 14)).toBe(seen);
    expect(gh.checkRunsFor(head)).toHaveLength(4);
    const started = (await workflowsFor(`rerun:github:${repo.owner}/${repo.name}:`)).filter((id) =>
      firsts.some((f) => id.startsWith(`rerun:github:${repo.owner}/${repo.name}:${f.id}:`)),
    );
    expect(started).toHaveLength(2);
    expect(started.every((id) => id.endsWith(delivery))).toBe(true);
    expect(gh.violations).toEqual([]);
  });
  it('runs a tag push on the commit an annotated tag points at, only for pipelines whose tag filter selects the tag', async () => {
    const release = `name: release
on:
  push: { tags: ["v[0-9]+.*", "!v0.*"] }
steps:
  pack:
    image: ${BUSYBOX_IMAGE}
    run: echo packed
`;
    const tagPush = (commit: string, tag: string) => {
      const payload = pushPayload(repo, INSTALLATION, gh.url, {
        ref: `refs/tags/${tag}`,
        before: '0'.repeat(40),
        after: commit,
      });
      // An annotated tag: `after` is the tag object, `head_commit` the commit it points at.
      return Object.assign(payload, { after: 'b'.repeat(40), created: true, before: '0'.repeat(40) });
    };
    // The delivery workflow ends once its activity has handled the push (started runs or not).
    const handled = (deliveryId: string) =>
      client.workflow.getHandle(deliveryWorkflowId('github', deliveryId)).result();
    const head = gh.commit(files('tagged', { '.trainyard/release.yaml': release }));
    const r = await send('push', tagPush(head, 'v1.2.3'));
    expect(r.status).toBe(200);
    const check = await completed(head, 'trainyard/release');
    expect(check.conclusion).toBe('success');
    expect(check.output.summary).toContain('refs/tags/v1.2.3');
    await handled(r.deliveryId);
    // `tiny` filters branches only: a tag push never runs it.
    expect(gh.checkRunsFor(head, 'trainyard/tiny')).toEqual([]);
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${head}:`)).toEqual([
      `push:github:${repo.owner}/${repo.name}:${head}:release`,
    ]);
    // A tag the filter leaves out (`!v0.*`) starts nothing.
    const other = gh.commit(files('tagged-v0', { '.trainyard/release.yaml': release }));
    const r0 = await send('push', tagPush(other, 'v0.9.0'));
    await handled(r0.deliveryId);
    expect(gh.checkRunsFor(other)).toEqual([]);
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${other}`)).toEqual([]);
    expect(await workflowsFor(`push:github:${repo.owner}/${repo.name}:${'b'.repeat(40)}`)).toEqual([]);
    expect(gh.violations).toEqual([]);
  });
});
