// Starting, cancelling and watching pipeline runs: the only way app/ talks to Temporal
// about runs (the functions live in activities/runs.ts, which the intake activities share).
import { hostname } from 'node:os';
import type { RunOptions } from '../model/types.js';
import type { ServiceSettings } from './config.js';

export { cancelPipelineRun, getRunStatus, startPipelineRun, type StartedRun } from '../activities/runs.js';

export const CONTROL_QUEUE = 'trainyard';

/**
 * The runner queue of this machine, for `trainyard run`: its commit is a local checkout
 * only this machine can read, so its steps must run here. Service runs use the shared
 * TRAINYARD_LOCAL_QUEUE instead (serviceRunOptions).
 */
export const localHostQueue = (): string => `trainyard-host-${hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}`;

export function defaultRunOptions(overrides: Partial<RunOptions> = {}): RunOptions {
  return {
    noCache: false,
    controlQueue: CONTROL_QUEUE,
    statusIntervalMs: 10_000,
    parallelism: 4,
    localHostQueue: localHostQueue(),
    historyEventLimit: 10_000,
    heartbeatTimeoutMs: 30_000,
    ...overrides,
  };
}

/**
 * Options of the runs the webhook intake starts: steps without `machine:` go to the shared
 * queue every runner agent polls (TRAINYARD_LOCAL_QUEUE), whichever host it is on, so no
 * process's hostname is baked into a run.
 */
export function serviceRunOptions(
  s: Pick<ServiceSettings, 'controlQueue' | 'localQueue' | 'statusIntervalMs' | 'parallelism' | 'heartbeatTimeoutMs'>,
): RunOptions {
  return defaultRunOptions({
    controlQueue: s.controlQueue,
    localHostQueue: s.localQueue,
    statusIntervalMs: s.statusIntervalMs,
    parallelism: s.parallelism,
    heartbeatTimeoutMs: s.heartbeatTimeoutMs,
  });
}
