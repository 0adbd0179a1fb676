// Metrics against the base on GitHub, end to end: `trainyard serve` as its own process,
// signed webhooks over HTTP, every API call checked against GitHub's OpenAPI description by
// the fake GitHub, runs through the real Temporal server and podman. A push to main records
// the base; `/train` on a pull request shows the table in its check run and in one PR
// comment, which a later `/train` edits instead of adding another.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffMarker } from '../../activities/lineage/compare.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { FakeGitHub } from './fake-github.js';
import { commentPayload, deliver, pushPayload } from './payloads.js';
import { startServe, type ServeProcess } from './serve-process.js';

const SECRET = 'metrics-diff-secret';
const repo = { id: 3003, owner: 'octo-org', name: 'metrics' };
const INSTALLATION = 43;
const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});

// The loss depends on the learning rate, so a /train with another lr moves it.
const pipelineFile = `name: fit
on:
  push: { branches: [main] }
  comment: true
params:
  lr: { type: number, default: 0.5 }
steps:
  train:
    image: ${BUSYBOX_IMAGE}
    run: 'cat src/data.txt; echo "{\\"epoch\\": 1, \\"loss\\": $PARAM_LR}"; echo "{\\"epoch\\": 2, \\"loss\\": $PARAM_LR, \\"acc\\": 0.9}"'
`;

const gh = new FakeGitHub(78, publicKey, repo, INSTALLATION);
let serve: ServeProcess;
let scratch: string;
const queue = `md-e2e-${process.pid}`;

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 180_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n--- serve output ---\n${serve.output().slice(-6000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const completed = (sha: string, n = 1) =>
  waitFor(`${n} completed check(s) on ${sha.slice(0, 7)}`, () => {
    const done = gh.checkRunsFor(sha, 'trainyard/fit').filter((c) => c.status === 'completed');
    return done.length >= n && done;
  });
let commentId = 2_000_000 + Math.floor(Math.random() * 1_000_000_000);
const train = (pr: number, body: string) =>
  deliver(
    serve.url,
    SECRET,
    'issue_comment',
    commentPayload(repo, INSTALLATION, gh.url, { pr, commentId: ++commentId, user: 'alice', body }),
  );
const metricsComments = (pr: number) => gh.comments.filter((c) => c.issue === pr && c.body.includes(diffMarker('fit')));

beforeAll(async () => {
  await ensureTestImages();
  await gh.start();
  gh.roles.set('alice', 'write');
  scratch = mkdtempSync(join(tmpdir(), 'trainyard-md-e2e-'));
  serve = await startServe({
    GITHUB_APP_ID: '78',
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
  });
});

afterAll(async () => {
  await serve?.stop();
  await gh.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('metrics against the base on GitHub', () => {
  let mainSha: string;

  it(
    'a push run on main with no earlier run has no comparison; the next push is compared with it',
    { timeout: 300_000 },
    async () => {
      const first = gh.commit({ '.trainyard/fit.yaml': pipelineFile, 'src/data.txt': 'v1' });
      expect(
        (
          await deliver(
            serve.url,
            SECRET,
            'push',
            pushPayload(repo, INSTALLATION, gh.url, {
              before: '0'.repeat(40),
              after: first,
              changed: { modified: ['src/data.txt'] },
            }),
          )
        ).status,
      ).toBe(200);
      const [check1] = await completed(first);
      expect(check1!.conclusion).toBe('success');
      expect(check1!.output.summary).not.toContain('Metrics against the base');

      mainSha = gh.commit({ '.trainyard/fit.yaml': pipelineFile, 'src/data.txt': 'v2' });
      expect(
        (
          await deliver(
            serve.url,
            SECRET,
            'push',
            pushPayload(repo, INSTALLATION, gh.url, {
              before: first,
              after: mainSha,
              changed: { modified: ['src/data.txt'] },
            }),
          )
        ).status,
      ).toBe(200);
      const [check2] = await completed(mainSha);
      expect(check2!.conclusion).toBe('success');
      expect(check2!.output.summary).toContain('### Metrics against the base');
      expect(check2!.output.summary).toContain('Compared with the previous successful run on main');
      expect(check2!.output.summary).toMatch(/\| `train\.loss` \| 0\.5 \| 0\.5 \| 0 \|/);
      expect(gh.violations).toEqual([]);
    },
  );

  it(
    "/train on a PR: check run and one PR comment show params and metrics against the merge base's run; a later /train edits that comment",
    { timeout: 400_000 },
    async () => {
      const head = gh.commit({ '.trainyard/fit.yaml': pipelineFile, 'src/data.txt': 'v3' });
      gh.pulls.set(31, { headSha: head, headRepoId: repo.id, baseRef: 'main', baseSha: mainSha, headRef: 'tune-lr' });
      expect((await train(31, '/train fit lr=0.25')).status).toBe(200);
      const [check] = await completed(head);
      expect(check!.conclusion).toBe('success');
      const summary = check!.output.summary!;
      expect(summary).toContain(`Compared with the run at the merge base ${mainSha.slice(0, 12)} on main`);
      expect(summary).toContain('- `lr`: `0.5` → `0.25`');
      expect(summary).toMatch(/\| `train\.loss` \| 0\.25 \| 0\.5 \| -0\.25 \(-50\.0%\) \|/);
      expect(summary).toMatch(/\| `train\.acc` \| 0\.9 \| 0\.9 \| 0 \|/);
      const comments = await waitFor(
        'the metrics comment',
        () => metricsComments(31).length === 1 && metricsComments(31),
      );
      expect(comments[0]!.body).toMatch(/\| `train\.loss` \| 0\.25 \| 0\.5 \| -0\.25 \(-50\.0%\) \|/);
      expect(comments[0]!.body).toContain('Pipeline `fit`');

      expect((await train(31, '/train fit lr=1')).status).toBe(200);
      await completed(head, 2);
      const edited = await waitFor(
        'the metrics comment edited',
        () => metricsComments(31)[0]?.edits === 1 && metricsComments(31),
      );
      expect(edited).toHaveLength(1);
      expect(edited[0]!.body).toMatch(/\| `train\.loss` \| 1 \| 0\.5 \| \+0\.5 \(\+100\.0%\) \|/);
      expect(edited[0]!.body).toContain('- `lr`: `0.5` → `1`');
      expect(gh.violations).toEqual([]);
    },
  );
});
