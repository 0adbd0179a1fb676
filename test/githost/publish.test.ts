// The publishStatus activity against the fake hosts: a 200-step run's live updates stay
// within the write budget, the final report is cut to GitHub's summary limit with a link to
// the whole one, GitLab statuses keep to 255 characters and survive a 409.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubClients } from '../../activities/githost/github-client.js';
import { createGitLab } from '../../activities/githost/gitlab-client.js';
import { RunLinks } from '../../activities/githost/links.js';
import { createPublishStatus } from '../../activities/githost/publish.js';
import { WriteBudget } from '../../activities/githost/ratelimit.js';
import { createStore } from '../../activities/store/factory.js';
import type { RunStatus, StepStatus } from '../../model/types.js';
import { FakeGitHub } from './fake-github.js';
import { FakeGitLab } from './fake-gitlab.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const repo = { id: 1001, owner: 'octo-org', name: 'models' };
const gh = new FakeGitHub(77, publicKey, repo, 42);
const gl = new FakeGitLab('tok', 15);
const log = pino({ level: 'silent' });
const storeDir = mkdtempSync(join(tmpdir(), 'trainyard-publish-'));
const store = createStore(storeDir);
const links = new RunLinks('http://trainyard.test', 'k');

function status(steps: StepStatus[], state: RunStatus['state'] = 'running'): RunStatus {
  return { runId: 'r-1', pipeline: 'big', state, startedAt: new Date().toISOString(), steps };
}
const manySteps = (running: number): StepStatus[] =>
  Array.from({ length: 200 }, (_, i) => ({
    name: `step-${String(i).padStart(3, '0')}`,
    state: i < running ? 'succeeded' : i === running ? 'running' : 'pending',
  }));

beforeAll(async () => {
  await Promise.all([gh.start(), gl.start()]);
});
afterAll(async () => {
  await Promise.all([gh.stop(), gl.stop()]);
  rmSync(storeDir, { recursive: true, force: true });
});

describe('publishStatus on GitHub', () => {
  it('keeps a 200-step run inside the write budget and cuts an oversized report with a link', async () => {
    const budget = new WriteBudget([{ windowMs: 60_000, max: 10 }], 0.6);
    const publish = createPublishStatus({
      store,
      links,
      log,
      github: new GitHubClients({ appId: 77, privateKey, apiUrl: gh.url }, log),
      budget,
    });
    const sha = gh.commit({ a: 'b' });
    const target = { kind: 'github', installationId: 42, owner: repo.owner, repo: repo.name, headSha: sha } as const;
    for (let i = 0; i < 30; i++)
      await publish({ target, runId: 'r-1', workflowId: `wf-${sha}`, status: status(manySteps(i)) });
    const report = `# big\n\n${'| row | with text é |\n'.repeat(8000)}`;
    await publish({
      target,
      runId: 'r-1',
      workflowId: `wf-${sha}`,
      status: status(manySteps(200), 'succeeded'),
      final: { conclusion: 'success', reportMarkdown: report, lineageKey: 'l' },
    });
    const writes = gh.calls.filter((c) => c.method !== 'GET' && c.path.includes('/check-runs'));
    // One create, at most 60% of 10 optional updates in the window, one completion.
    expect(writes.length).toBeLessThanOrEqual(1 + 6 + 1);
    expect(writes.length).toBeGreaterThanOrEqual(3);
    const [check] = gh.checkRunsFor(sha);
    expect(check!.status).toBe('completed');
    expect(Buffer.byteLength(check!.output.summary!)).toBeLessThanOrEqual(65_535);
    expect(check!.output.summary).toContain(`the whole report: http://trainyard.test/runs/wf-${sha}`);
    expect(gh.violations).toEqual([]);
  }, 60_000);
});

describe('publishStatus on GitLab', () => {
  it('posts state changes only, within 255 characters, retrying a 409', async () => {
    const publish = createPublishStatus({
      store,
      links: new RunLinks(`http://trainyard.test/${'x'.repeat(300)}`, 'k'),
      log,
      gitlab: createGitLab({ url: gl.url, token: 'tok' }),
    });
    const sha = gl.commit({ a: 'b' });
    const target = { kind: 'gitlab', projectId: 15, sha } as const;
    const long = (n: number) =>
      Array.from(
        { length: 3 },
        (_, i) =>
          ({
            name: `a-very-long-step-name-${'y'.repeat(80)}-${i}`,
            state: i <= n ? 'running' : 'pending',
          }) as StepStatus,
      );
    await publish({ target, runId: 'r-2', workflowId: `gl-${sha}`, status: status(long(-1)) });
    for (let i = 0; i < 5; i++)
      await publish({ target, runId: 'r-2', workflowId: `gl-${sha}`, status: status(long(i)) });
    gl.conflictsToSend = 2;
    await publish({
      target,
      runId: 'r-2',
      workflowId: `gl-${sha}`,
      status: status(long(3), 'failed'),
      final: { conclusion: 'failure', reportMarkdown: 'r', lineageKey: 'l', failedStep: { name: 'x'.repeat(300) } },
    });
    expect(gl.statuses.filter((s) => s.sha === sha).map((s) => s.state)).toEqual(['pending', 'running', 'failed']);
    for (const s of gl.statuses) expect([...(s.description ?? '')].length).toBeLessThanOrEqual(255);
    // The run link is over 255 characters here: GitLab would refuse it, so it is left out.
    expect(gl.statuses.every((s) => s.target_url === undefined)).toBe(true);
    expect(gl.calls.filter((c) => c.status === 409)).toHaveLength(2);
    expect(gl.violations).toEqual([]);
  });
});
