// `trainyard worker` and `trainyard agent`: long-running processes that poll Temporal until
// SIGTERM/SIGINT, then drain within the grace time. Loaded only when one of these verbs runs.
import { NativeConnection } from '@temporalio/worker';
import pino from 'pino';
import { openStore, s3Settings } from './store.js';
import { pinoTextHooks } from '../activities/usertext.js';
import { EnvError, loadEngineConfig, temporalConnectOptions } from './config.js';
import { waitForTemporal } from './connect.js';
import { serviceRunOptions } from './engine.js';
import { startHealthServer } from './health.js';
import { gitHostSources, gitHostWorkerPartsFromEnv } from './intake/githostparts.js';
import { loadHostSettings, loadWorkerSettings, quietTemporalRuntime, startHostWorker, startWorkers } from './worker.js';

export interface WorkerFlags {
  /** Overrides TRAINYARD_LOCAL_QUEUE (and clears TRAINYARD_HOST_QUEUE). */
  queue?: string;
  /** Overrides TRAINYARD_CONTROL_QUEUE (worker only). */
  controlQueue?: string;
  /** Worker only: no runner on the local queue. */
  noHost: boolean;
}

/**
 * Runs a control worker (`worker`) or a runner agent (`agent`) until SIGTERM or SIGINT.
 * Returns the exit code (0 once drained). Throws EnvError without TEMPORAL_ADDRESS.
 */
export async function workerCommand(cmd: 'worker' | 'agent', flags: WorkerFlags): Promise<number> {
  // Flags win over the environment; both are checked the same way.
  const cfg = loadEngineConfig({
    ...process.env,
    ...(flags.queue !== undefined ? { TRAINYARD_LOCAL_QUEUE: flags.queue, TRAINYARD_HOST_QUEUE: undefined } : {}),
    ...(flags.controlQueue !== undefined ? { TRAINYARD_CONTROL_QUEUE: flags.controlQueue } : {}),
  });
  if (!cfg.temporalAddress)
    throw new EnvError('TEMPORAL_ADDRESS', `is required for \`trainyard ${cmd}\` (host:port of the Temporal frontend)`);
  quietTemporalRuntime();
  const log = pino({ level: cfg.logLevel, hooks: pinoTextHooks });
  await waitForTemporal(temporalConnectOptions(cfg, cfg.temporalAddress), log);
  const connection = await NativeConnection.connect(temporalConnectOptions(cfg, cfg.temporalAddress));
  const store = openStore(cfg);
  let running;
  if (cmd === 'agent') {
    const sources = gitHostSources(process.env, cfg.workRoot, log);
    running = await startHostWorker({
      connection,
      namespace: cfg.temporalNamespace,
      queue: cfg.localQueue,
      store,
      workRoot: cfg.workRoot,
      shutdownGraceMs: cfg.shutdownGraceMs,
      ...(await loadHostSettings(process.env)),
      ...(sources ? { sourceProviders: sources } : {}),
    });
    log.info({ queue: cfg.localQueue, store: store.location }, 'runner agent ready');
  } else {
    const extra = gitHostWorkerPartsFromEnv(process.env, store, cfg.workRoot, log, () => serviceRunOptions(cfg));
    running = await startWorkers({
      connection,
      address: cfg.temporalAddress,
      connectOptions: temporalConnectOptions(cfg, cfg.temporalAddress),
      namespace: cfg.temporalNamespace,
      store,
      s3: s3Settings(cfg),
      settings: await loadWorkerSettings(process.env, { host: !flags.noHost }),
      workRoot: cfg.workRoot,
      hostQueue: cfg.localQueue,
      controlQueue: cfg.controlQueue,
      noHost: flags.noHost,
      shutdownGraceMs: cfg.shutdownGraceMs,
      ...extra,
    });
    if (process.env.TRAINYARD_EC2_SUBNETS || process.env.TRAINYARD_K8S_CONFIG) {
      const { Client, Connection } = await import('@temporalio/client');
      const client = new Client({
        connection: await Connection.connect(temporalConnectOptions(cfg, cfg.temporalAddress)),
        namespace: cfg.temporalNamespace,
        dataConverter: (await import('./codec.js')).dataConverter,
      });
      const r = await (
        await import('./reaper.js')
      ).ensureReaperSchedule(client, { input: { kubernetes: !!process.env.TRAINYARD_K8S_CONFIG } });
      log.info(r, 'reaper schedule in place (EC2 instances, Kubernetes Jobs)');
    }
    log.info(
      { controlQueue: cfg.controlQueue, localQueue: flags.noHost ? undefined : cfg.localQueue, store: store.location },
      'worker ready',
    );
  }
  const health = await startHealthServer(process.env, {
    role: cmd,
    queues: cmd === 'agent' ? [cfg.localQueue] : [cfg.controlQueue, ...(flags.noHost ? [] : [cfg.localQueue])],
  });
  // SIGTERM (every Kubernetes rollout) or SIGINT: stop polling, let running steps finish
  // within the grace time, then stop their containers and hand them back for a retry.
  const signal = await new Promise<NodeJS.Signals>((r) => {
    process.once('SIGINT', r);
    process.once('SIGTERM', r);
  });
  const again = (s: NodeJS.Signals) =>
    log.warn(
      { signal: s, graceSeconds: cfg.shutdownGraceMs / 1000 },
      'already stopping: running steps are handed back when the grace time is up',
    );
  process.on('SIGINT', again);
  process.on('SIGTERM', again);
  log.info(
    { signal, graceSeconds: cfg.shutdownGraceMs / 1000 },
    'stopping: no new tasks; running steps may finish within the grace time',
  );
  health?.stopping();
  await running.shutdown();
  await health?.close();
  await connection.close();
  log.info('stopped');
  return 0;
}
