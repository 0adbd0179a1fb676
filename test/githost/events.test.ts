// What a replica records for a verified delivery: a compact, bounded event read from the
// payload (GitHub's own examples), never the payload itself; and the delivery id that
// makes a redelivery the same delivery.
import { describe, expect, it } from 'vitest';
import { MAX_DELIVERY_CHARS } from '../../activities/intake/events.js';
import { deliveryIdFrom, deliveryWorkflowId } from '../../activities/intake/ids.js';
import { githubIntakeEvent, PayloadError } from '../../app/github/events.js';
import { gitlabIntakeEvent } from '../../app/gitlab/hooks.js';
import { commentPayload, pushPayload } from './payloads.js';

const repo = { id: 1, owner: 'octo-org', name: 'models' };
const sha = (c: string) => c.repeat(40);

describe('GitHub deliveries', () => {
  it('keeps what a push needs, and the changed paths only while they are few', () => {
    const p = pushPayload(repo, 9, 'http://gh.test', {
      before: sha('a'),
      after: sha('b'),
      changed: { modified: ['src/x.py'], added: ['README.md'] },
    });
    expect(githubIntakeEvent('push', p)).toEqual({
      kind: 'github-push',
      ref: 'refs/heads/main',
      before: sha('a'),
      after: sha('b'),
      sha: sha('b'),
      created: false,
      actor: expect.any(String),
      repo: {
        installationId: 9,
        owner: 'octo-org',
        repo: 'models',
        cloneUrl: 'http://gh.test/octo-org/models.git',
        defaultBranch: 'main',
      },
      paths: ['README.md', 'src/x.py'],
    });
    // A push touching 50,000 files (the payload nears GitHub's 25 MB): the compare API decides instead.
    const huge = pushPayload(repo, 9, 'http://gh.test', {
      before: sha('a'),
      after: sha('c'),
      changed: { modified: Array.from({ length: 50_000 }, (_, i) => `data/part-${i}.csv`) },
    });
    expect(JSON.stringify(huge).length).toBeGreaterThan(1_000_000);
    const ev = githubIntakeEvent('push', huge);
    expect(ev).toMatchObject({ kind: 'github-push', paths: null });
    expect(JSON.stringify(ev).length).toBeLessThan(2_000);
  });

  it('carries a tag push with the commit the tag points at, not the tag object', () => {
    const p = pushPayload(repo, 9, 'http://gh.test', { before: sha('0'), after: sha('d'), ref: 'refs/tags/v1' });
    expect(githubIntakeEvent('push', { ...p, head_commit: { id: sha('e') } })).toMatchObject({
      kind: 'github-push',
      ref: 'refs/tags/v1',
      after: sha('d'),
      sha: sha('e'),
    });
  });

  it('records nothing for a branch deletion, a tag without its commit, a comment that is no command, or a bot', () => {
    expect(
      githubIntakeEvent(
        'push',
        pushPayload(repo, 9, 'http://gh.test', { before: sha('a'), after: sha('b'), deleted: true }),
      ),
    ).toBeNull();
    expect(
      githubIntakeEvent('push', {
        ...pushPayload(repo, 9, 'http://gh.test', { before: sha('a'), after: sha('b'), ref: 'refs/tags/v1' }),
        head_commit: null,
      }),
    ).toBeNull();
    expect(
      githubIntakeEvent(
        'issue_comment',
        commentPayload(repo, 9, 'http://gh.test', { pr: 3, commentId: 5, user: 'alice', body: 'looks good' }),
      ),
    ).toBeNull();
    const bot = commentPayload(repo, 9, 'http://gh.test', { pr: 3, commentId: 5, user: 'ci[bot]', body: '/train' });
    (bot.comment as { user: { type: string } }).user.type = 'Bot';
    expect(githubIntakeEvent('issue_comment', bot)).toBeNull();
    expect(githubIntakeEvent('ping', { zen: 'hi' })).toBeNull();
  });

  it('carries the parsed command of a comment, not its body', () => {
    const body = `/train mnist lr=0.1 note="two words"\n\n${'long discussion '.repeat(4_000)}`;
    const ev = githubIntakeEvent(
      'issue_comment',
      commentPayload(repo, 9, 'http://gh.test', { pr: 3, commentId: 77, user: 'alice', body }),
    );
    expect(ev).toMatchObject({
      kind: 'github-comment',
      issue: 3,
      commentId: 77,
      author: 'alice',
      command: { kind: 'train', pipeline: 'mnist', params: { lr: '0.1', note: 'two words' } },
    });
    expect(JSON.stringify(ev).length).toBeLessThan(MAX_DELIVERY_CHARS / 100);
  });

  it('refuses a payload whose fields have the wrong types', () => {
    const p = pushPayload(repo, 9, 'http://gh.test', { before: sha('a'), after: sha('b') });
    expect(() => githubIntakeEvent('push', { ...p, after: 'HEAD; rm -rf /' })).toThrow(PayloadError);
    expect(() => githubIntakeEvent('push', { ...p, repository: 'x' })).toThrow(PayloadError);
    expect(() => githubIntakeEvent('push', [])).toThrow(PayloadError);
  });

  it('ignores an event no handler is registered for, names of Object.prototype included', () => {
    const p = pushPayload(repo, 9, 'http://gh.test', { before: sha('a'), after: sha('b') });
    for (const name of ['pull_request', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(githubIntakeEvent(name, p)).toBeNull();
      expect(gitlabIntakeEvent(name, { ...p, object_kind: 'push' })).toBeNull();
    }
  });
});

describe('GitLab deliveries', () => {
  it('keeps a push and a /train note, and ignores other notes', () => {
    const project = {
      id: 15,
      path_with_namespace: 'g/p',
      git_http_url: 'http://gl.test/g/p.git',
      web_url: 'http://gl.test/g/p',
    };
    const push = {
      object_kind: 'push',
      ref: 'refs/heads/main',
      before: sha('a'),
      after: sha('b'),
      project_id: 15,
      project,
      user_username: 'dev',
      commits: [{ modified: ['src/a'] }],
      total_commits_count: 1,
    };
    expect(gitlabIntakeEvent('Push Hook', push)).toMatchObject({
      kind: 'gitlab-push',
      paths: ['src/a'],
      actor: 'dev',
      project: { projectId: 15 },
    });
    expect(gitlabIntakeEvent('Push Hook', { ...push, total_commits_count: 40 })).toMatchObject({ paths: null });
    const tag = { ...push, object_kind: 'tag_push', ref: 'refs/tags/v1', after: sha('d'), checkout_sha: sha('e') };
    expect(gitlabIntakeEvent('Tag Push Hook', tag)).toMatchObject({
      kind: 'gitlab-push',
      ref: 'refs/tags/v1',
      after: sha('d'),
      sha: sha('e'),
    });
    expect(gitlabIntakeEvent('Tag Push Hook', { ...tag, checkout_sha: null })).toBeNull();
    const note = {
      object_kind: 'note',
      user: { id: 8, username: 'dev' },
      project_id: 15,
      project,
      merge_request: { iid: 2 },
      object_attributes: { id: 99, note: '/train', noteable_type: 'MergeRequest' },
    };
    expect(gitlabIntakeEvent('Note Hook', note)).toMatchObject({
      kind: 'gitlab-note',
      mrIid: 2,
      noteId: 99,
      userId: 8,
      command: { kind: 'train' },
    });
    expect(
      gitlabIntakeEvent('Note Hook', { ...note, object_attributes: { ...note.object_attributes, note: 'thanks' } }),
    ).toBeNull();
    expect(
      gitlabIntakeEvent('Note Hook', {
        ...note,
        object_attributes: { ...note.object_attributes, noteable_type: 'Issue' },
      }),
    ).toBeNull();
  });
});

describe('delivery ids', () => {
  it("uses the host's id, a digest of an odd one, and the body digest when there is none", () => {
    expect(deliveryIdFrom('72d3162e-cc78-11e3-81ab-4c9367dc0958', 'x')).toBe('72d3162e-cc78-11e3-81ab-4c9367dc0958');
    expect(deliveryIdFrom('a b/c', 'x')).toMatch(/^h-[0-9a-f]{40}$/);
    expect(deliveryIdFrom('a b/c', 'x')).toBe(deliveryIdFrom('a b/c', 'y'));
    expect(deliveryIdFrom(undefined, '{"a":1}')).toBe(deliveryIdFrom(undefined, Buffer.from('{"a":1}')));
    expect(deliveryIdFrom(undefined, '{"a":1}')).not.toBe(deliveryIdFrom(undefined, '{"a":2}'));
    expect(deliveryWorkflowId('github', 'abc')).toBe('delivery:github:abc');
  });
});
