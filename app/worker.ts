// Workers: the control worker (workflows + control activities) and the runner agent of a
// compute host (the container activity on that host's own task queue).
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createControlActivities, createHostActivities } from '../activities/engine.js';
import { heartbeatWhileRunning } from '../activities/liveness.js';
import { removeOrphanedContainers } from '../activities/step.js';
import { resolveContainerCli } from '../activities/container/cli.js';
import { LocalGitSource, SourceProviders } from '../activities/source/local.js';
import type { SourceProvider } from '../activities/source/types.js';
import type { ArtifactStore } from '../activities/store/types.js';
import type { PublishRequest } from '../workflows/types.js';
import { createKubeClients, type KubeClients } from '../activities/k8s/client.js';
import { createKubernetesRunStep } from '../activities/k8s/runner.js';
import { DEFAULT_K8S_QUEUE, type KubernetesSettings } from '../activities/k8s/types.js';
import { computeActivitiesFor, kubernetesActivitiesFor } from './compute/activities.js';
import { loadComputeConfig, type ComputeConfig } from './compute/config.js';
import { dataConverter } from './codec.js';
import { CONTROL_QUEUE } from './engine.js';

const here = dirname(fileURLToPath(import.meta.url));
export const WORKFLOWS_PATH = join(here, '..', 'workflows', 'index.ts');

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/**
 * The workflow bundle, built once per process (webpack: a few seconds), or read from the
 * file TRAINYARD_WORKFLOW_BUNDLE names: the container image builds it ahead (its bundled
 * CLI has no webpack), see deploy/image/.
 */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  const prebuilt = process.env.TRAINYARD_WORKFLOW_BUNDLE?.trim();
  bundle ??= prebuilt
    ? readFile(prebuilt, 'utf8').then(
      (code) => ({ code, sourceMap: '' }),
      (e: Error) => { throw new Error(`TRAINYARD_WORKFLOW_BUNDLE: cannot read ${prebuilt}: ${e.message}`); },
    )
    : bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const noop = (): void => undefined;
const quietBundlerLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: (m: string) => console.error(m), log: noop };

type AnyActivity = (...args: never[]) => Promise<unknown>;

export interface WorkersConfig {
  connection: NativeConnection;
  /** host:port the connection goes to (the control activities need a client there too). */
  address?: string;
  /** TLS / API key for the control activities' own client (Temporal Cloud). */
  connectOptions?: { tls?: boolean; apiKey?: string };
  namespace?: string;
  store: ArtifactStore;
  workRoot: string;
  hostQueue: string;
  controlQueue?: string;
  /** Activities beyond the engine's; a function when they need the worker's Temporal client. */
  extraActivities?: Record<string, AnyActivity> | ((client: Client) => Record<string, AnyActivity>);
  sourceProviders?: { remote?: SourceProvider };
  /** Run no runner on this process (a control-only worker). */
  noHost?: boolean;
  /** Server compute settings (default: loaded from the environment). */
  compute?: ComputeConfig;
  /** Task queue of the Kubernetes runner (default trainyard-kubernetes); it runs when compute.kubernetes is set. */
  kubernetesQueue?: string;
  /** Kubernetes API clients (default: from the kubeconfig or the in-cluster service account). */
  kube?: KubeClients;
}

export interface RunningWorkers {
  shutdown(): Promise<void>;
}

