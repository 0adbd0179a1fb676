// One webhook delivery, recorded in Temporal before the webhook is answered: the workflow
// id derives from the delivery id (app/intake/deliveries.ts), so a redelivery to any
// replica is refused by Temporal and starts nothing twice. What the delivery asks for runs
// in the intake activity (activities/intake/activities.ts), retried with backoff after a
// crash or a git-host error, so nothing is lost once the host got its 2xx.
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { IntakeActivities } from '../activities/intake/activities.js';
import type { Delivery, DeliveryOutcome } from '../activities/intake/events.js';
import { FailureType } from '../model/failures.js';

export async function intakeDelivery(delivery: Delivery): Promise<DeliveryOutcome> {
  const { handleDelivery } = proxyActivities<IntakeActivities>({
    // The comment flow may wait ~20 s for its check link; everything else is a few API calls.
    startToCloseTimeout: '5 minutes',
    // Control activities heartbeat every 3 s (activities/liveness.ts): a killed worker is noticed in seconds.
    heartbeatTimeout: '20 seconds',
    // About an hour of attempts: a git-host outage or a worker fleet restart is waited out.
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '2 minutes',
      maximumAttempts: 40,
      nonRetryableErrorTypes: [FailureType.IntakeUnconfigured],
    },
    cancellationType: ActivityCancellationType.TRY_CANCEL,
  });
  return handleDelivery(delivery);
}
