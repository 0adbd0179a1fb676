// Durable intake: a verified webhook is answered only once Temporal has recorded its
// delivery workflow (workflows/intake.ts). The workflow id derives from the delivery id and
// starts with reject-duplicate, so a redelivery — at any later time, to any replica — is
// answered 200 and starts nothing. When Temporal cannot record it in time the answer is
// 503: GitHub and GitLab then show a failed delivery that can be redelivered.
import type { ServerResponse } from 'node:http';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
} from '@temporalio/client';
import type { Logger } from 'pino';
import { MAX_DELIVERY_CHARS, type Delivery, type IntakeEvent } from '../../activities/intake/events.js';
import { deliveryWorkflowId, type HostKind } from '../../activities/intake/ids.js';
import type { intakeDelivery } from '../../workflows/intake.js';
import { sendJson } from './http.js';

export type RecordResult =
  { kind: 'recorded' | 'duplicate'; workflowId: string } | { kind: 'unavailable'; workflowId: string; message: string };

export interface DeliveryRecorder {
  /** Starts the delivery's workflow; never throws for Temporal trouble (that is 'unavailable'). */
  record(host: HostKind, deliveryId: string, event: IntakeEvent): Promise<RecordResult>;
}

/**
 * GitHub waits 10 s for an answer and then counts the delivery as failed; an answer well
 * before that keeps the failure ours (503) rather than a timeout GitHub guesses at.
 */
export const RECORD_TIMEOUT_MS = 5_000;

export function temporalDeliveries(
  client: Client,
  opts: { taskQueue: string; timeoutMs?: number; log: Logger },
): DeliveryRecorder {
  return {
    async record(host, deliveryId, event) {
      const workflowId = deliveryWorkflowId(host, deliveryId);
      const delivery: Delivery = { host, deliveryId, receivedAt: new Date().toISOString(), event };
      const size = JSON.stringify(delivery).length;
      // The extractors bound every field; this is the backstop that keeps Temporal's limits out of reach.
      if (size > MAX_DELIVERY_CHARS)
        throw new Error(`delivery ${deliveryId} is ${size} characters after extraction (limit ${MAX_DELIVERY_CHARS})`);
      try {
        await client.connection.withDeadline(Date.now() + (opts.timeoutMs ?? RECORD_TIMEOUT_MS), () =>
          client.workflow.start<typeof intakeDelivery>('intakeDelivery', {
            workflowId,
            taskQueue: opts.taskQueue,
            args: [delivery],
            workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
          }),
        );
        return { kind: 'recorded', workflowId };
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) return { kind: 'duplicate', workflowId };
        const message = err instanceof Error ? err.message : String(err);
        opts.log.warn(
          { delivery: deliveryId, workflowId, err: message },
          'could not record the delivery in Temporal; answering 503',
        );
        return { kind: 'unavailable', workflowId, message };
      }
    },
  };
}

/** Records the delivery and answers the host: 200 once recorded (or recorded before), 503 when Temporal could not. */
export async function answerDelivery(
  res: ServerResponse,
  deliveries: DeliveryRecorder,
  host: HostKind,
  deliveryId: string,
  event: IntakeEvent | null,
  log: Logger,
): Promise<void> {
  if (event === null) return sendJson(res, 200, { ok: true, handled: false });
  const r = await deliveries.record(host, deliveryId, event);
  if (r.kind === 'unavailable') {
    res.setHeader('retry-after', '30');
    return sendJson(res, 503, {
      error: 'the delivery could not be recorded (Temporal unavailable); redeliver it',
      delivery: deliveryId,
    });
  }
  log.info(
    { delivery: deliveryId, workflowId: r.workflowId, event: event.kind, duplicate: r.kind === 'duplicate' },
    r.kind === 'duplicate' ? 'delivery seen before' : 'delivery recorded',
  );
  sendJson(res, 200, {
    ok: true,
    handled: true,
    delivery: deliveryId,
    ...(r.kind === 'duplicate' ? { duplicate: true } : {}),
  });
}
