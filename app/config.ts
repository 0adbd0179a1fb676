// Engine settings from the environment, validated once at start through the settings schema
// (app/settings/schema.ts): every mistake names the variable at fault.
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { TLSConfig } from '@temporalio/client';
import { SettingError } from './settings/errors.js';
import { setting, type Env } from './settings/read.js';
import { SETTINGS } from './settings/schema.js';

/** The one configuration error (see SettingError); the name `EnvError` is kept for its callers. */
export { SettingError as EnvError } from './settings/errors.js';

export interface EngineConfig extends ServiceSettings {
  /** host:port of a Temporal frontend; null = start a dev server for this command. */
  temporalAddress: string | null;
  temporalNamespace: string;
  store: string;
  /** Scratch space: checkouts, step directories (TRAINYARD_WORK_DIR, older TRAINYARD_WORK_ROOT). */
  workRoot: string;
  /** Where `trainyard run` writes report files. */
  reportsDir: string;
  /** How long `trainyard run` waits for an unreachable Temporal before it gives up (TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS). */
  temporalUnreachableMs: number;
  /** pino level (TRAINYARD_LOG_LEVEL). */
  logLevel: string;
}

/** Default of TRAINYARD_CONTROL_QUEUE. */
export const DEFAULT_CONTROL_QUEUE = SETTINGS.TRAINYARD_CONTROL_QUEUE.default;
/** Default of TRAINYARD_LOCAL_QUEUE: one queue for all plain runner agents, whichever host they are on. */
export const DEFAULT_LOCAL_QUEUE = SETTINGS.TRAINYARD_LOCAL_QUEUE.default;

/**
 * TRAINYARD_SHUTDOWN_GRACE_SECONDS, shared by every command that runs workers (run, worker,
 * agent, serve): 0 to 3600, default 20 — under Kubernetes' default 30 s
 * terminationGracePeriodSeconds, which leaves time to stop containers before SIGKILL.
 */
export const SHUTDOWN_GRACE = {
  variable: 'TRAINYARD_SHUTDOWN_GRACE_SECONDS',
  defaultSeconds: 20,
  min: 0,
  max: 3600,
} as const;

/** How a process reaches Temporal, the same for every command and both connections. */
export interface TemporalSecurity {
  /** TLS on: TEMPORAL_TLS, or implied by an API key or a certificate setting. */
  temporalTls: boolean;
  temporalApiKey?: string;
  /** mTLS client certificate, server CA and server name; present when any is set. */
  temporalTlsConfig?: TLSConfig;
}

/** Settings every long-running process (serve, worker, agent) shares with `run`. */
export interface ServiceSettings extends TemporalSecurity {
  parallelism: number;
  heartbeatTimeoutMs: number;
  controlQueue: string;
  localQueue: string;
  statusIntervalMs: number;
  /** A stopping worker lets running steps finish this long, then stops them and hands them back (TRAINYARD_SHUTDOWN_GRACE_SECONDS), ms. */
  shutdownGraceMs: number;
  /** S3-compatible endpoint of an s3:// store and of s3:// inputs (see s3Endpoint); unset: AWS itself. */
  s3Endpoint?: string;
}

/**
 * TEMPORAL_TLS, TEMPORAL_API_KEY and the Temporal CLI's certificate settings
 * (TEMPORAL_TLS_CLIENT_CERT_PATH / _KEY_PATH, TEMPORAL_TLS_SERVER_CA_CERT_PATH,
 * TEMPORAL_TLS_SERVER_NAME; the older TEMPORAL_TLS_CERT / _KEY / _CA accepted). The files are
 * read now. As in the Temporal CLI, an API key or any TLS option turns TLS on unless
 * TEMPORAL_TLS says false. Throws SettingError naming the variable (a file that cannot be
 * read, a certificate without its key).
 */
