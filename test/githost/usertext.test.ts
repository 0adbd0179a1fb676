// Bidirectional-control characters (U+202A–U+202E, U+2066–U+2069 and the other Unicode
// Bidi_Control characters) from users are neutralised on every surface a person reads:
// PR comments and MR notes (over HTTP to the fake hosts), check runs, commit statuses, run
// pages, the live step tables, the CLI table and log lines.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitHubClients } from '../../activities/githost/github-client.js';
import { createGitLab } from '../../activities/githost/gitlab-client.js';
import { RunLinks } from '../../activities/githost/links.js';
import { createPublishStatus } from '../../activities/githost/publish.js';
import { GitHostRecords } from '../../activities/githost/records.js';
import { stepTable } from '../../activities/githost/text.js';
import { LocalStore } from '../../activities/store/local.js';
import { neutraliseBidi, pinoTextHooks, terminalText } from '../../activities/usertext.js';
import { GitHubConversation, GitHubRepoPort } from '../../activities/githost/github-intake.js';
import { GitLabConversation, GitLabRepoPort } from '../../activities/githost/gitlab-intake.js';
import { handleComment } from '../../activities/intake/comment.js';
import type { Intake } from '../../activities/intake/context.js';
import { parseCommentCommand } from '../../app/intake/command.js';
import { loadPolicy } from '../../app/intake/config.js';
import { intakePolicy } from '../../app/intake/policy.js';
import { runPageHandler } from '../../app/intake/runpage.js';
import { LiveTable, renderTable } from '../../app/local/table.js';
import type { RunStatus } from '../../model/types.js';
import { FakeGitHub } from './fake-github.js';
import { FakeGitLab } from './fake-gitlab.js';

/** Every Bidi_Control character of Unicode's PropList.txt. */
const ALL_BIDI = [
  '\u061C',
  '\u200E',
  '\u200F',
  '\u202A',
  '\u202B',
  '\u202C',
  '\u202D',
  '\u202E',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
];
const BIDI = /\p{Bidi_Control}/u;
/** Displays as "okexe.png" in a bidi-aware view; says something else. */
const EVIL = 'ok\u202Egnp.exe\u202C \u2067isolated\u2069';

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const repo = { id: 1001, owner: 'octo-org', name: 'models' };
const gh = new FakeGitHub(77, publicKey, repo, 42);
const gl = new FakeGitLab('tok', 15);
const log = pino({ level: 'silent' });
let scratch: string;
let store: LocalStore;

