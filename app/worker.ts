// Workers: the control worker (workflows + control activities) and the runner agent of a
// compute host (the container activity on that host's own task queue).
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import {
  NativeConnection,
  Runtime,
  Worker,
  bundleWorkflowCode,
  makeTelemetryFilterString,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createControlActivities, createHostActivities } from '../activities/engine.js';
import { heartbeatWhileRunning } from '../activities/liveness.js';
import { removeOrphanedContainers } from '../activities/runner/runstep.js';
import { secretSourceFromEnv, type SecretSource } from '../activities/secrets.js';
import { resolveContainerCli } from '../activities/container/cli.js';
import { removeStartedContainers } from '../activities/container/run.js';
import { LocalGitSource, SourceProviders } from '../activities/source/local.js';
import type { SourceProvider } from '../activities/source/types.js';
import type { ContainerCliConfig } from '../activities/container/types.js';
import type { ArtifactStore } from '../activities/store/types.js';
import type { PublishRequest } from '../model/types.js';
import type { KubeClients } from '../activities/k8s/client.js';
import { DEFAULT_K8S_QUEUE, type KubernetesSettings } from '../activities/k8s/types.js';
import { disabledComputeActivities, disabledKubernetesActivities } from './compute/disabled.js';
import { loadComputeConfig, type ComputeConfig } from './compute/config.js';
import type { OpenLineageConfig } from '../activities/lineage/openlineage.js';
import { loadOpenLineageConfig } from './openlineage.js';
import { cachedWorkflowBundle } from './bundlecache.js';
import { dataConverter } from './codec.js';
import { setting, type Env } from './settings/read.js';
import { SHUTDOWN_GRACE } from './config.js';
import { CONTROL_QUEUE } from './engine.js';

const here = dirname(fileURLToPath(import.meta.url));
export const WORKFLOWS_PATH = join(here, '..', 'workflows', 'index.ts');

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/**
 * The workflow bundle, once per process: read from `prebuilt` (TRAINYARD_WORKFLOW_BUNDLE, see
 * loadWorkerSettings; the container image builds it ahead: its bundled CLI has no webpack, see
 * deploy/image/), else from the on-disk cache by the content digest of workflows/ and what it
 * imports (app/bundlecache.ts), else built with webpack (a few seconds) and cached there.
 */
export function workflowBundle(prebuilt?: string): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= prebuilt
    ? readFile(prebuilt, 'utf8').then(
        (code) => ({ code, sourceMap: '' }),
        (e: Error) => {
          throw new Error(`TRAINYARD_WORKFLOW_BUNDLE: cannot read ${prebuilt}: ${e.message}`);
        },
      )
    : (async () => {
        // The bundled SDK's version: the lock file pins it, the installed package says it.
        const extra = await Promise.all(
          ['package-lock.json', 'node_modules/@temporalio/workflow/package.json'].map((f) =>
            readFile(join(here, '..', f), 'utf8').catch(() => ''),
          ),
        );
        const { code } = await cachedWorkflowBundle(
          WORKFLOWS_PATH,
          () => bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger }),
          { extra },
        );
        return { code, sourceMap: '' };
      })();
  return bundle;
}

const noop = (): void => undefined;
const quietBundlerLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: (m: string) => console.error(m),
  log: noop,
};

type AnyActivity = (...args: never[]) => Promise<unknown>;

/**
 * Activities a caller adds to the control worker: any by name, and `publishStatus`, which the
 * control activities also call to report a run's status to its git host (app/intake/githostparts.ts).
 */
export type ExtraActivities = Record<string, AnyActivity> & {
  publishStatus?: (r: PublishRequest) => Promise<void>;
};

/** What a runner takes from its environment, read once at start (loadHostSettings). */
export interface HostSettings {
  /** The container CLI steps run with (resolveContainerCli). */
  cli: ContainerCliConfig;
  /** Where the runner fetches step secrets (TRAINYARD_SECRETS_*). */
  secrets: SecretSource;
}

/**
 * The runner's settings from `env`, checked before it polls: throws SettingError naming a bad
 * TRAINYARD_SECRETS_* setting, ContainerCliUnavailableError when no container CLI can run steps.
 */
export async function loadHostSettings(env: Env): Promise<HostSettings> {
  const secrets = secretSourceFromEnv(env);
  return { secrets, cli: await resolveContainerCli(env) };
}

