// The embedded Temporal server of `trainyard run`, started as early as the command knows it
// needs one: the dev server takes about as long to answer as the CLI takes to load Temporal's
// SDK and the workers and to check the project, so both happen at once. This module imports
// only what starting the server needs (app/devserver.ts, the settings), never the SDK's worker.
import { loadEngineConfig } from '../config.js';
import { startDevServer, type DevServer } from '../devserver.js';

/** A dev server being started ahead of need; `take` hands it over, `discard` stops it. */
export interface EarlyServer {
  /** The started server, or the error startDevServer threw (a missing `temporal` CLI …). */
  take(): Promise<DevServer>;
  /** Stops the server, whether it is still starting or ready (the command ended before using it); waits until it is gone. */
  discard(): Promise<void>;
}

/**
 * Starts the embedded dev server now when the settings call for one (no TEMPORAL_ADDRESS),
 * else returns undefined. Settings that do not load also give undefined: the command then
 * reports them itself, as before, and nothing was started. The server runs under its
 * watchdog (app/guard.ts) from the start, so a process that dies meanwhile leaves nothing.
 */
export function startEarlyServer(env: Record<string, string | undefined> = process.env): EarlyServer | undefined {
  try {
    if (loadEngineConfig(env).temporalAddress) return undefined;
  } catch {
    return undefined;
  }
  const abort = new AbortController();
  const starting = startDevServer({ signal: abort.signal });
  // Awaited by take() or discard(); until then a failure must not count as unhandled.
  starting.catch(() => undefined);
  return {
    take: () => starting,
    discard: async () => {
      // Still starting: stop it now rather than wait until it answers.
      abort.abort(new Error('the command ended before it needed the embedded Temporal server'));
      const dev = await starting.catch(() => undefined);
      await dev?.stop();
    },
  };
}
