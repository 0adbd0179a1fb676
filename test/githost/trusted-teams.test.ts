// Server-side trusted teams: the same read-only commenter, refused by a server without
// TRAINYARD_TRUSTED_TEAMS and allowed by one that trusts a team they actively belong to.
// Two `trainyard serve` processes share one fake GitHub, which answers team memberships
// (checked against GitHub's OpenAPI description like every other call).
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, ensureTestImages } from '../fixtures/images/images.js';
import { FakeGitHub } from './fake-github.js';
import { commentPayload, deliver } from './payloads.js';
import { startServe, type ServeProcess } from './serve-process.js';

const SECRET = 'teams-webhook-secret';
const repo = { id: 3003, owner: 'octo-org', name: 'research' };
const FORK_REPO_ID = 4004;
const INSTALLATION = 43;
const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const tiny = `name: tiny
on:
  comment: true
steps:
  hello:
    image: ${BUSYBOX_IMAGE}
    run: echo hello
`;

const gh = new FakeGitHub(78, publicKey, repo, INSTALLATION);
const queue = `gh-teams-${process.pid}`;
let plain: ServeProcess;
let trusting: ServeProcess;
let commentId = 2_000_000_000 + Math.floor(Math.random() * 1_000_000_000);

const comment = (server: ServeProcess, pr: number, user: string, body: string) =>
  deliver(
    server.url,
    SECRET,
    'issue_comment',
    commentPayload(repo, INSTALLATION, gh.url, { pr, commentId: ++commentId, user, body }),
  );

async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${trusting?.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const reply = (pr: number, text: string) =>
  waitFor(`reply "${text}" on #${pr}`, () => gh.comments.find((c) => c.issue === pr && c.body.includes(text)));

const scratches: string[] = [];
function env(name: string, extra: Record<string, string>): Record<string, string> {
  const scratch = mkdtempSync(join(tmpdir(), `trainyard-teams-${name}-`));
  scratches.push(scratch);
  return {
    GITHUB_APP_ID: '78',
    GITHUB_PRIVATE_KEY: privateKey,
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_API_URL: gh.url,
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_STORE: join(scratch, 'store'),
    TRAINYARD_WORK_ROOT: join(scratch, 'work'),
    TRAINYARD_CONTROL_QUEUE: `${queue}-${name}`,
    TRAINYARD_HOST_QUEUE: `${queue}-${name}-host`,
    TRAINYARD_STATUS_INTERVAL_MS: '300',
    ...extra,
  };
}

beforeAll(async () => {
  await ensureTestImages();
  await gh.start();
  gh.roles.set('bob', 'read');
  gh.roles.set('pat', 'read');
  gh.teams.set(
    'octo-org/ml-team',
    new Map([
      ['bob', 'active'],
      ['pat', 'pending'],
    ]),
  );
  gh.teams.set('other-org/ml-team', new Map([['pat', 'active']]));
  // The intake runs on each server's in-process control worker, which reads its policy.
  [plain, trusting] = await Promise.all([
    startServe(env('plain', {})),
    startServe(env('trusting', { TRAINYARD_TRUSTED_TEAMS: 'octo-org/ml-team, other-org/ml-team' })),
  ]);
});

afterAll(async () => {
  await Promise.all([plain?.stop(), trusting?.stop()]);
  await gh.stop();
  for (const d of scratches) rmSync(d, { recursive: true, force: true });
});

describe('trusted teams (TRAINYARD_TRUSTED_TEAMS)', () => {
  it('refuses a read-only commenter without the setting, and asks GitHub about no team', async () => {
    const head = gh.commit({ '.trainyard/tiny.yaml': tiny, 'a.txt': 'plain' });
    gh.pulls.set(1, { headSha: head, headRepoId: repo.id });
    await comment(plain, 1, 'bob', '/train tiny');
    expect((await reply(1, '@bob')).body).toContain('needs write access');
    await plain.idle();
    expect(gh.calls.filter((c) => c.path.includes('/teams/'))).toEqual([]);
    expect(gh.checkRunsFor(head)).toEqual([]);
  });

  it("runs `/train` for an active member of a trusted team of the repository's org, not for a pending one", async () => {
    const head = gh.commit({ '.trainyard/tiny.yaml': tiny, 'a.txt': 'trusting' });
    gh.pulls.set(2, { headSha: head, headRepoId: repo.id });
    await comment(trusting, 2, 'bob', '/train tiny');
    await reply(2, '@bob started `tiny`');
    const check = await waitFor('completed check', () =>
      gh.checkRunsFor(head, 'trainyard/tiny').find((c) => c.status === 'completed'),
    );
    expect(check.conclusion).toBe('success');
    // pat is only invited to this org's team; membership in another org's team counts for nothing here.
    await comment(trusting, 2, 'pat', '/train tiny');
    expect((await reply(2, '@pat')).body).toContain('needs write access');
    await trusting.idle();
    expect(gh.checkRunsFor(head, 'trainyard/tiny')).toHaveLength(1);
    expect(
      gh.calls.some(
        (c) =>
          c.operation === 'teams/get-membership-for-user-in-org' &&
          c.path === '/orgs/octo-org/teams/ml-team/memberships/bob',
      ),
    ).toBe(true);
    expect(gh.calls.some((c) => c.path.startsWith('/orgs/other-org/'))).toBe(false);
    expect(gh.violations).toEqual([]);
  });

  it("lets a trusted team member approve a fork's commit with `/ok-to-train`", async () => {
    const head = gh.commit({ '.trainyard/tiny.yaml': tiny, 'a.txt': 'fork' });
    gh.pulls.set(3, { headSha: head, headRepoId: FORK_REPO_ID });
    await comment(plain, 3, 'bob', '/ok-to-train');
    await reply(3, 'only maintainers');
    await comment(trusting, 3, 'bob', '/ok-to-train');
    await reply(3, '@bob approved');
    await comment(trusting, 3, 'bob', '/train tiny');
    const check = await waitFor('completed fork check', () =>
      gh.checkRunsFor(head, 'trainyard/tiny').find((c) => c.status === 'completed'),
    );
    expect(check.conclusion).toBe('success');
    expect(gh.violations).toEqual([]);
  });
});