/** What a worker process takes from its environment, read once by its entry point (loadWorkerSettings). */
export interface WorkerSettings {
  /** EC2 and Kubernetes compute (app/compute/config.ts). */
  compute: ComputeConfig;
  /** Where runs send OpenLineage events; null: nowhere. */
  openLineage: OpenLineageConfig | null;
  /** The container CLI for the control activities (image checks); undefined where none is installed. */
  cli: ContainerCliConfig | undefined;
  /** The runner's settings; absent for a control-only worker. */
  host?: HostSettings;
  /** A prebuilt workflow bundle (TRAINYARD_WORKFLOW_BUNDLE), see workflowBundle. */
  workflowBundleFile?: string;
}

/**
 * The composition root's one read of the environment for `startWorkers`: compute, OpenLineage,
 * the container CLI and (with `host`) the runner's settings. Throws SettingError naming the
 * variable at fault; with `host`, also what loadHostSettings throws.
 */
export async function loadWorkerSettings(env: Env, opts: { host: boolean }): Promise<WorkerSettings> {
  const host = opts.host ? await loadHostSettings(env) : undefined;
  const bundleFile = env.TRAINYARD_WORKFLOW_BUNDLE?.trim();
  return {
    compute: loadComputeConfig(env),
    openLineage: loadOpenLineageConfig(env) ?? null,
    cli: host?.cli ?? (await resolveContainerCli(env).catch(() => undefined)),
    ...(host ? { host } : {}),
    ...(bundleFile ? { workflowBundleFile: bundleFile } : {}),
  };
}

/**
 * `TRAINYARD_TEMPORAL_METRICS_PORT` (1-65535) → `TRAINYARD_HEALTH_BIND or 0.0.0.0:port`, where the
 * Temporal SDK serves its Prometheus metrics; undefined when unset. Throws SettingError otherwise.
 */
export function temporalMetricsAddress(env: Record<string, string | undefined> = process.env): string | undefined {
  const port = setting(env, 'TRAINYARD_TEMPORAL_METRICS_PORT');
  if (port === undefined) return undefined;
  return `${setting(env, 'TRAINYARD_HEALTH_BIND')}:${port}`;
}

let runtimeInstalled = false;
/**
 * Installs the Temporal Runtime once per process: core logs at ERROR only, to stderr, and
 * no signal handlers of its own (`shutdownSignals: []`). The SDK's default handler shuts
 * every Worker down on SIGINT/SIGTERM behind the caller's back, so `trainyard run` could not
 * cancel its run first and the caller's own `shutdown()` then threw "Not running. Current
 * state: DRAINING". Each command handles its signals itself. Call before the first
 * NativeConnection or Worker is made (both install the default Runtime otherwise).
 */
export function quietTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    shutdownSignals: [],
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} },
      // The SDK's own series (workflow/activity task latencies, poll and slot counts, sticky
      // cache) on a port of their own: the Rust core serves them, not our HTTP server.
      ...(temporalMetricsAddress() ? { metrics: { prometheus: { bindAddress: temporalMetricsAddress()! } } } : {}),
    },
    logger: {
      log: noop,
      trace: noop,
      debug: noop,
      info: noop,
      warn: noop,
      error: (m: string) => process.stderr.write(`temporal: ${m}\n`),
    },
  });
}

/** How long a stopping worker lets running steps finish before it stops them (TRAINYARD_SHUTDOWN_GRACE_SECONDS). */
export const DEFAULT_SHUTDOWN_GRACE_MS = SHUTDOWN_GRACE.defaultSeconds * 1000;

/**
 * startWorkers' one configuration object: the connection and store the caller built, and the
 * settings it read once from the environment (loadWorkerSettings).
 */
