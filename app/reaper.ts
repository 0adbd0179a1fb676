// Creates (or brings up to date) the Temporal Schedule that runs the reaper workflow.
// Called at server start; idempotent, so every replica may call it.
import {
  ScheduleAlreadyRunning,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import pino from 'pino';
import { pinoTextHooks } from '../activities/usertext.js';
import type { ReaperInput, reapOrphans } from '../workflows/reaper.js';

const logger = pino({ name: 'trainyard-reaper', hooks: pinoTextHooks });

export interface ReaperScheduleOptions {
  scheduleId?: string;
  /** Task queue of the control worker, which registers the reaper workflow and the compute activities. */
  taskQueue?: string;
  intervalSeconds?: number;
  input?: ReaperInput;
}

export const DEFAULT_REAPER_SCHEDULE_ID = 'trainyard-reaper';

export async function ensureReaperSchedule(
  client: Client,
  opts: ReaperScheduleOptions = {},
): Promise<{ scheduleId: string; created: boolean }> {
  const scheduleId = opts.scheduleId ?? DEFAULT_REAPER_SCHEDULE_ID;
  const every = `${opts.intervalSeconds ?? 300} seconds`;
  const action: ScheduleOptionsStartWorkflowAction<typeof reapOrphans> = {
    type: 'startWorkflow',
    workflowType: 'reapOrphans',
    workflowId: `${scheduleId}-run`,
    args: [opts.input ?? {}],
    taskQueue: opts.taskQueue ?? 'trainyard',
    workflowExecutionTimeout: '30 minutes',
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every }] },
      action,
      // A slow sweep must not pile up behind itself; a missed one is simply skipped.
      policies: { catchupWindow: '1 minute' },
      memo: { purpose: 'terminate EC2 hosts of closed or unknown Trainyard runs, or past their lease' },
    });
    logger.info({ scheduleId, every }, 'reaper schedule created');
    return { scheduleId, created: true };
  } catch (e) {
    if (!(e instanceof ScheduleAlreadyRunning)) throw e;
  }
  await client.schedule.getHandle(scheduleId).update((prev: ScheduleDescription) => ({
    ...prev,
    spec: { intervals: [{ every }] },
    action,
  }));
  logger.info({ scheduleId, every }, 'reaper schedule updated');
  return { scheduleId, created: false };
}
