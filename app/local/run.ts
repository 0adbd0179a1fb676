// `trainyard run`: the same workflow code, cache and report as the service, on this
// machine: Temporal (TEMPORAL_ADDRESS, or a dev server started for the command), the
// control worker and this host's runner in-process, containers through docker/podman.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { LocalGitSource } from '../../activities/source/local.js';
import { createStore } from '../../activities/store/factory.js';
import { terminalText } from '../../activities/usertext.js';
import { formatPipelineError } from '../../pipeline/parse.js';
import { loadPipelines } from '../../pipeline/load.js';
import { parseParamArgs, resolveParams } from '../../pipeline/params.js';
import type { Pipeline } from '../../pipeline/types.js';
import type { RunInput, RunStatus } from '../../workflows/types.js';
import { dataConverter } from '../codec.js';
import { loadEngineConfig, temporalConnectOptions } from '../config.js';
import { startDevServer, type DevServer } from '../devserver.js';
import { cancelPipelineRun, defaultRunOptions, getRunStatus, localHostQueue, startPipelineRun } from '../engine.js';
import { startWorkers } from '../worker.js';
import { findProject, snapshot } from './project.js';
import { LiveTable } from './table.js';

export interface RunArgs {
  dir: string;
  pipeline?: string;
  params: string[];
  noCache: boolean;
  parallelism?: number;
  reportFile?: string;
  quiet: boolean;
}

export class UsageError extends Error {}

export const newRunId = (): string => `run-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;

let runtimeInstalled = false;
export function quietTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }), forward: {} } }, logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => process.stderr.write(`temporal: ${m}\n`) } });
}

/** Returns the process exit code. */
export async function runCommand(args: RunArgs): Promise<number> {
  const cfg = loadEngineConfig();
  const project = await findProject(args.dir);
  const snap = await snapshot(project);
  if (snap.dirtyBase) process.stderr.write(`note: uncommitted changes to tracked files are included (snapshot ${snap.commit.slice(0, 12)} of HEAD ${snap.dirtyBase.slice(0, 12)})\n`);
  if (snap.untracked.length) process.stderr.write(`note: ${snap.untracked.length} untracked file(s) are not part of the run (e.g. ${snap.untracked.slice(0, 3).join(', ')}); git add them to include them\n`);

  const checkout = await new LocalGitSource(join(cfg.workRoot, 'sources')).checkout({ kind: 'git', repoPath: project.repoPath, commit: snap.commit, subdir: project.subdir });
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
  await resolveContainerCli(); // fails early with how to install docker/podman

  quietTemporalRuntime();
  let dev: DevServer | undefined;
  const address = cfg.temporalAddress ?? (dev = await startDevServer()).address;
  const stopDev = async () => dev?.stop();
  try {
    const native = await NativeConnection.connect(temporalConnectOptions(cfg, address));
    const connection = await Connection.connect(temporalConnectOptions(cfg, address));
    const client = new Client({ connection, namespace: cfg.temporalNamespace, dataConverter });
    const store = createStore(cfg.store);
    const workers = await startWorkers({ connection: native, address, connectOptions: temporalConnectOptions(cfg, address), namespace: cfg.temporalNamespace, store, workRoot: cfg.workRoot, hostQueue: localHostQueue() });
    try {
      const runId = newRunId();
      const input: RunInput = {
        runId,
        pipeline,
        params: values,
        source: { kind: 'git', repoPath: project.repoPath, commit: snap.commit, subdir: project.subdir, ...(snap.dirtyBase ? { dirtyBase: snap.dirtyBase } : {}) },
        trigger: { kind: 'cli', user: safeUser() },
        status: { kind: 'none' },
        options: defaultRunOptions({ noCache: args.noCache, parallelism: args.parallelism ?? cfg.parallelism, heartbeatTimeoutMs: cfg.heartbeatTimeoutMs }),
      };
      const workflowId = `cli:${pipeline.name}:${runId}`;
      await startPipelineRun(client, input, { workflowId, reuse: 'allow-duplicate' });
      if (!args.quiet) process.stderr.write(`run ${runId}: pipeline ${pipeline.name} at ${snap.commit.slice(0, 12)} (store ${store.location})\n`);
      const final = await watch(client, workflowId, args.quiet);
      const report = await store.getRecord<{ markdown: string }>(`runs/${runId}/report`);
      const reportFile = args.reportFile ?? join(cfg.reportsDir, `${runId}.md`);
      if (report) {
        await mkdir(join(reportFile, '..'), { recursive: true });
        await writeFile(reportFile, report.markdown);
        if (!args.quiet) process.stdout.write(`\n${report.markdown}\n`);
      }
      process.stderr.write(`${final.state}: report ${report ? reportFile : '(not written)'}; lineage: trainyard lineage ${runId}\n`);
      return final.state === 'succeeded' ? 0 : final.state === 'cancelled' ? 130 : 1;
    } finally {
      await workers.shutdown();
      await native.close();
      await connection.close();
    }
  } finally {
    await stopDev();
  }
}

export function choosePipeline(pipelines: Pipeline[], name: string | undefined): Pipeline {
  if (pipelines.length === 0) throw new UsageError('no pipeline files in .trainyard/ at this commit (trainyard init creates one)');
  if (name) {
    const p = pipelines.find((x) => x.name === name);
    if (!p) throw new UsageError(`no pipeline named ${JSON.stringify(name)}; pipelines here: ${pipelines.map((x) => x.name).join(', ')}`);
    return p;
  }
  if (pipelines.length > 1) throw new UsageError(`several pipelines here (${pipelines.map((x) => x.name).join(', ')}): choose one with --pipeline NAME`);
  return pipelines[0]!;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

async function watch(client: Client, workflowId: string, quiet: boolean): Promise<RunStatus> {
  const table = quiet ? undefined : new LiveTable(process.stderr);
  const handle = client.workflow.getHandle(workflowId);
  let cancelling = false;
  const onSigint = () => {
    if (cancelling) process.exit(130);
    cancelling = true;
    process.stderr.write('\ncancelling: stopping containers and cleaning up (Ctrl-C again to leave without waiting)\n');
    void cancelPipelineRun(client, workflowId).catch(() => undefined);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const result = handle.result() as Promise<RunStatus>;
    let done = false;
    void result.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      try {
        table?.update(await getRunStatus(client, workflowId));
      } catch {
        // The query can miss while the workflow continues as new; the next tick answers.
      }
      await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
    }
    const final = await result;
    table?.update(final);
    return final;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