export async function startWorkers(cfg: WorkersConfig): Promise<RunningWorkers> {
  const sources = new SourceProviders(new LocalGitSource(join(cfg.workRoot, 'sources')), cfg.sourceProviders?.remote);
  const cli = await resolveContainerCli().catch(() => undefined);
  // Lazy: Temporal may restart between the worker's own connection and this one.
  const client = new Client({ connection: Connection.lazy({ address: cfg.address ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233', ...cfg.connectOptions }), namespace: cfg.namespace ?? 'default', dataConverter });
  // EC2 hosts for `machine:` steps; without TRAINYARD_EC2_* settings these activities
  // fail with a message saying what to configure.
  const compute = cfg.compute ?? loadComputeConfig(process.env);
  const kube = compute.kubernetes ? (cfg.kube ?? createKubeClients(compute.kubernetes.context ? { context: compute.kubernetes.context } : {})) : undefined;
  const own = typeof cfg.extraActivities === 'function' ? cfg.extraActivities(client) : cfg.extraActivities;
  const extra = { ...computeActivitiesFor(compute, { client }), ...kubernetesActivitiesFor(compute, { client, ...(kube ? { kube } : {}) }), ...(own ?? {}) };
  const publish = (extra as Record<string, unknown>).publishStatus as ((r: PublishRequest) => Promise<void>) | undefined;
  const control = await Worker.create({
    connection: cfg.connection,
    namespace: cfg.namespace ?? 'default',
    dataConverter,
    taskQueue: cfg.controlQueue ?? CONTROL_QUEUE,
    workflowBundle: await workflowBundle(),
    interceptors: { activity: [heartbeatWhileRunning()] },
    // Send those heartbeats as they come (the default spaces them 80 % of the timeout apart,
    // which leaves a busy host 4 s of slack before a live activity counts as lost).
    maxHeartbeatThrottleInterval: '3 seconds',
    activities: { ...extra, ...createControlActivities({ store: cfg.store, sources, client, ...(cli ? { cli } : {}), ...(publish ? { publishStatus: publish } : {}) }) },
  });
  const host = cfg.noHost ? undefined : await startHostWorker({ ...cfg, queue: cfg.hostQueue, sources });
  const kubeRunner = compute.kubernetes && kube ? await startKubernetesWorker({ ...cfg, settings: compute.kubernetes, kube, sources, queue: cfg.kubernetesQueue ?? DEFAULT_K8S_QUEUE }) : undefined;
  const running = control.run();
  return {
    async shutdown() {
      control.shutdown();
      await running;
      await host?.shutdown();
      await kubeRunner?.shutdown();
    },
  };
}

/**
 * The Kubernetes runner: creates and follows the Jobs of `kubernetes:` steps routed to `queue`.
 * Throws when the worker's store is not the s3:// store the pods are configured to use.
 */
export async function startKubernetesWorker(cfg: { connection: NativeConnection; namespace?: string; queue: string; store: ArtifactStore; workRoot: string; sources: SourceProvider; settings: KubernetesSettings; kube: KubeClients }): Promise<RunningWorkers> {
  if (cfg.store.location !== cfg.settings.store.replace(/\/+$/, '')) {
    throw new Error(`${cfg.settings.source}: the pods' store ${cfg.settings.store} is not this worker's store ${cfg.store.location} (TRAINYARD_STORE); steps on Kubernetes would not find their inputs`);
  }
  const worker = await Worker.create({
    connection: cfg.connection,
    namespace: cfg.namespace ?? 'default',
    dataConverter,
    taskQueue: cfg.queue,
    activities: { runStep: createKubernetesRunStep({ store: cfg.store, sources: cfg.sources, settings: cfg.settings, kube: cfg.kube, workRoot: cfg.workRoot }) },
    maxHeartbeatThrottleInterval: '2 seconds',
  });
  const running = worker.run();
  return {
    async shutdown() {
      worker.shutdown();
      await running;
    },
  };
}

/** The runner agent: runs step containers for the workflows that route steps to `queue`. */
export async function startHostWorker(cfg: { connection: NativeConnection; namespace?: string; queue: string; store: ArtifactStore; workRoot: string; sourceProviders?: { remote?: SourceProvider }; sources?: SourceProvider; hostName?: string }): Promise<RunningWorkers> {
  const sources = cfg.sources ?? new SourceProviders(new LocalGitSource(join(cfg.workRoot, 'sources')), cfg.sourceProviders?.remote);
  const cli = await resolveContainerCli();
  // Containers of a runner on this host that died (kill -9) before they ended: gone before we poll.
  await removeOrphanedContainers(cli);
  const worker = await Worker.create({
    connection: cfg.connection,
    namespace: cfg.namespace ?? 'default',
    dataConverter,
    taskQueue: cfg.queue,
    activities: createHostActivities({ store: cfg.store, sources, cli, workRoot: cfg.workRoot, hostName: cfg.hostName ?? cfg.queue, queue: cfg.queue }),
    // Cancellation reaches an activity through its heartbeat; keep them flowing often.
    maxHeartbeatThrottleInterval: '2 seconds',
  });
  const running = worker.run();
  return {
    async shutdown() {
      worker.shutdown();
      await running;
    },
  };
}
