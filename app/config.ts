// Engine settings from the environment, validated once at start: every mistake names the
// variable at fault.
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { defaultStoreLocation } from '../activities/store/location.js';

export class EnvError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'EnvError';
  }
}

export interface EngineConfig {
  /** host:port of a Temporal frontend; null = start a dev server for this command. */
  temporalAddress: string | null;
  temporalNamespace: string;
  /** TLS and API key for Temporal Cloud or a secured cluster. */
  temporalTls: boolean;
  temporalApiKey?: string;
  store: string;
  /** Scratch space: checkouts, step directories. */
  workRoot: string;
  /** Where `trainyard run` writes report files. */
  reportsDir: string;
  parallelism: number;
  heartbeatTimeoutMs: number;
  /** Task queue of the control workers (workflows, control and intake activities). */
  controlQueue: string;
  /** The shared queue every local runner agent polls: steps without `machine:` of service runs. */
  localQueue: string;
  /** Least time between two check-run updates of a service run, ms. */
  statusIntervalMs: number;
  /** How long `trainyard run` waits for an unreachable Temporal before it gives up (TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS). */
  temporalUnreachableMs: number;
  /** See ServiceSettings.shutdownGraceMs. */
  shutdownGraceMs: number;
}

/** Default of TRAINYARD_CONTROL_QUEUE. */
export const DEFAULT_CONTROL_QUEUE = 'trainyard';
/** Default of TRAINYARD_LOCAL_QUEUE: one queue for all plain runner agents, whichever host they are on. */
export const DEFAULT_LOCAL_QUEUE = 'trainyard-local';

/**
 * TRAINYARD_SHUTDOWN_GRACE_SECONDS, shared by every command that runs workers (run, worker,
 * agent, serve): 0 to 3600, default 20 — under Kubernetes' default 30 s
 * terminationGracePeriodSeconds, which leaves time to stop containers before SIGKILL.
 */
export const SHUTDOWN_GRACE = { variable: 'TRAINYARD_SHUTDOWN_GRACE_SECONDS', defaultSeconds: 20, min: 0, max: 3600 } as const;

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return dflt;
  if (!/^\d+$/.test(raw)) throw new EnvError(name, `must be a whole number between ${min} and ${max}, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new EnvError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function absPath(env: Env, name: string, dflt: string): string {
  const raw = env[name]?.trim();
  if (!raw) return dflt;
  if (!isAbsolute(raw)) throw new EnvError(name, `must be an absolute path, got ${JSON.stringify(raw)}`);
  return raw;
}

function queueName(env: Env, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  if (!/^[A-Za-z0-9._:-]{1,200}$/.test(raw)) throw new EnvError(name, `must be a task queue name of letters, digits, . _ : - (at most 200), got ${JSON.stringify(raw)}`);
  return raw;
}

/** Settings every long-running process (serve, worker, agent) shares with `run`. */
export interface ServiceSettings {
  temporalTls: boolean;
  temporalApiKey?: string;
  parallelism: number;
  heartbeatTimeoutMs: number;
  controlQueue: string;
  localQueue: string;
  statusIntervalMs: number;
  /** A stopping worker lets running steps finish this long, then stops them and hands them back (TRAINYARD_SHUTDOWN_GRACE_SECONDS), ms. */
  shutdownGraceMs: number;
}

/**
 * Temporal security, queues and run options from the environment. TRAINYARD_HOST_QUEUE is
 * the older name of TRAINYARD_LOCAL_QUEUE and still accepted. Throws EnvError naming the
 * variable at fault.
 */
export function loadServiceSettings(env: Env = process.env): ServiceSettings {
  const tlsRaw = env.TEMPORAL_TLS?.trim().toLowerCase();
  if (tlsRaw && !['true', 'false', '1', '0'].includes(tlsRaw)) throw new EnvError('TEMPORAL_TLS', `must be true or false, got ${JSON.stringify(env.TEMPORAL_TLS)}`);
  const apiKey = env.TEMPORAL_API_KEY?.trim() || undefined;
  const local = queueName(env, 'TRAINYARD_LOCAL_QUEUE');
  const older = queueName(env, 'TRAINYARD_HOST_QUEUE');
  if (local && older && local !== older) throw new EnvError('TRAINYARD_HOST_QUEUE', `is the older name of TRAINYARD_LOCAL_QUEUE and says something else (${older} vs ${local}); set one of them`);
  return {
    // An API key implies TLS (Temporal Cloud refuses plaintext).
    temporalTls: tlsRaw === 'true' || tlsRaw === '1' || (apiKey !== undefined && tlsRaw === undefined),
    ...(apiKey ? { temporalApiKey: apiKey } : {}),
    parallelism: int(env, 'TRAINYARD_PARALLELISM', 4, 1, 1024),
    heartbeatTimeoutMs: int(env, 'TRAINYARD_HEARTBEAT_TIMEOUT_SECONDS', 30, 2, 3600) * 1000,
    controlQueue: queueName(env, 'TRAINYARD_CONTROL_QUEUE') ?? DEFAULT_CONTROL_QUEUE,
    localQueue: local ?? older ?? DEFAULT_LOCAL_QUEUE,
    statusIntervalMs: int(env, 'TRAINYARD_STATUS_INTERVAL_MS', 10_000, 100, 3_600_000),
    shutdownGraceMs: int(env, SHUTDOWN_GRACE.variable, SHUTDOWN_GRACE.defaultSeconds, SHUTDOWN_GRACE.min, SHUTDOWN_GRACE.max) * 1000,
  };
}

/** Connection options (address, TLS, API key) for both the client and worker connections. */
export function temporalConnectOptions(cfg: Pick<ServiceSettings, 'temporalTls' | 'temporalApiKey'>, address: string): { address: string; tls?: boolean; apiKey?: string } {
  return { address, ...(cfg.temporalTls ? { tls: true } : {}), ...(cfg.temporalApiKey ? { apiKey: cfg.temporalApiKey } : {}) };
}

export function loadEngineConfig(env: Env = process.env): EngineConfig {
  const addr = env.TEMPORAL_ADDRESS?.trim() || null;
  if (addr && !/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(addr)) throw new EnvError('TEMPORAL_ADDRESS', `must be host:port, got ${JSON.stringify(addr)}`);
  const ns = env.TEMPORAL_NAMESPACE?.trim() || 'default';
  if (!/^[A-Za-z0-9._-]+$/.test(ns)) throw new EnvError('TEMPORAL_NAMESPACE', `is not a namespace name: ${JSON.stringify(ns)}`);
  const store = env.TRAINYARD_STORE?.trim() || defaultStoreLocation();
  if (!store.startsWith('s3://') && !store.startsWith('file:') && !isAbsolute(store)) {
    throw new EnvError('TRAINYARD_STORE', `must be an absolute path, file:///path or s3://bucket/prefix, got ${JSON.stringify(store)}`);
  }
  const dataHome = env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(homedir(), '.local', 'share');
  const home = absPath(env, 'TRAINYARD_HOME', join(dataHome, 'trainyard'));
  return {
    temporalAddress: addr,
    temporalNamespace: ns,
    ...loadServiceSettings(env),
    store,
    workRoot: absPath(env, 'TRAINYARD_WORK_DIR', join(home, 'work')),
    reportsDir: join(home, 'reports'),
    temporalUnreachableMs: int(env, 'TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS', 600, 1, 7 * 24 * 3600) * 1000,
  };
}
