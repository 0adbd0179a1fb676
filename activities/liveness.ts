// A control worker's activities heartbeat while they run, whatever they do: Temporal then
// notices a worker that died mid-activity (kill -9, OOM, a lost node) within the proxy's
// heartbeat timeout and retries elsewhere, instead of waiting out the start-to-close
// timeout. It proves the process is alive, not that the work progresses; an activity
// that reports progress of its own (the runner's step) keeps doing so.
import { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** Heartbeat interval of every control activity, ms; the workflows' proxies allow 20 s of silence. */
export const LIVENESS_HEARTBEAT_MS = 3_000;

export function heartbeatWhileRunning(intervalMs = LIVENESS_HEARTBEAT_MS): ActivityInterceptorsFactory {
  return (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        // A local activity has no heartbeat: it runs inside the workflow's own task (its worker dying fails that task).
        if (ctx.info.isLocal) return next(input);
        const beat = setInterval(() => ctx.heartbeat(), intervalMs);
        try {
          return await next(input);
        } finally {
          clearInterval(beat);
        }
      },
    },
  });
}