export interface WorkersConfig {
  connection: NativeConnection;
  /** host:port the connection goes to (the control activities need a client there too). */
  address: string;
  /** TLS / API key for the control activities' own client (Temporal Cloud). */
  connectOptions?: { tls?: TLSConfig | boolean; apiKey?: string };
  namespace?: string;
  store: ArtifactStore;
  /** S3 client settings for s3:// inputs and the EC2 agents' store (app/store.ts s3Settings). */
  s3?: S3ClientConfig;
  workRoot: string;
  hostQueue: string;
  controlQueue?: string;
  /** Activities beyond the engine's; a function when they need the worker's Temporal client. */
  extraActivities?: ExtraActivities | ((client: Client) => ExtraActivities);
  sourceProviders?: { remote?: SourceProvider };
  /** Run no runner on this process (a control-only worker). */
  noHost?: boolean;
  /** What the worker took from its environment (loadWorkerSettings); `host` is required unless noHost. */
  settings: WorkerSettings;
  /** Task queue of the Kubernetes runner (default trainyard-kubernetes); it runs when compute.kubernetes is set. */
  kubernetesQueue?: string;
  /** Kubernetes API clients (default: from the kubeconfig or the in-cluster service account). */
  kube?: KubeClients;
  /**
   * On shutdown: how long running activities may go on before they are cancelled (a step's
   * container is then stopped and the step retried on another runner at once). Default 20 s.
   */
  shutdownGraceMs?: number;
}

export interface RunningWorkers {
  /**
   * Stops polling, lets running activities finish for up to the grace time, then cancels
   * them and waits until they have handed back (a step's container removed). Safe to call
   * more than once; every call resolves when the workers have stopped.
   */
  shutdown(): Promise<void>;
}

/** Runs a Worker until shutdown; a second shutdown() joins the first instead of throwing IllegalStateError. */
function runUntilShutdown(worker: Worker): RunningWorkers {
  const running = worker.run();
  let stopping: Promise<void> | undefined;
  return {
    shutdown() {
      stopping ??= (async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      })();
      return stopping;
    },
  };
}

/**
 * The composition root of a worker process: builds the Temporal client, source providers and
 * compute clients once from `cfg` and hands them to the activity factories. Throws when
 * `cfg.settings.host` is missing without `noHost`, and what the workers' creation throws.
 */
export async function startWorkers(cfg: WorkersConfig): Promise<RunningWorkers> {
  const { compute, openLineage, cli } = cfg.settings;
  if (!cfg.noHost && !cfg.settings.host)
    throw new Error('startWorkers: settings.host is required with a runner (loadWorkerSettings with host: true)');
  const sources = new SourceProviders(new LocalGitSource(join(cfg.workRoot, 'sources')), cfg.sourceProviders?.remote);
  // Lazy: Temporal may restart between the worker's own connection and this one.
  const client = new Client({
    connection: Connection.lazy({ address: cfg.address, ...cfg.connectOptions }),
    namespace: cfg.namespace ?? 'default',
    dataConverter,
  });
  // The EC2 and Kubernetes clients are loaded only where they are configured.
  const kube = compute.kubernetes
    ? (cfg.kube ??
      (await import('../activities/k8s/client.js')).createKubeClients(
        compute.kubernetes.context ? { context: compute.kubernetes.context } : {},
      ))
    : undefined;
  const own = typeof cfg.extraActivities === 'function' ? cfg.extraActivities(client) : cfg.extraActivities;
  // EC2 hosts for `machine:` steps; without TRAINYARD_EC2_* settings these activities
  // fail with a message saying what to configure.
  const wiring = compute.ec2 || compute.kubernetes ? await import('./compute/activities.js') : undefined;
  const extra = {
    ...(wiring ? wiring.computeActivitiesFor(compute, { client, s3: cfg.s3 ?? {} }) : disabledComputeActivities()),
    ...(wiring
      ? wiring.kubernetesActivitiesFor(compute, { client, ...(kube ? { kube } : {}) })
      : disabledKubernetesActivities()),
    ...(own ?? {}),
  };
  const publish = own?.publishStatus;
  const control = await Worker.create({
    connection: cfg.connection,
    namespace: cfg.namespace ?? 'default',
    dataConverter,
    taskQueue: cfg.controlQueue ?? CONTROL_QUEUE,
    workflowBundle: await workflowBundle(cfg.settings.workflowBundleFile),
    interceptors: { activity: [heartbeatWhileRunning()] },
    // Send those heartbeats as they come (the default spaces them 80 % of the timeout apart,
    // which leaves a busy host 4 s of slack before a live activity counts as lost).
    maxHeartbeatThrottleInterval: '3 seconds',
    activities: {
      ...extra,
      ...createControlActivities({
        store: cfg.store,
        sources,
        client,
        ...(cli ? { cli } : {}),
        s3: cfg.s3 ?? {},
        ...(publish ? { publishStatus: publish } : {}),
        ...(openLineage ? { openLineage } : {}),
      }),
    },
    shutdownGraceTime: cfg.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
  });
  const host =
    cfg.noHost || !cfg.settings.host
      ? undefined
      : await startHostWorker({ ...cfg, ...cfg.settings.host, queue: cfg.hostQueue, sources });
  const kubeRunner =
    compute.kubernetes && kube
      ? await startKubernetesWorker({
          ...cfg,
          settings: compute.kubernetes,
          kube,
          sources,
          queue: cfg.kubernetesQueue ?? DEFAULT_K8S_QUEUE,
        })
      : undefined;
  const controlRun = runUntilShutdown(control);
  return {
    async shutdown() {
      await Promise.all([controlRun.shutdown(), host?.shutdown(), kubeRunner?.shutdown()]);
    },
  };
}

