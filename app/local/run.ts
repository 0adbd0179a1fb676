// `trainyard run`: the same workflow code, cache and report as the service, on this
// machine: Temporal (TEMPORAL_ADDRESS, or a dev server started for the command), the
// control worker and this host's runner in-process, containers through docker/podman.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { removeStartedContainers } from '../../activities/container/run.js';
import { removeOwnEnvDirs } from '../../activities/container/envfile.js';
import { warmImageKeys } from '../../activities/prepare.js';
import { LocalGitSource } from '../../activities/source/local.js';
import { openStore, s3Settings } from '../store.js';
import { reportKeyOf } from '../../activities/store/keys.js';
import { terminalText } from '../../activities/usertext.js';
import { formatPipelineError } from '../../pipeline/parse.js';
import { loadPipelines } from '../../pipeline/load.js';
import { parseParamArgs, resolveParams } from '../../pipeline/params.js';
import type { Pipeline } from '../../pipeline/types.js';
import type { RunInput, RunStatus } from '../../model/types.js';
import { dataConverter } from '../codec.js';
import { loadEngineConfig, temporalConnectOptions, type EngineConfig } from '../config.js';
import { startDevServer, type DevServer } from '../devserver.js';
import { spawnGuard, type Guard } from '../guard.js';
import { cancelPipelineRun, defaultRunOptions, localHostQueue, startPipelineRun } from '../engine.js';
import { loadWorkerSettings, quietTemporalRuntime, startWorkers, type RunningWorkers } from '../worker.js';
import { UsageError } from './errors.js';
import { phase } from './phases.js';
import type { EarlyServer } from './embedded.js';
import { currentBranch } from './branch.js';
import { findProject, snapshot } from './project.js';
import { TemporalUnreachableError, followRun } from './follow.js';
import { LiveTable } from './table.js';
import { runStatusJson } from './runcmds.js';
import type { LineageDoc } from '../../activities/lineage/document.js';

export interface RunArgs {
  dir: string;
  pipeline?: string;
  params: string[];
  noCache: boolean;
  parallelism?: number;
  reportFile?: string;
  quiet: boolean;
  /** Print one JSON object on stdout at the end (runStatusJson plus lineage, cost and report file) instead of the report. */
  json?: boolean;
  /** The embedded server, already starting (app/local/embedded.ts); stopped here when the command ends before using it. */
  earlyServer?: EarlyServer;
}

/** Re-exported for the modules that import it from here. */
export { UsageError };

