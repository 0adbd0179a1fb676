// The GitLab webhook endpoint. GitLab does not sign payloads; it sends the secret token in
// X-Gitlab-Token, compared here in constant time. The answer goes out once the delivery is
// recorded in Temporal, before any API call; a redelivered hook (same Idempotency-Key)
// finds its delivery workflow there and starts nothing.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { IntakeEvent } from '../../activities/intake/events.js';
import { deliveryIdFrom } from '../../activities/intake/ids.js';
import { answerDelivery, type DeliveryRecorder } from '../intake/deliveries.js';
import { header, readBodyWithin, refuse, refuseBody, sendJson } from '../intake/http.js';
import { gitlabIntakeEvent } from './hooks.js';

export interface GitLabEndpointDeps {
  secret: string;
  deliveries: DeliveryRecorder;
  ackOnly: boolean;
  log: Logger;
}

/** Constant time whatever the lengths: compares digests, never the raw strings. */
export function tokenMatches(given: string | undefined, secret: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(secret).digest();
  return timingSafeEqual(a, b);
}

export function gitlabWebhookHandler(deps: GitLabEndpointDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return refuse(res, 405, 'use POST');
    // The token is in a header: checked before a byte of the body is read.
    if (!tokenMatches(header(req, 'x-gitlab-token'), deps.secret))
      return refuse(res, 401, 'missing or wrong X-Gitlab-Token');
    const read = await readBodyWithin(req, { res });
    if (read.kind !== 'ok') return refuseBody(res, read);
    let payload: unknown;
    try {
      payload = JSON.parse(read.body.toString('utf8'));
    } catch {
      payload = undefined;
    }
    if (typeof payload !== 'object' || payload === null)
      return sendJson(res, 400, { error: 'body must be a JSON object' });
    let event: IntakeEvent | null;
    try {
      event = gitlabIntakeEvent(header(req, 'x-gitlab-event'), payload as Record<string, unknown>);
    } catch (err) {
      return sendJson(res, 400, { error: `not a GitLab hook payload: ${(err as Error).message}` });
    }
    if (deps.ackOnly) return sendJson(res, 200, { ok: true, handled: false });
    // Idempotency-Key stays the same across GitLab's retries and manual resends.
    const deliveryId = deliveryIdFrom(header(req, 'idempotency-key') ?? header(req, 'x-gitlab-event-uuid'), read.body);
    await answerDelivery(res, deps.deliveries, 'gitlab', deliveryId, event, deps.log);
  };
}
