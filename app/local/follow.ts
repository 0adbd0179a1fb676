// Following a run to its end from `trainyard run`, through Temporal outages: a frontend that
// stops answering (a restart, a network cut) is waited out with a visible line, up to a
// limit, instead of ending the command while the run goes on without it.
import { isGrpcServiceError, type Client } from '@temporalio/client';
import type { RunStatus } from '../../model/types.js';
import type { pipelineRun } from '../../workflows/pipeline.js';
import { getRunStatus } from '../engine.js';

/** gRPC status codes that mean "the frontend did not answer": UNAVAILABLE (14), DEADLINE_EXCEEDED (4). */
const UNREACHABLE_CODES = new Set([14, 4]);

/** Whether `err`, or an error it wraps (`cause`), is a gRPC UNAVAILABLE or DEADLINE_EXCEEDED. */
export function temporalUnreachable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e && depth < 8; depth++) {
    if (isGrpcServiceError(e) && UNREACHABLE_CODES.has(e.code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** Thrown by followRun when Temporal stayed unreachable longer than the limit. */
export class TemporalUnreachableError extends Error {
  constructor(
    readonly address: string,
    readonly seconds: number,
    cause: unknown,
  ) {
    super(`Temporal at ${address} has been unreachable for ${seconds} s`, { cause });
    this.name = 'TemporalUnreachableError';
  }
}

export interface FollowOptions {
  /** host:port, for the messages. */
  address: string;
  /** Give up after Temporal has not answered for this long (ms). */
  unreachableMs: number;
  /** Each status as it changes (the live table). */
  onStatus?(status: RunStatus): void;
  /** Runs once per tick, e.g. to retry a cancel request that an outage swallowed. */
  onTick?(): Promise<void>;
  /** Where the "unreachable" / "answers again" lines go. */
  say(line: string): void;
  /** Rejects when the run cannot go on at all (the embedded server died). */
  abort?: Promise<never>;
}

const STATUS_DEADLINE_MS = 10_000;

/**
 * Waits for the workflow's result, showing its status every half second. While Temporal
 * does not answer it says so once, keeps trying every two seconds, and says when it answers
 * again. Resolves with the final RunStatus; throws the workflow's own failure, opts.abort's
 * error, or TemporalUnreachableError after opts.unreachableMs without an answer.
 */
export async function followRun(client: Client, workflowId: string, opts: FollowOptions): Promise<RunStatus> {
  const handle = client.workflow.getHandle<typeof pipelineRun>(workflowId);
  let outcome: { ok: RunStatus } | { err: unknown } | undefined;
  let pending: Promise<void> | undefined;
  const arm = (): void => {
    pending = handle.result().then(
      (ok) => {
        outcome = { ok };
      },
      (err: unknown) => {
        outcome = { err };
      },
    );
  };
  let downSince: number | undefined;
  let lastError: unknown;
  const down = (err: unknown): void => {
    lastError = err;
    if (downSince !== undefined) return;
    downSince = Date.now();
    opts.say(
      `Temporal unreachable at ${opts.address} (${firstLine(err)}); retrying for up to ${Math.round(opts.unreachableMs / 1000)} s (TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS)`,
    );
  };
  const up = (): void => {
    if (downSince === undefined) return;
    opts.say(
      `Temporal at ${opts.address} answers again after ${Math.round((Date.now() - downSince) / 1000)} s; the run goes on`,
    );
    downSince = undefined;
  };

  arm();
  for (;;) {
    if (outcome && 'ok' in outcome) {
      up();
      return outcome.ok;
    }
    if (outcome && 'err' in outcome) {
      if (!temporalUnreachable(outcome.err)) throw outcome.err;
      down(outcome.err);
      outcome = undefined;
      pending = undefined;
    }
    try {
      const status = await client.withDeadline(Date.now() + STATUS_DEADLINE_MS, () => getRunStatus(client, workflowId));
      up();
      opts.onStatus?.(status);
      if (!pending) arm();
    } catch (err) {
      // Otherwise a query can miss while the workflow continues as new; the next tick answers.
      if (temporalUnreachable(err)) down(err);
    }
    await opts.onTick?.();
    if (downSince !== undefined && Date.now() - downSince >= opts.unreachableMs) {
      throw new TemporalUnreachableError(opts.address, Math.round((Date.now() - downSince) / 1000), lastError);
    }
    await Promise.race([
      pending ?? new Promise(() => undefined),
      new Promise((r) => setTimeout(r, downSince === undefined ? 500 : 2000)),
      ...(opts.abort ? [opts.abort] : []),
    ]);
  }
}

/** A short reason for the "unreachable" line: gRPC's own words for UNAVAILABLE, else that no answer came in time. */
function firstLine(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e))
      return e.code === 14
        ? `UNAVAILABLE: ${e.details.split('\n')[0]!.slice(0, 160)}`
        : `no answer within ${STATUS_DEADLINE_MS / 1000} s`;
  }
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 160);
}