/**
 * The Kubernetes runner: creates and follows the Jobs of `kubernetes:` steps routed to `queue`.
 * Throws when the worker's store is not the s3:// store the pods are configured to use.
 */
export async function startKubernetesWorker(cfg: {
  connection: NativeConnection;
  namespace?: string;
  queue: string;
  store: ArtifactStore;
  workRoot: string;
  sources: SourceProvider;
  settings: KubernetesSettings;
  kube: KubeClients;
  shutdownGraceMs?: number;
}): Promise<RunningWorkers> {
  if (cfg.store.location !== cfg.settings.store.replace(/\/+$/, '')) {
    throw new Error(
      `${cfg.settings.source}: the pods' store ${cfg.settings.store} is not this worker's store ${cfg.store.location} (TRAINYARD_STORE); steps on Kubernetes would not find their inputs`,
    );
  }
  const { createKubernetesRunStep } = await import('../activities/k8s/runner.js');
  const worker = await Worker.create({
    connection: cfg.connection,
    namespace: cfg.namespace ?? 'default',
    dataConverter,
    taskQueue: cfg.queue,
    activities: {
      runStep: createKubernetesRunStep({
        store: cfg.store,
        sources: cfg.sources,
        settings: cfg.settings,
        kube: cfg.kube,
        workRoot: cfg.workRoot,
      }),
    },
    maxHeartbeatThrottleInterval: '2 seconds',
    shutdownGraceTime: cfg.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
  });
  const running = runUntilShutdown(worker);
  return {
    async shutdown() {
      await running.shutdown();
    },
  };
}

/** The runner agent: runs step containers for the workflows that route steps to `queue`. */
export async function startHostWorker(
  cfg: {
    connection: NativeConnection;
    namespace?: string;
    queue: string;
    store: ArtifactStore;
    workRoot: string;
    sourceProviders?: { remote?: SourceProvider };
    sources?: SourceProvider;
    hostName?: string;
    shutdownGraceMs?: number;
  } & HostSettings,
): Promise<RunningWorkers> {
  const { secrets, cli } = cfg;
  const sources =
    cfg.sources ?? new SourceProviders(new LocalGitSource(join(cfg.workRoot, 'sources')), cfg.sourceProviders?.remote);
  // Containers of a runner on this host that died (kill -9) before they ended: gone before we poll.
  await removeOrphanedContainers(cli);
  const worker = await Worker.create({
    connection: cfg.connection,
    namespace: cfg.namespace ?? 'default',
    dataConverter,
    taskQueue: cfg.queue,
    activities: createHostActivities({
      store: cfg.store,
      sources,
      cli,
      workRoot: cfg.workRoot,
      hostName: cfg.hostName ?? cfg.queue,
      queue: cfg.queue,
      secrets,
    }),
    // Cancellation reaches an activity through its heartbeat; keep them flowing often.
    maxHeartbeatThrottleInterval: '2 seconds',
    // A step still running when the grace time is up gets WORKER_SHUTDOWN cancellation: the
    // runner removes its container and fails the attempt as retryable (activities/runner/runstep.ts).
    shutdownGraceTime: cfg.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS,
  });
  const running = runUntilShutdown(worker);
  return {
    async shutdown() {
      await running.shutdown();
      // A step kept running for a later attempt to take over (activities/execution.ts) has
      // no activity left to stop it: its container goes with the runner.
      await removeStartedContainers({ 'trainyard.queue': cfg.queue });
    },
  };
}