export const newRunId = (): string =>
  `run-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;

/** Re-exported for the tests and benchmarks that import it from here. */
export { quietTemporalRuntime };

/** Returns the process exit code. */
export async function runCommand(args: RunArgs): Promise<number> {
  let handedOver = false;
  try {
    return await checkAndRun(args, () => (handedOver = true));
  } finally {
    // Bad input, a missing container CLI …: the server started ahead of need must not outlive the command.
    if (!handedOver) await args.earlyServer?.discard();
  }
}

async function checkAndRun(args: RunArgs, handOver: () => void): Promise<number> {
  phase('loaded');
  const cfg = loadEngineConfig();
  const project = await findProject(args.dir);
  const snap = await snapshot(project);
  if (snap.dirtyBase)
    process.stderr.write(
      `note: uncommitted changes to tracked files are included (snapshot ${snap.commit.slice(0, 12)} of HEAD ${snap.dirtyBase.slice(0, 12)})\n`,
    );
  if (snap.untracked.length)
    process.stderr.write(
      `note: ${snap.untracked.length} untracked file(s) are not part of the run (e.g. ${snap.untracked.slice(0, 3).join(', ')}); git add them to include them\n`,
    );
  if (snap.conflicted.length)
    process.stderr.write(
      `note: ${snap.conflicted.length} file(s) with unresolved merge conflicts are included as they are in the working tree (${snap.conflicted.slice(0, 3).join(', ')})\n`,
    );
  if (snap.submodules.length)
    process.stderr.write(
      `note: submodule(s) ${snap.submodules.slice(0, 3).join(', ')} are not part of the run: steps see an empty folder there\n`,
    );

  const checkout = await new LocalGitSource(join(cfg.workRoot, 'sources')).checkout({
    kind: 'git',
    repoPath: project.repoPath,
    commit: snap.commit,
    subdir: project.subdir,
  });
  const loaded = await loadPipelines(checkout);
  if (loaded.errors.length) {
    for (const e of loaded.errors) process.stderr.write(`${terminalText(formatPipelineError(e))}\n`);
    process.stderr.write(`nothing ran: ${loaded.errors.length} error(s) in the pipeline files\n`);
    return 2;
  }
  const pipeline = choosePipeline(loaded.pipelines, args.pipeline);
  const { given, errors: argErrors } = parseParamArgs(args.params);
  const { values, errors } = resolveParams(pipeline, given);
  if (argErrors.length || errors.length) throw new UsageError([...argErrors, ...errors].join('\n'));
  const cli = await resolveContainerCli(process.env); // fails early with how to install docker/podman
  // The cache lookups need each image's local id: look them up while the server starts.
  warmImageKeys(
    cli,
    Object.values(pipeline.steps).map((st) => st.image),
  );
  const branch = await currentBranch(project.repoPath);

  quietTemporalRuntime();
  const run = new InterruptibleRun(cfg, args.earlyServer);
  handOver();
  try {
    return await run.execute(async () => {
      phase('checked');
      const address = cfg.temporalAddress ?? (await run.startEmbeddedServer());
      phase('server ready');
      const connectOptions = temporalConnectOptions(cfg, address);
      const native = run.closeLater(await NativeConnection.connect(connectOptions));
      const connection = run.closeLater(await Connection.connect(connectOptions));
      const client = new Client({ connection, namespace: cfg.temporalNamespace, dataConverter });
      const store = openStore(cfg);
      // Workers stop only once the run is over or Temporal is gone: a step still running then
      // has nobody to report to, so no grace time.
      run.stopLater(
        await startWorkers({
          connection: native,
          address,
          connectOptions,
          namespace: cfg.temporalNamespace,
          store,
          s3: s3Settings(cfg),
          settings: await loadWorkerSettings(process.env, { host: true }),
          workRoot: cfg.workRoot,
          hostQueue: localHostQueue(),
          shutdownGraceMs: 0,
        }),
      );
      phase('workers ready');
      const runId = newRunId();
      const input: RunInput = {
        runId,
        pipeline,
        params: values,
        source: {
          kind: 'git',
          repoPath: project.repoPath,
          commit: snap.commit,
          subdir: project.subdir,
          ...(snap.dirtyBase ? { dirtyBase: snap.dirtyBase } : {}),
        },
        trigger: { kind: 'cli', user: safeUser(), ...(branch ? { branch } : {}) },
        status: { kind: 'none' },
        options: defaultRunOptions({
          noCache: args.noCache,
          parallelism: args.parallelism ?? cfg.parallelism,
          heartbeatTimeoutMs: cfg.heartbeatTimeoutMs,
        }),
      };
      const workflowId = `cli:${pipeline.name}:${runId}`;
      if (run.interrupted) return run.interruptedBeforeStart();
      await startPipelineRun(client, input, { workflowId, reuse: 'allow-duplicate' });
      run.started({ client, workflowId, runId, address });
      if (!args.quiet)
        process.stderr.write(
          `run ${runId}: pipeline ${pipeline.name} at ${snap.commit.slice(0, 12)} (store ${store.location})\n`,
        );
      const table = args.quiet ? undefined : new LiveTable(process.stderr);
      const final = await followRun(client, workflowId, {
        address,
        unreachableMs: cfg.temporalUnreachableMs,
        say: (line) => process.stderr.write(`${line}\n`),
        onStatus: (st) => table?.update(st),
        onTick: () => run.retryCancel(),
        ...(run.serverLost ? { abort: run.serverLost } : {}),
      });
      table?.update(final);
      const report = await store.getRecord<{ markdown: string }>(reportKeyOf(runId));
      const reportFile = args.reportFile ?? join(cfg.reportsDir, `${runId}.md`);
      if (report) {
        await mkdir(join(reportFile, '..'), { recursive: true });
        await writeFile(reportFile, report.markdown);
        if (!args.quiet && !args.json) process.stdout.write(`\n${report.markdown}\n`);
      }
      process.stderr.write(
        `${final.state}: report ${report ? reportFile : '(not written)'}; lineage: trainyard lineage ${runId}\n`,
      );
      if (args.json) {
        const doc = final.lineageKey ? await store.getRecord<LineageDoc>(final.lineageKey) : undefined;
        process.stdout.write(
          `${JSON.stringify(
            {
              ...runStatusJson(final, workflowId),
              conclusion: doc?.conclusion ?? null,
              costUsd: doc?.totals.costUsd ?? null,
              totals: doc?.totals ?? null,
              reportFile: report ? reportFile : null,
            },
            null,
            2,
          )}\n`,
        );
      }
      phase('run finished');
      if (run.interrupted) return 130;
      return final.state === 'succeeded' ? 0 : final.state === 'cancelled' ? 130 : 1;
    });
  } finally {
    run.dispose();
  }
}

interface StartedRun {
  client: Client;
  workflowId: string;
  runId: string;
  address: string;
}

/**
 * What `trainyard run` holds while it talks to Temporal — the embedded server, connections,
 * workers, the started run — and what SIGINT/SIGTERM do to it:
 * - the first signal cancels the run (or, before it started, starts nothing); the command
 *   waits for the clean-up, prints the report and exits 130;
 * - a second signal leaves at once: it removes the containers this process started and stops
 *   the embedded server, then exits 130.
 * A watchdog (app/guard.ts) stops the embedded server and removes the step containers should
 * this process die without doing so, even by SIGKILL.
 */
class InterruptibleRun {
  interrupted: NodeJS.Signals | undefined;
  serverLost: Promise<never> | undefined;
  private dev: DevServer | undefined;
  /** The watchdog: the embedded server's, or one of its own with TEMPORAL_ADDRESS. */
  private guard: Guard | undefined;
  private run: StartedRun | undefined;
  private cancelSent = false;
  private readonly closers: Array<() => Promise<void>> = [];
  private readonly onSignal = (sig: NodeJS.Signals): void => {
    if (this.interrupted) {
      void this.leaveNow(sig);
      return;
    }
    this.interrupted = sig;
    process.stderr.write(
      `\n${sig}: cancelling — stopping containers and cleaning up (Ctrl-C again to leave without waiting)\n`,
    );
    void this.retryCancel();
  };

  constructor(
    private readonly cfg: EngineConfig,
    private readonly early?: EarlyServer,
  ) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /**
   * Runs `body`, then stops what it started (workers, connections, containers left, the
   * embedded server), in that order. When Temporal stayed unreachable too long, says what
   * was left open and returns 2.
   */
  async execute(body: () => Promise<number>): Promise<number> {
    let code: number;
    let gaveUp: TemporalUnreachableError | undefined;
    if (this.cfg.temporalAddress) {
      this.guard = spawnGuard();
      this.guard.followContainers();
    }
    try {
      code = await body();
    } catch (err) {
      if (!(err instanceof TemporalUnreachableError)) throw err;
      gaveUp = err;
      code = 2;
    } finally {
      for (const close of this.closers.reverse())
        await close().catch((e: unknown) => {
          if (process.env.TRAINYARD_DEBUG) console.error('close failed', e);
        });
      phase('workers stopped');
      // Workers that could not hand their steps back (Temporal gone) leave their containers: remove them.
      const left = await removeStartedContainers();
      if (left.length) process.stderr.write(`removed ${left.length} container(s) of this run: ${left.join(', ')}\n`);
      phase('containers checked');
      await this.guard?.close();
      // Started ahead of need but never taken (the body ended before): stop it all the same.
      if (this.early && !this.dev) await this.early.discard();
      phase('server stopped');
    }
    if (gaveUp) process.stderr.write(this.gaveUpMessage(gaveUp));
    return code;
  }

  async startEmbeddedServer(): Promise<string> {
    this.dev = await (this.early ? this.early.take() : startDevServer());
    this.guard = this.dev.guard;
    this.guard.followContainers();
    this.serverLost = this.dev.exited.then(({ expected, detail }) => {
      if (expected) return new Promise<never>(() => undefined);
      throw new Error(`the embedded Temporal server stopped unexpectedly (${detail}); the run is lost with it`);
    });
    this.serverLost.catch(() => undefined);
    return this.dev.address;
  }

  closeLater<T extends { close(): Promise<void> }>(c: T): T {
    this.closers.push(() => c.close());
    return c;
  }

  stopLater(w: RunningWorkers): void {
    this.closers.push(() => w.shutdown());
  }

  started(run: StartedRun): void {
    this.run = run;
  }

  interruptedBeforeStart(): number {
    process.stderr.write('cancelled before the run started: nothing ran\n');
    return 130;
  }

  /** Sends the cancel request once a signal came; an outage may swallow it, so each tick retries until one is accepted. */
  async retryCancel(): Promise<void> {
    if (!this.interrupted || this.cancelSent || !this.run) return;
    try {
      await this.run.client.withDeadline(Date.now() + 10_000, () =>
        cancelPipelineRun(this.run!.client, this.run!.workflowId),
      );
      this.cancelSent = true;
    } catch {
      // The next tick tries again.
    }
  }

  private async leaveNow(sig: NodeJS.Signals): Promise<void> {
    process.stderr.write(
      `\n${sig} again: leaving now — removing this run's containers${this.dev ? ' and stopping the embedded Temporal server' : ''}\n`,
    );
    const bounded = (p: Promise<unknown>) =>
      Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 15_000))]);
    await Promise.all([bounded(removeStartedContainers()), bounded(this.guard?.close() ?? Promise.resolve())]);
    // After the containers: a start still under way reads its env file until then.
    await bounded(removeOwnEnvDirs());
    if (this.run && !this.dev) {
      process.stderr.write(
        `run ${this.run.runId} may still be cancelling in Temporal at ${this.run.address}; to stop it: ${cancelCommand(this.cfg, this.run)}\n`,
      );
    }
    process.exit(130);
  }

  private gaveUpMessage(err: TemporalUnreachableError): string {
    const r = this.run;
    const lines = [
      `trainyard: ${err.message}: giving up (TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS=${Math.round(this.cfg.temporalUnreachableMs / 1000)}).`,
    ];
    if (r) {
      lines.push(
        `  Left running: run ${r.runId} (workflow ${r.workflowId}) is still open in Temporal; this command stopped its own workers and removed the containers they ran.`,
      );
      lines.push(
        '  Another `trainyard run` or `trainyard worker` on this host may pick its steps up when Temporal is back.',
      );
      lines.push(`  To cancel it when Temporal answers again: ${cancelCommand(this.cfg, r)}`);
    }
    return `${lines.join('\n')}\n`;
  }

  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}

function cancelCommand(cfg: EngineConfig, r: StartedRun): string {
  return `temporal workflow cancel --address ${r.address} --namespace ${cfg.temporalNamespace}${cfg.temporalTls ? ' --tls' : ''} --workflow-id '${r.workflowId}'`;
}

export function choosePipeline(pipelines: Pipeline[], name: string | undefined): Pipeline {
  if (pipelines.length === 0)
    throw new UsageError('no pipeline files in .trainyard/ at this commit (trainyard init creates one)');
  if (name) {
    const p = pipelines.find((x) => x.name === name);
    if (!p)
      throw new UsageError(
        `no pipeline named ${JSON.stringify(name)}; pipelines here: ${pipelines.map((x) => x.name).join(', ')}`,
      );
    return p;
  }
  if (pipelines.length > 1)
    throw new UsageError(
      `several pipelines here (${pipelines.map((x) => x.name).join(', ')}): choose one with --pipeline NAME`,
    );
  return pipelines[0]!;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