beforeAll(async () => {
  scratch = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'usertext-'));
  store = new LocalStore(join(scratch, 'store'));
  await Promise.all([gh.start(), gl.start()]);
});
afterAll(async () => {
  await Promise.all([gh.stop(), gl.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

function status(state: RunStatus['state'] = 'running'): RunStatus {
  return {
    runId: 'r-bidi',
    pipeline: 'tiny',
    state,
    startedAt: new Date().toISOString(),
    steps: [
      {
        name: 'prep',
        state: 'succeeded',
        cache: { decision: 'miss', key: 'sha256:x', reason: `ran: parameter note changed (${EVIL})` },
      },
      { name: 'train', state: 'failed', message: `exited with code 1: ${EVIL}` },
    ],
  };
}

describe('the helper', () => {
  it('makes every bidirectional control visible and leaves all other text alone', () => {
    expect(neutraliseBidi(ALL_BIDI.join('|'))).toBe(
      '[U+061C]|[U+200E]|[U+200F]|[U+202A]|[U+202B]|[U+202C]|[U+202D]|[U+202E]|[U+2066]|[U+2067]|[U+2068]|[U+2069]',
    );
    const plain = 'שלום مرحبا 👩‍💻 e\u0301 a\u200Bb';
    expect(neutraliseBidi(plain)).toBe(plain);
    expect(terminalText('a\x1b[2Jb\u202Ec\nd')).toBe('a [2Jb[U+202E]c d');
  });

  it('escapes them in log lines, which stay the same JSON', () => {
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const logger = pino({ hooks: pinoTextHooks }, sink);
    logger.info({ comment: EVIL }, `from ${EVIL}`);
    expect(out).not.toMatch(BIDI);
    expect(out).toContain('\\u202e');
    const line = JSON.parse(out) as { comment: string; msg: string };
    expect([line.comment, line.msg]).toEqual([EVIL, `from ${EVIL}`]);
  });
});

describe('tables', () => {
  it('the live step table of check runs and run pages', () => {
    const table = stepTable(status());
    expect(table).not.toMatch(BIDI);
    // Shown, not obeyed: the brackets are Markdown-escaped and render as `[U+202E]gnp.exe`.
    expect(table).toContain('\\[U+202E\\]gnp.exe');
  });

  it('the CLI step table, on a terminal and in a CI log', () => {
    const s = status();
    s.steps[1]!.name = `train\u202E\x1b[31m`;
    const lines = renderTable(s).join('\n');
    expect(lines).not.toMatch(BIDI);
    expect(lines).not.toContain('\x1b');
    let out = '';
    const stream = Object.assign(
      new Writable({
        write(c: Buffer, _e, cb) {
          out += c.toString();
          cb();
        },
      }),
      { isTTY: false },
    ) as unknown as NodeJS.WriteStream;
    new LiveTable(stream).update(s);
    expect(out).not.toMatch(BIDI);
    expect(out).toContain('train[U+202E]');
  });
});

describe('git-host surfaces, over HTTP to the fake hosts', () => {
  it('check runs: title, summary, log text and annotations', async () => {
    const records = new GitHostRecords(store);
    const publish = createPublishStatus({
      store,
      links: new RunLinks('http://trainyard.test', 'k'),
      log,
      github: new GitHubClients({ appId: 77, privateKey, apiUrl: gh.url }, log),
    });
    const sha = gh.commit({ a: 'b' });
    const workflowId = `wf-bidi-${sha}`;
    await records.putRun({
      workflowId,
      runId: 'r-bidi',
      host: 'github',
      repoKey: 'octo-org/models',
      repoPath: 'octo-org/models',
      sha,
      pipeline: 'tiny',
      pipelineFile: '.trainyard/tiny.yaml',
      stepLines: { train: 3 },
      params: {},
      given: {},
      trigger: { kind: 'cli', user: 'alice' },
      createdAt: new Date().toISOString(),
    });
    const logBlob = await store.putBytes(`O loading\nE ${EVIL}\n`);
    const target = { kind: 'github', installationId: 42, owner: repo.owner, repo: repo.name, headSha: sha } as const;
    await publish({ target, runId: 'r-bidi', workflowId, status: status() });
    await publish({
      target,
      runId: 'r-bidi',
      workflowId,
      status: status('failed'),
      final: {
        conclusion: 'failure',
        reportMarkdown: `## report\n\n${EVIL}`,
        lineageKey: 'l',
        failedStep: { name: 'train', logDigest: logBlob.digest },
      },
    });
    const [check] = gh.checkRunsFor(sha);
    expect(check!.status).toBe('completed');
    const shown = JSON.stringify({ output: check!.output, annotations: check!.annotations });
    expect(shown).toContain('[U+202E]gnp.exe');
    expect(shown).not.toMatch(BIDI);
    expect(check!.output.text).toContain('[U+2067]isolated[U+2069]');
    expect(gh.violations).toEqual([]);
  });

  it('GitLab commit statuses and merge-request report notes', async () => {
    const publish = createPublishStatus({
      store,
      links: new RunLinks('http://trainyard.test', 'k'),
      log,
      gitlab: createGitLab({ url: gl.url, token: 'tok' }),
    });
    const sha = gl.commit({ a: 'b' });
    const target = { kind: 'gitlab', projectId: 15, sha, mergeRequestIid: 5 } as const;
    await publish({
      target,
      runId: 'r-bidi',
      workflowId: `gl-bidi-${sha}`,
      status: status('failed'),
      final: {
        conclusion: 'failure',
        reportMarkdown: `## report\n\n${EVIL}`,
        lineageKey: 'l',
        failedStep: { name: `train${EVIL}` },
      },
    });
    const st = gl.statuses.filter((s) => s.sha === sha);
    expect(st.map((s) => s.description).join()).toContain('[U+202E]');
    expect(JSON.stringify(st)).not.toMatch(BIDI);
    const notes = [...gl.notes.values()].filter((n) => n.mr === 5);
    expect(notes.map((n) => n.body).join()).toContain('[U+202E]gnp.exe');
    expect(JSON.stringify(notes)).not.toMatch(BIDI);
  });

  const intake = (records: GitHostRecords): Intake => ({
    records,
    policy: intakePolicy(loadPolicy({})),
    log,
    starter: {
      exists: async () => false,
      start: async () => ({ alreadyStarted: false }),
      cancel: async () => undefined,
      status: async () => undefined,
    },
    runOptions: () => {
      throw new Error('no run may start in this test');
    },
    runUrl: () => undefined,
  });

  it('replies to a /train comment on GitHub', async () => {
    gh.roles.set('alice', 'write');
    const records = new GitHostRecords(store);
    const api = new GitHubClients({ appId: 77, privateKey, apiUrl: gh.url }, log).installation(42);
    const convo = new GitHubConversation(
      api,
      { owner: repo.owner, repo: repo.name },
      7,
      555,
      `${gh.url}/pr/7`,
      records,
    );
    const port = new GitHubRepoPort(api, {
      installationId: 42,
      owner: repo.owner,
      repo: repo.name,
      cloneUrl: `${gh.url}/x.git`,
    });
    const outcome = await handleComment(port, convo, intake(records), {
      commentId: 555,
      author: 'alice',
      command: parseCommentCommand(`/train tiny ${EVIL.replace(/ /g, '')}`)!,
    });
    expect(outcome.kind).toBe('invalid');
    const reply = gh.comments.filter((c) => c.issue === 7).at(-1)!.body;
    expect(reply).toContain('[U+202E]gnp.exe');
    expect(reply).not.toMatch(BIDI);
  });

  it('replies to a /train note on GitLab', async () => {
    gl.members.set(31, 30);
    const records = new GitHostRecords(store);
    const api = createGitLab({ url: gl.url, token: 'tok' });
    const project = {
      projectId: 15,
      pathWithNamespace: 'grp/models',
      httpUrl: `${gl.url}/grp/models.git`,
      webUrl: `${gl.url}/grp/models`,
    };
    const convo = new GitLabConversation(api, records, project, 9, 777, 31, () => undefined);
    const outcome = await handleComment(new GitLabRepoPort(api, project, records), convo, intake(records), {
      commentId: 777,
      author: 'user31',
      command: parseCommentCommand(`/train tiny ${EVIL.replace(/ /g, '')}`)!,
    });
    expect(outcome.kind).toBe('invalid');
    const reply = [...gl.notes.values()].filter((n) => n.mr === 9).at(-1)!.body;
    expect(reply).toContain('[U+202E]gnp.exe');
    expect(reply).not.toMatch(BIDI);
  });

  it('run pages (a verdict and a stored report)', async () => {
    const records = new GitHostRecords(store);
    const links = new RunLinks('http://trainyard.test', 'k');
    await records.putVerdict('verdict:bidi', { title: `Refused ${EVIL}`, summary: `- ${EVIL}` });
    const server = createServer((req, res) => void runPageHandler(intake(records), links)(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runs/${encodeURIComponent('verdict:bidi')}?sig=${links.sign('verdict:bidi')}`;
      const page = await (await fetch(url)).text();
      expect(page).toContain('Refused ok[U+202E]gnp.exe');
      expect(page).not.toMatch(BIDI);
      // A browser gets the same as HTML.
      const html = await (await fetch(url, { headers: { accept: 'text/html' } })).text();
      expect(html).toContain('<h1>Refused ok[U+202E]gnp.exe');
      expect(html).not.toMatch(BIDI);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
