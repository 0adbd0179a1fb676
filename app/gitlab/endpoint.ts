// The GitLab webhook endpoint. GitLab does not sign payloads; it sends the secret token in
// X-Gitlab-Token, compared here in constant time. The answer goes out before any API call;
// a redelivered hook (same Idempotency-Key) is skipped once its first delivery was handled.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobQueue } from '../intake/jobs.js';
import { header, readBodyWithin, refuse, refuseBody, sendJson } from '../intake/http.js';
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

export function gitlabWebhookHandler(deps: GitLabEndpointDeps) {
  const { intake } = deps;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return refuse(res, 405, 'use POST');
    // The token is in a header: checked before a byte of the body is read.
    if (!tokenMatches(header(req, 'x-gitlab-token'), deps.secret)) return refuse(res, 401, 'missing or wrong X-Gitlab-Token');
    const read = await readBodyWithin(req, { res });
    if (read.kind !== 'ok') return refuseBody(res, read);
    let payload: unknown;
    try {
      payload = JSON.parse(read.body.toString('utf8'));
    } catch {
      payload = undefined;
    }
    if (typeof payload !== 'object' || payload === null) return sendJson(res, 400, { error: 'body must be a JSON object' });
    const event = header(req, 'x-gitlab-event');
    const deliveryId = header(req, 'idempotency-key') ?? header(req, 'x-gitlab-event-uuid') ?? '';
    const kind = (payload as { object_kind?: string }).object_kind;
    let job: (() => Promise<unknown>) | undefined;
    if (event === 'Push Hook' && kind === 'push') {
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
