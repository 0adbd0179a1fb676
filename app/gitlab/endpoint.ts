// The GitLab webhook endpoint. GitLab does not sign payloads; it sends the secret token in
// X-Gitlab-Token, compared here in constant time. The answer goes out before any API call;
// a redelivered hook (same Idempotency-Key) is skipped once its first delivery was handled.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobQueue } from '../intake/jobs.js';
import { readBody, sendJson } from '../intake/http.js';
import { isTrainNote, onNoteHook, onPushHook, type GitLabHookDeps, type NoteHook, type PushHook } from './hooks.js';

export interface GitLabEndpointDeps extends GitLabHookDeps {
  secret: string;
  jobs: JobQueue;
  ackOnly: boolean;
}

/** Constant time whatever the lengths: compares digests, never the raw strings. */
export function tokenMatches(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function gitlabWebhookHandler(deps: GitLabEndpointDeps) {
  const { intake } = deps;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' });
    if (!tokenMatches(header(req, 'x-gitlab-token'), deps.secret)) {
      req.resume();
      return sendJson(res, 401, { error: 'missing or wrong X-Gitlab-Token' });
    }
    const body = await readBody(req).catch(() => undefined);
    let payload: unknown;
    try {
      payload = body === undefined ? undefined : JSON.parse(body.toString('utf8'));
    } catch {
      payload = undefined;
    }
    if (typeof payload !== 'object' || payload === null) return sendJson(res, 400, { error: 'body must be a JSON object' });
    const event = header(req, 'x-gitlab-event');
    const deliveryId = header(req, 'idempotency-key') ?? header(req, 'x-gitlab-event-uuid') ?? '';
    const kind = (payload as { object_kind?: string }).object_kind;
    let job: (() => Promise<unknown>) | undefined;
    if ((event === 'Push Hook' && kind === 'push') || (event === 'Tag Push Hook' && kind === 'tag_push')) {
      job = () => onPushHook(deps, payload as PushHook, deliveryId);
    } else if (event === 'Note Hook' && kind === 'note' && isTrainNote(payload as NoteHook)) {
      job = () => onNoteHook(deps, payload as NoteHook);
    }
    if (!job || deps.ackOnly) return sendJson(res, 200, { ok: true, handled: Boolean(job) });
    const run = job;
    const accepted = deps.jobs.enqueue(`gitlab ${event} ${deliveryId}`, async () => {
      if (deliveryId && (await intake.records.deliveryHandled('gitlab', deliveryId))) {
        intake.log.info({ deliveryId }, 'gitlab delivery already handled');
        return;
      }
      const outcome = await run();
      if (deliveryId) await intake.records.markDelivery('gitlab', deliveryId);
      intake.log.info({ deliveryId, event, outcome }, 'gitlab hook handled');
    });
    if (!accepted) return sendJson(res, 503, { error: 'intake backlog is full; retry later' });
    sendJson(res, 200, { ok: true, handled: true });
  };
}
