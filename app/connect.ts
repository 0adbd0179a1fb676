// A worker or agent started while Temporal is unreachable — the cluster restarting, a
// rolling upgrade, a replacement pod coming up first — waits for it instead of exiting, so
// processes can be started and replaced in any order. Once connected, the SDK reconnects
// by itself after an outage.
import { Connection, type ConnectionOptions } from '@temporalio/client';
import type { Logger } from 'pino';

/** How long a starting process waits for Temporal before it gives up (and exits non-zero). */
export const TEMPORAL_WAIT_MS = 5 * 60_000;

/** Resolves once the frontend answers GetSystemInfo; throws the last error after `waitMs`. */
export async function waitForTemporal(
  options: ConnectionOptions,
  log: Logger,
  waitMs = TEMPORAL_WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      const c = await Connection.connect({ ...options, connectTimeout: 2_000 });
      try {
        await c.workflowService.getSystemInfo({});
      } finally {
        await c.close();
      }
      if (attempt > 1) log.info({ address: options.address, attempt }, 'Temporal reachable');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (attempt === 1 || attempt % 10 === 0)
        log.warn(
          { address: options.address, attempt, err: (err as Error).message },
          'Temporal unreachable; waiting for it',
        );
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * attempt)));
    }
  }
}