export function loadTemporalSecurity(env: Env = process.env): TemporalSecurity {
  const tls = setting(env, 'TEMPORAL_TLS');
  const apiKey = setting(env, 'TEMPORAL_API_KEY');
  const cert = setting(env, 'TEMPORAL_TLS_CLIENT_CERT_PATH');
  const key = setting(env, 'TEMPORAL_TLS_CLIENT_KEY_PATH');
  const ca = setting(env, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH');
  const serverName = setting(env, 'TEMPORAL_TLS_SERVER_NAME');
  if (cert && !key)
    throw new SettingError(
      'TEMPORAL_TLS_CLIENT_KEY_PATH',
      'must be set with TEMPORAL_TLS_CLIENT_CERT_PATH: the private key of the client certificate (PEM file)',
    );
  if (key && !cert)
    throw new SettingError(
      'TEMPORAL_TLS_CLIENT_CERT_PATH',
      'must be set with TEMPORAL_TLS_CLIENT_KEY_PATH: the client certificate (PEM file)',
    );
  const tlsConfig: TLSConfig = {
    ...(cert && key ? { clientCertPair: { crt: cert.bytes, key: key.bytes } } : {}),
    ...(ca ? { serverRootCACertificate: ca.bytes } : {}),
    ...(serverName ? { serverNameOverride: serverName } : {}),
  };
  const hasOptions = Object.keys(tlsConfig).length > 0;
  if (tls === false && hasOptions)
    throw new SettingError('TEMPORAL_TLS', 'is false but TLS certificate settings are set; remove one or the other');
  return {
    temporalTls: tls ?? (apiKey !== undefined || hasOptions),
    ...(apiKey ? { temporalApiKey: apiKey } : {}),
    ...(hasOptions ? { temporalTlsConfig: tlsConfig } : {}),
  };
}

/**
 * Temporal security, queues and run options from the environment. TRAINYARD_HOST_QUEUE is
 * the older name of TRAINYARD_LOCAL_QUEUE and still accepted. Throws SettingError naming the
 * variable at fault.
 */
export function loadServiceSettings(env: Env = process.env): ServiceSettings {
  return {
    ...loadTemporalSecurity(env),
    parallelism: setting(env, 'TRAINYARD_PARALLELISM'),
    heartbeatTimeoutMs: setting(env, 'TRAINYARD_HEARTBEAT_TIMEOUT_SECONDS') * 1000,
    controlQueue: setting(env, 'TRAINYARD_CONTROL_QUEUE'),
    localQueue: setting(env, 'TRAINYARD_LOCAL_QUEUE'),
    statusIntervalMs: setting(env, 'TRAINYARD_STATUS_INTERVAL_MS'),
    shutdownGraceMs: setting(env, 'TRAINYARD_SHUTDOWN_GRACE_SECONDS') * 1000,
    ...(s3Endpoint(env) ? { s3Endpoint: s3Endpoint(env) } : {}),
  };
}

/** Connection options as both the client and worker connections take them. */
export interface TemporalConnectOptions {
  address: string;
  tls?: TLSConfig | true;
  apiKey?: string;
}

/**
 * Connection options (address, TLS with its certificates, API key) for both the client
 * (`Connection.connect`) and worker (`NativeConnection.connect`) connections of every command.
 */
export function temporalConnectOptions(cfg: TemporalSecurity, address: string): TemporalConnectOptions {
  const tls = cfg.temporalTlsConfig ?? (cfg.temporalTls ? true : undefined);
  return {
    address,
    ...(cfg.temporalTls && tls ? { tls } : {}),
    ...(cfg.temporalApiKey ? { apiKey: cfg.temporalApiKey } : {}),
  };
}

function dataHome(env: Env): string {
  const xdg = env.XDG_DATA_HOME?.trim();
  return xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
}

/**
 * TRAINYARD_WORK_DIR (the older TRAINYARD_WORK_ROOT accepted; both set and different is
 * refused), default `$TRAINYARD_HOME/work`.
 */
export function workDir(env: Env = process.env): string {
  return setting(env, 'TRAINYARD_WORK_DIR') ?? join(trainyardHome(env), 'work');
}

/** TRAINYARD_HOME, default `$XDG_DATA_HOME/trainyard` (`~/.local/share/trainyard`). */
export function trainyardHome(env: Env = process.env): string {
  return setting(env, 'TRAINYARD_HOME') ?? join(dataHome(env), 'trainyard');
}

/** TRAINYARD_STORE, default `${XDG_DATA_HOME:-~/.local/share}/trainyard/store`. */
export function storeSetting(env: Env = process.env): string {
  return setting(env, 'TRAINYARD_STORE') ?? join(dataHome(env), 'trainyard', 'store');
}

/**
 * The S3 endpoint when one is configured: AWS_ENDPOINT_URL_S3 (the AWS SDK's own name; it
 * reads it too), else the older TRAINYARD_S3_ENDPOINT, else AWS_ENDPOINT_URL. The settings
 * schema (app/settings/schema.ts) checks them before anything runs.
 */
export function s3Endpoint(env: Env = process.env): string | undefined {
  for (const name of ['AWS_ENDPOINT_URL_S3', 'TRAINYARD_S3_ENDPOINT', 'AWS_ENDPOINT_URL']) {
    const v = env[name]?.trim();
    if (v) return v;
  }
  return undefined;
}

/** The settings of `run`, `worker`, `agent` and the CLI's store commands. Throws SettingError naming the variable. */
export function loadEngineConfig(env: Env = process.env): EngineConfig {
  return {
    temporalAddress: setting(env, 'TEMPORAL_ADDRESS') ?? null,
    temporalNamespace: setting(env, 'TEMPORAL_NAMESPACE'),
    ...loadServiceSettings(env),
    store: storeSetting(env),
    workRoot: workDir(env),
    reportsDir: join(trainyardHome(env), 'reports'),
    temporalUnreachableMs: setting(env, 'TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS') * 1000,
    logLevel: setting(env, 'TRAINYARD_LOG_LEVEL'),
  };
}
