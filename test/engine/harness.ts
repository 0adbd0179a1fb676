// A real engine for tests: workers on the test run's Temporal dev server with queues of
// their own, a local artifact store in a temp folder, and git repositories made on the fly.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { listContainers } from '../../activities/container/run.js';
import { LocalStore } from '../../activities/store/local.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { dataConverter } from '../../app/codec.js';
import { defaultRunOptions, startPipelineRun } from '../../app/engine.js';
import {
  loadWorkerSettings,
  startWorkers,
  type RunningWorkers,
  type WorkerSettings,
  type WorkersConfig,
} from '../../app/worker.js';
import type { SecretSource } from '../../activities/secrets.js';
import { quietTemporalRuntime } from '../../app/local/run.js';
import { parsePipeline } from '../../pipeline/parse.js';
import { resolveParams } from '../../pipeline/params.js';
import type { RunInput, RunOptions, RunStatus, Trigger } from '../../model/types.js';
import type { pipelineRun } from '../../workflows/pipeline.js';
import { ensureTestImages } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';

export { BUSYBOX_IMAGE, PYTHON_IMAGE } from '../fixtures/images/images.js';

export class GitRepo {
  readonly path: string;
  constructor(root: string) {
    this.path = mkdtempSync(join(root, 'repo-'));
    this.git('init', '-q', '-b', 'main');
    this.git('config', 'user.email', 'test@example.com');
    this.git('config', 'user.name', 'test');
  }
  git(...args: string[]): string {
    return execFileSync('git', ['-C', this.path, ...args], { encoding: 'utf8' }).trim();
  }
  write(files: Record<string, string>): this {
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(dirname(join(this.path, p)), { recursive: true });
      writeFileSync(join(this.path, p), text);
    }
    return this;
  }
  commit(message = 'change'): string {
    this.git('add', '-A');
    this.git('commit', '-q', '--allow-empty', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }
}

export interface Engine {
  client: Client;
  store: ArtifactStore;
  root: string;
  /** Salt for step env so this file's executions are never joined by another file's. */
  salt: string;
  options: RunOptions;
  hostQueue: string;
  address: string;
  repo(): GitRepo;
  /** Starts a run; `runId` is Trainyard's run id, `firstExecutionRunId` Temporal's id of its first execution. */
  start(
    repo: GitRepo,
    file: string,
    opts?: StartOptions,
  ): Promise<{ workflowId: string; runId: string; firstExecutionRunId: string }>;
  run(repo: GitRepo, file: string, opts?: StartOptions): Promise<RunStatus>;
  result(workflowId: string): Promise<RunStatus>;
  containers(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface StartOptions {
  params?: Record<string, string>;
  noCache?: boolean;
  options?: Partial<RunOptions>;
  workflowId?: string;
  /** RunInput.secretsWithheld: the run gets no secrets (a fork's pull request). */
  secretsWithheld?: string;
  /** Default: a local run by `test` on no branch. */
  trigger?: Trigger;
}

export async function startEngine(
  opts: {
    host?: boolean;
    options?: Partial<RunOptions>;
    store?: ArtifactStore;
    /** startWorkers options, and settings that replace those read from this process's environment. */
    workers?: Partial<Omit<WorkersConfig, 'settings'>> &
      Partial<Pick<WorkerSettings, 'compute' | 'openLineage'>> & { secrets?: SecretSource };
  } = {},
): Promise<Engine> {
  await ensureTestImages();
  quietTemporalRuntime();
  const address = temporalAddress();
  const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'engine-'));
  const salt = randomBytes(4).toString('hex');
  const store = opts.store ?? new LocalStore(join(root, 'store'));
  const native = await NativeConnection.connect({ address });
  const client = new Client({ connection: await Connection.connect({ address }), dataConverter });
  const controlQueue = `test-control-${salt}`;
  const hostQueue = `test-host-${salt}`;
  const { compute, openLineage, secrets, ...workerOpts } = opts.workers ?? {};
  const loaded = await loadWorkerSettings(process.env, { host: opts.host !== false });
  const settings: WorkerSettings = {
    ...loaded,
    ...(compute ? { compute } : {}),
    ...(openLineage !== undefined ? { openLineage } : {}),
    ...(secrets && loaded.host ? { host: { ...loaded.host, secrets } } : {}),
  };
  const workers: RunningWorkers = await startWorkers({
    connection: native,
    address,
    settings,
    store,
    workRoot: join(root, 'work'),
    hostQueue,
    controlQueue,
    noHost: opts.host === false,
    ...workerOpts,
  });
  const options = defaultRunOptions({
    controlQueue,
    localHostQueue: hostQueue,
    statusIntervalMs: 1000,
    heartbeatTimeoutMs: 5000,
    ...opts.options,
  });
  let n = 0;
  const engine: Engine = {
    client,
    store,
    root,
    salt,
    options,
    hostQueue,
    address,
    repo: () => new GitRepo(root),
    async start(repo, file, o = {}) {
      const commit = repo.git('rev-parse', 'HEAD');
      const text = repo.git('show', `${commit}:${file}`);
      const { pipeline, errors } = parsePipeline(text, file);
      if (!pipeline) throw new Error(errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('\n'));
      const { values, errors: perr } = resolveParams(pipeline, o.params ?? {});
      if (perr.length) throw new Error(perr.join('\n'));
      const runId = `t${salt}-${++n}-${randomBytes(2).toString('hex')}`;
      const input: RunInput = {
        runId,
        pipeline,
        params: values,
        source: { kind: 'git', repoPath: repo.path, commit, subdir: '' },
        trigger: o.trigger ?? { kind: 'cli', user: 'test' },
        status: { kind: 'none' },
        options: { ...options, noCache: o.noCache ?? false, ...o.options },
        ...(o.secretsWithheld ? { secretsWithheld: o.secretsWithheld } : {}),
      };
      const workflowId = `test:${runId}`;
      const started = await startPipelineRun(client, input, { workflowId, reuse: 'allow-duplicate' });
      return { workflowId, runId, firstExecutionRunId: started.firstExecutionRunId };
    },
    async run(repo, file, o = {}) {
      const { workflowId } = await engine.start(repo, file, o);
      return engine.result(workflowId);
    },
    result: (workflowId) => client.workflow.getHandle<typeof pipelineRun>(workflowId).result(),
    async containers() {
      const cli = await resolveContainerCli(process.env);
      return (await listContainers(cli, { 'trainyard.queue': hostQueue })).map((c) => c.name);
    },
    async stop() {
      await workers.shutdown();
      await native.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  return engine;
}

export const stepOf = (s: RunStatus, name: string) => {
  const st = s.steps.find((x) => x.name === name);
  if (!st) throw new Error(`no step ${name}`);
  return st;
};
