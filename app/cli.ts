// The `trainyard` command.
// Only what --help, validate and the error messages need is imported here; each verb
// imports the rest (Temporal, the AWS SDK, Probot, Kubernetes) when it runs.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ContainerCliUnavailableError } from '../activities/container/cli.js';
import { EnvError, loadEngineConfig, temporalConnectOptions } from './config.js';
import { ProjectError, findProject } from './local/project.js';
import { UsageError } from './local/errors.js';

const HELP = `trainyard — GitOps ML pipelines

  trainyard run [-C DIR] [--pipeline NAME] [--param k=v]... [--no-cache] [--parallelism N] [--report FILE]
      Run a pipeline of this checkout (HEAD, plus uncommitted changes to tracked files)
      on this machine and print its lineage report. Exit 0 success, 1 failure, 130 cancelled.
  trainyard validate [-C DIR]       Check every .trainyard/*.yaml; print each error as file:line:column.
  trainyard explain STEP [-C DIR] [--pipeline NAME] [--param k=v]...
      What goes into STEP's cache key at the commit \`run\` would use, and what changed since its last execution.
  trainyard lineage <digest|run-id> Which runs produced / consumed an artifact, or a run's summary.
  trainyard init [-C DIR] [--name NAME | --from flowers]
      Create .trainyard/NAME.yaml (a starter that runs as it is, with the scripts it runs when
      they are missing) or copy an example; never overwrites a file.
  trainyard worker [--no-host] [--control-queue Q] [--queue Q]
                                    Control worker (workflows, webhook intake, git-host status) and,
                                    unless --no-host, a runner on the local queue (needs TEMPORAL_ADDRESS).
  trainyard agent [--queue Q]       Runner agent: runs the steps routed to Q, by default the shared
                                    local queue TRAINYARD_LOCAL_QUEUE (needs TEMPORAL_ADDRESS).
  trainyard serve                   Webhook server for GitHub and GitLab (see README).
  trainyard doctor                  Check the settings, Temporal, the store, git hosts, AWS, Kubernetes.
  trainyard gc [--older-than 90d] [--keep-last 5] [--grace 24h] [--apply] [--json]
                                    Delete what no kept run, cache record or open run uses from the store (dry run by default).
  trainyard runs [--repo R] [--commit SHA] [--branch B] [--pipeline P] [--status S] [--limit N] [--json]
                                    Runs from Temporal visibility, newest first (needs TEMPORAL_ADDRESS).
  trainyard setup-temporal          Register the run search attributes in TEMPORAL_NAMESPACE.

Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TRAINYARD_STORE (path or s3://bucket/prefix),
TRAINYARD_CONTAINER_CLI (docker|podman), TRAINYARD_PARALLELISM, TRAINYARD_WORK_DIR, TRAINYARD_LOG_LEVEL,
TRAINYARD_CONTROL_QUEUE (trainyard), TRAINYARD_LOCAL_QUEUE (trainyard-local),
TRAINYARD_HEALTH_PORT (worker and agent answer GET /healthz and GET /metrics there),
TRAINYARD_TEMPORAL_METRICS_PORT (the Temporal SDK's Prometheus metrics).
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run': {
      const { values } = parseArgs({
        args: rest, strict: true,
        options: {
          dir: { type: 'string', short: 'C', default: '.' }, pipeline: { type: 'string', short: 'p' },
          param: { type: 'string', multiple: true, default: [] }, 'no-cache': { type: 'boolean', default: false },
          parallelism: { type: 'string' }, report: { type: 'string' }, quiet: { type: 'boolean', short: 'q', default: false },
        },
      });
      const par = values.parallelism === undefined ? undefined : Number(values.parallelism);
      if (par !== undefined && !(Number.isInteger(par) && par > 0)) throw new UsageError(`--parallelism must be a positive whole number, got ${values.parallelism}`);
      const { runCommand } = await import('./local/run.js');
      return runCommand({
        dir: values.dir!, params: values.param!, noCache: values['no-cache']!, quiet: values.quiet!,
        ...(values.pipeline ? { pipeline: values.pipeline } : {}), ...(par ? { parallelism: par } : {}),
        ...(values.report ? { reportFile: resolve(values.report) } : {}),
      });
    }
    case 'validate': {
      const { values } = parseArgs({ args: rest, strict: true, options: { dir: { type: 'string', short: 'C', default: '.' } } });
      const project = await findProject(values.dir!);
      const [{ loadPipelines }, { formatPipelineError }, { terminalText }] = await Promise.all([import('../pipeline/load.js'), import('../pipeline/parse.js'), import('../activities/usertext.js')]);
      const { pipelines, errors } = await loadPipelines(project.projectRoot);
      for (const e of errors) process.stderr.write(`${terminalText(formatPipelineError(e))}\n`);
      if (errors.length) return 1;
      process.stdout.write(`ok: ${pipelines.length} pipeline(s): ${pipelines.map((p) => `${p.name} (${Object.keys(p.steps).length} steps)`).join(', ')}\n`);
      return 0;
    }
    case 'explain':
      return (await import('./local/explain.js')).explainCommand(rest);
    case 'lineage': {
      const { positionals } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: {} });
      if (positionals.length !== 1) throw new UsageError('usage: trainyard lineage <sha256:digest | run-id>');
      const { createStore } = await import('../activities/store/factory.js');
      const { formatLineageAnswer, lineageOf } = await import('../activities/lineage/index.js');
      const store = createStore(loadEngineConfig().store);
      const answer = await lineageOf(store, positionals[0]!);
      process.stdout.write(`${formatLineageAnswer(answer)}\n`);
      return answer.kind === 'not_found' || answer.kind === 'ambiguous' ? 1 : 0;
    }
    case 'init': {
      const { values } = parseArgs({ args: rest, strict: true, options: { dir: { type: 'string', short: 'C', default: '.' }, name: { type: 'string' }, from: { type: 'string' } } });
      const { initProject, initSummary } = await import('./local/init.js');
      const result = await initProject({ dir: values.dir!, ...(values.name !== undefined ? { name: values.name } : {}), ...(values.from !== undefined ? { from: values.from } : {}) });
      process.stdout.write(initSummary(result));
      return 0;
    }
    case 'worker':
    case 'agent': {
      const { values } = parseArgs({ args: rest, strict: true, options: { queue: { type: 'string' }, 'control-queue': { type: 'string' }, 'no-host': { type: 'boolean', default: false } } });
      // Flags win over the environment; both are checked the same way.
      const cfg = loadEngineConfig({
        ...process.env,
        ...(values.queue !== undefined ? { TRAINYARD_LOCAL_QUEUE: values.queue, TRAINYARD_HOST_QUEUE: undefined } : {}),
        ...(values['control-queue'] !== undefined ? { TRAINYARD_CONTROL_QUEUE: values['control-queue'] } : {}),
      });
      if (!cfg.temporalAddress) throw new EnvError('TEMPORAL_ADDRESS', `is required for \`trainyard ${cmd}\` (host:port of the Temporal frontend)`);
      const [{ NativeConnection }, { default: pino }, { pinoTextHooks }, { createStore }, { waitForTemporal }, { serviceRunOptions }, { startHealthServer }, { gitHostSources }, { quietTemporalRuntime, startHostWorker, startWorkers }] = await Promise.all([
        import('@temporalio/worker'), import('pino'), import('../activities/usertext.js'), import('../activities/store/factory.js'), import('./connect.js'),
        import('./engine.js'), import('./health.js'), import('./intake/workers.js'), import('./worker.js'),
      ]);
      quietTemporalRuntime();
      const log = pino({ level: cfg.logLevel, hooks: pinoTextHooks });
      await waitForTemporal(temporalConnectOptions(cfg, cfg.temporalAddress), log);
      const connection = await NativeConnection.connect(temporalConnectOptions(cfg, cfg.temporalAddress));
      const store = createStore(cfg.store);
      let running;
      if (cmd === 'agent') {
        const sources = gitHostSources(process.env, cfg.workRoot, log);
        running = await startHostWorker({ connection, namespace: cfg.temporalNamespace, queue: cfg.localQueue, store, workRoot: cfg.workRoot, shutdownGraceMs: cfg.shutdownGraceMs, ...(sources ? { sourceProviders: sources } : {}) });
        log.info({ queue: cfg.localQueue, store: store.location }, 'runner agent ready');
      } else {
        const extra = (await import('./workerparts.js')).workerParts(process.env, store, cfg.workRoot, log, () => serviceRunOptions(cfg));
        running = await startWorkers({ connection, address: cfg.temporalAddress, connectOptions: temporalConnectOptions(cfg, cfg.temporalAddress), namespace: cfg.temporalNamespace, store, workRoot: cfg.workRoot, hostQueue: cfg.localQueue, controlQueue: cfg.controlQueue, noHost: values['no-host']!, shutdownGraceMs: cfg.shutdownGraceMs, ...extra });
        if (process.env.TRAINYARD_EC2_SUBNETS || process.env.TRAINYARD_K8S_CONFIG) {
          const { Client, Connection } = await import('@temporalio/client');
          const client = new Client({ connection: await Connection.connect(temporalConnectOptions(cfg, cfg.temporalAddress)), namespace: cfg.temporalNamespace, dataConverter: (await import('./codec.js')).dataConverter });
          const r = await (await import('./reaper.js')).ensureReaperSchedule(client, { input: { kubernetes: !!process.env.TRAINYARD_K8S_CONFIG } });
          log.info(r, 'reaper schedule in place (EC2 instances, Kubernetes Jobs)');
        }
        log.info({ controlQueue: cfg.controlQueue, localQueue: values['no-host'] ? undefined : cfg.localQueue, store: store.location }, 'worker ready');
      }
      const health = await startHealthServer(process.env, { role: cmd, queues: cmd === 'agent' ? [cfg.localQueue] : [cfg.controlQueue, ...(values['no-host'] ? [] : [cfg.localQueue])] });
      // SIGTERM (every Kubernetes rollout) or SIGINT: stop polling, let running steps finish
      // within the grace time, then stop their containers and hand them back for a retry.
      const signal = await new Promise<NodeJS.Signals>((r) => { process.once('SIGINT', r); process.once('SIGTERM', r); });
      const again = (s: NodeJS.Signals) => log.warn({ signal: s, graceSeconds: cfg.shutdownGraceMs / 1000 }, 'already stopping: running steps are handed back when the grace time is up');
      process.on('SIGINT', again);
      process.on('SIGTERM', again);
      log.info({ signal, graceSeconds: cfg.shutdownGraceMs / 1000 }, 'stopping: no new tasks; running steps may finish within the grace time');
      health?.stopping();
      await running.shutdown();
      await health?.close();
      await connection.close();
      log.info('stopped');
      return 0;
    }
    case 'doctor':
      return (await import('./doctor.js')).doctorCommand();
    case 'gc':
      return (await import('./gc.js')).gcCommand(rest);
    case 'runs':
      return (await import('./visibility.js')).runsCommand(rest);
    case 'setup-temporal':
      return (await import('./visibility.js')).setupTemporalCommand(rest);
    case 'serve': {
      await (await import('./serve.js')).serveCommand(rest);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(cmd)}\n\n${HELP}`);
  }
}

// A closed stdout or stderr (`trainyard run | head -1`) must not crash a command midway:
// Node reports EPIPE as an 'error' event on the stream, which unhandled kills the process
// and orphans what it started. The output is lost; the run, its report file and the exit
// code are not.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    const { ConfigError } = await import('./intake/config.js');
    const known = err instanceof UsageError || err instanceof ProjectError || err instanceof EnvError || err instanceof ConfigError || err instanceof ContainerCliUnavailableError;
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`trainyard: ${msg}\n`);
    if (!known && !msg.includes((await import('./devserver.js')).TEMPORAL_INSTALL_HINT) && process.env.TRAINYARD_DEBUG) console.error(err);
    process.exit(2);
  },
);
