// Real GitHub webhook payloads from @octokit/webhooks-examples, pointed at the test
// repository and installation, signed with the test secret and POSTed over HTTP.
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { FakeRepo } from './fake-github.js';

type Payload = Record<string, unknown> & { repository: Record<string, unknown>; installation?: { id: number } };
interface Definition {
  name: string;
  examples: Payload[];
}

const require = createRequire(import.meta.url);
const definitions = require('@octokit/webhooks-examples/api.github.com/index.json') as Definition[];

function example(event: string, pick: (p: Payload) => boolean): Payload {
  const found = definitions.find((d) => d.name === event)?.examples.find(pick);
  if (!found) throw new Error(`no ${event} example matches`);
  return structuredClone(found);
}

function pointAt(p: Payload, repo: FakeRepo, installationId: number, apiUrl: string): Payload {
  const full = `${repo.owner}/${repo.name}`;
  Object.assign(p.repository, {
    id: repo.id,
    name: repo.name,
    full_name: full,
    default_branch: 'main',
    owner: { ...(p.repository.owner as object), login: repo.owner, name: repo.owner },
    clone_url: `${apiUrl}/${full}.git`,
    html_url: `${apiUrl}/${full}`,
  });
  p.installation = { id: installationId };
  return p;
}

export interface PushSpec {
  ref?: string;
  before: string;
  after: string;
  changed?: { added?: string[]; modified?: string[]; removed?: string[] };
  deleted?: boolean;
}

export function pushPayload(repo: FakeRepo, installationId: number, apiUrl: string, s: PushSpec): Payload {
  const p = pointAt(
    example('push', (x) => x.ref === 'refs/heads/master' && x.installation !== undefined),
    repo,
    installationId,
    apiUrl,
  );
  const commits = p.commits as Record<string, unknown>[];
  const commit = {
    ...commits[0]!,
    id: s.after,
    added: s.changed?.added ?? [],
    modified: s.changed?.modified ?? [],
    removed: s.changed?.removed ?? [],
  };
  Object.assign(p, {
    ref: s.ref ?? 'refs/heads/main',
    before: s.before,
    after: s.deleted ? '0'.repeat(40) : s.after,
    created: false,
    deleted: s.deleted ?? false,
    forced: false,
    commits: s.deleted ? [] : [commit],
    head_commit: s.deleted ? null : commit,
  });
  return p;
}

export function commentPayload(
  repo: FakeRepo,
  installationId: number,
  apiUrl: string,
  s: { pr: number; commentId: number; user: string; body: string },
): Payload {
  const p = pointAt(
    example('issue_comment', (x) => x.action === 'created'),
    repo,
    installationId,
    apiUrl,
  );
  const issue = p.issue as Record<string, unknown>;
  const prUrl = `${apiUrl}/${repo.owner}/${repo.name}/pull/${s.pr}`;
  Object.assign(issue, {
    number: s.pr,
    html_url: prUrl,
    pull_request: { url: `${apiUrl}/repos/${repo.owner}/${repo.name}/pulls/${s.pr}`, html_url: prUrl },
  });
  const comment = p.comment as Record<string, unknown>;
  Object.assign(comment, {
    id: s.commentId,
    body: s.body,
    html_url: `${prUrl}#issuecomment-${s.commentId}`,
    user: { ...(comment.user as object), login: s.user, type: 'User' },
  });
  p.sender = { ...(p.sender as object), login: s.user, type: 'User' };
  return p;
}

export function checkRunPayload(
  repo: FakeRepo,
  installationId: number,
  apiUrl: string,
  s: {
    action: 'requested_action' | 'rerequested';
    identifier?: string;
    checkRunId: number;
    name: string;
    headSha: string;
    externalId: string;
    user: string;
  },
): Payload {
  const p = pointAt(
    example('check_run', (x) => x.action === s.action),
    repo,
    installationId,
    apiUrl,
  );
  Object.assign(p.check_run as object, {
    id: s.checkRunId,
    name: s.name,
    head_sha: s.headSha,
    external_id: s.externalId,
  });
  if (s.identifier) p.requested_action = { identifier: s.identifier };
  p.sender = { ...(p.sender as object), login: s.user, type: 'User' };
  return p;
}

export function checkSuitePayload(
  repo: FakeRepo,
  installationId: number,
  apiUrl: string,
  s: { suiteId: number; headSha: string; user: string },
): Payload {
  const p = pointAt(
    example('check_suite', (x) => x.action === 'rerequested'),
    repo,
    installationId,
    apiUrl,
  );
  Object.assign(p.check_suite as object, { id: s.suiteId, head_sha: s.headSha, after: s.headSha });
  p.sender = { ...(p.sender as object), login: s.user, type: 'User' };
  return p;
}

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export async function deliver(
  serverUrl: string,
  secret: string | null,
  event: string,
  payload: unknown,
  deliveryId: string = randomUUID(),
): Promise<{ status: number; ms: number; deliveryId: string }> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': deliveryId,
    'user-agent': 'GitHub-Hookshot/test',
  };
  if (secret !== null) headers['x-hub-signature-256'] = sign(secret, body);
  const t = performance.now();
  const res = await fetch(`${serverUrl}/api/github/webhooks`, { method: 'POST', headers, body });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t, deliveryId };
}
