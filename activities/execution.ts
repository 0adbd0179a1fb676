// One step execution across the Temporal attempts of its activity, in this process.
//
// Temporal starts a new attempt of an activity when it stops hearing from the current one:
// the runner died — or Temporal itself was down for longer than the heartbeat timeout (a
// restart, a network cut), while the runner and its container went on. In that second case
// the old attempt learns it is stale (its next heartbeat is answered "not found") and the new
// attempt often lands on this same process, which polls the same queue. Killing the container
// and running the step again would execute it twice; instead the running execution is kept
// for a while and the new attempt takes it over. A runner elsewhere that gets the new attempt
// removes the old container first (activities/runner/runstep.ts), as for a dead runner.
import { CancelledFailure, Context } from '@temporalio/activity';

/** What an execution sees of the Temporal attempt that currently owns it (a subset of Context). */
export interface AttemptContext {
  /** `attempt`: Temporal's attempt number (1-based) of the activity that owns the execution now. */
  readonly info: { readonly attempt: number };
  /** Heartbeats go to the owning attempt. */
  heartbeat(details?: unknown): void;
  /** Aborts when the execution must stop: a cancel request, worker shutdown, or a stale attempt nobody took over. */
  readonly cancellationSignal: AbortSignal;
  readonly log: Context['log'];
  /** True when the abort came from a stopping worker: hand the step back as a retryable failure. */
  readonly workerShutdown: boolean;
}

/**
 * How long a stale execution keeps running for a later attempt to take it over, by
 * Temporal's cancel reason (ActivityCancelReason). TIMED_OUT: the worker could not deliver a
 * heartbeat within the heartbeat timeout — Temporal is unreachable — and the next attempt
 * comes only once it answers again: bridge outages as long as `trainyard run` waits one out
 * (TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS' default). NOT_FOUND: Temporal answers but no
 * longer knows this attempt; its retry, if any, comes within seconds.
 */
export const TAKE_OVER_WINDOW_MS: Readonly<Record<string, number>> = { TIMED_OUT: 600_000, NOT_FOUND: 60_000 };

class Execution<Res> {
  owner: Context;
  result!: Promise<Res>;
  readonly view: AttemptContext;
  private readonly stop = new AbortController();
  private shutdown = false;
  private staleTimer: NodeJS.Timeout | undefined;

  /** `forget` drops the execution from the registry: once an owner has its outcome, or when a stale one's window is over. */
  constructor(
    ctx: Context,
    private readonly forget: () => void,
  ) {
    this.owner = ctx;
    const owner = (): Context => this.owner;
    const shutdown = (): boolean => this.shutdown;
    this.view = {
      get info() {
        return { attempt: owner().info.attempt };
      },
      heartbeat: (d) => {
        // A stale owner's activity is over: nobody is listening until the next attempt takes over.
        try {
          owner().heartbeat(d);
        } catch {
          /* ignored */
        }
      },
      cancellationSignal: this.stop.signal,
      get log() {
        return owner().log;
      },
      get workerShutdown() {
        return shutdown();
      },
    };
  }

  takeOver(ctx: Context): void {
    clearTimeout(this.staleTimer);
    this.staleTimer = undefined;
    this.owner = ctx;
  }

  /** The execution's result on behalf of attempt `ctx`; a CancelledFailure if that attempt goes stale or is superseded first. */
  outcomeFor(ctx: Context): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const onAbort = (): void => {
        const reason: unknown = ctx.cancellationSignal.reason;
        const why = reason instanceof CancelledFailure ? reason.message : String(reason);
        if (ctx !== this.owner) {
          reject(new CancelledFailure('superseded: a later attempt took over this execution'));
          return;
        }
        const window = TAKE_OVER_WINDOW_MS[why];
        if (window !== undefined) {
          // Stopped if nobody takes over in time; a result that comes first waits as long.
          this.staleTimer = setTimeout(() => {
            this.stop.abort();
            this.forget();
          }, window).unref();
          reject(
            new CancelledFailure(
              `Temporal gave this attempt up (${why}); the container keeps running for the next attempt to take over`,
            ),
          );
          return;
        }
        this.shutdown = why === 'WORKER_SHUTDOWN' || ctx.cancellationDetails?.workerShutdown === true;
        this.stop.abort();
      };
      if (ctx.cancellationSignal.aborted) onAbort();
      else ctx.cancellationSignal.addEventListener('abort', onAbort, { once: true });
      const delivered = (): void => {
        if (ctx === this.owner && this.staleTimer === undefined) this.forget();
      };
      this.result.then(
        (v) => {
          delivered();
          resolve(v);
        },
        (e: unknown) => {
          delivered();
          reject(e);
        },
      );
    });
  }
}

/**
 * Wraps an activity body so that a later Temporal attempt of the same execution (same `keyOf`)
 * arriving while this process still runs an earlier one takes the running one over instead of
 * starting again. `body` gets an AttemptContext in place of Context.current().
 */
export function takeOverStaleAttempts<Req, Res>(
  keyOf: (req: Req) => string,
  body: (req: Req, ctx: AttemptContext) => Promise<Res>,
): (req: Req) => Promise<Res> {
  const running = new Map<string, Execution<Res>>();
  return (req: Req) => {
    const ctx = Context.current();
    const key = keyOf(req);
    const current = running.get(key);
    if (current && ctx.info.attempt > current.owner.info.attempt) {
      current.takeOver(ctx);
      ctx.log.info('took over the running execution of an earlier attempt', { attempt: ctx.info.attempt });
      return current.outcomeFor(ctx);
    }
    const ex: Execution<Res> = new Execution<Res>(ctx, () => {
      if (running.get(key) === ex) running.delete(key);
    });
    ex.result = body(req, ex.view);
    // Nobody waits on the result of a stale execution until an attempt takes it over.
    ex.result.catch(() => undefined);
    running.set(key, ex);
    return ex.outcomeFor(ctx);
  };
}
