// Simulates hosts booting: once moto reports a managed instance running, start a runner
// agent process for that instance's task queue; once the instance is terminated, stop it
// (the machine is gone). Tests can also kill an agent to simulate a crashed host.
// startEc2Engine puts it together with the real engine for pipelines with `machine:` steps.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { parse as parseYaml } from 'yaml';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { resolveContainerCli } from '../../activities/container/cli.js';
import type { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { describeManaged } from '../../activities/ec2/instances.js';
import { TAG } from '../../activities/ec2/tags.js';
import { createStore } from '../../activities/store/factory.js';
import { dataConverter } from '../../app/codec.js';
import { computeActivitiesFor } from '../../app/compute/activities.js';
import { loadComputeConfig } from '../../app/compute/config.js';
import { defaultRunOptions, getRunStatus, startPipelineRun } from '../../app/engine.js';
import { quietTemporalRuntime } from '../../app/local/run.js';
import { loadWorkerSettings, startWorkers } from '../../app/worker.js';
import { parsePipeline } from '../../pipeline/parse.js';
import type { RunInput, RunStatus } from '../../model/types.js';
import { ensureTestImages } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';
import { CREDENTIALS, deploymentName, motoClients, motoEnv, motoSubnets } from './moto.js';

const exec = promisify(execFile);
const REPO_CLI = fileURLToPath(new URL('../../app/cli.ts', import.meta.url));

export type AgentCommand = (queue: string) => { command: string; args: string[]; env?: Record<string, string> };

export interface BootedHost {
  instanceId: string;
  queue: string;
  agent: ChildProcess;
  bootedAt: number;
}

export class HostSimulator {
  readonly booted: BootedHost[] = [];
  private timer?: NodeJS.Timeout;
  private busy = false;
  /** Called when an agent is started; tests use it to kill one mid-step. */
  onBoot?: (h: BootedHost) => void;

  constructor(
    private readonly ec2: EC2Client,
    private readonly deployment: string,
    private readonly agent: AgentCommand,
    private readonly log: (line: string) => void = () => {},
    /** Container CLI whose containers labelled with a host's queue go away with the host. */
    private readonly containerCli?: string,
  ) {}

  start(pollMs = 300): void {
    this.timer = setInterval(() => void this.tick(), pollMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all(this.booted.map((b) => stopAgent(b.agent, 'SIGTERM')));
    for (const b of this.booted) await this.removeContainers(b.queue);
  }

  /** The machine dies: its agent and its containers are gone at once. */
  async kill(instanceId: string): Promise<void> {
    const b = this.booted.find((x) => x.instanceId === instanceId);
    if (!b) return;
    await stopAgent(b.agent, 'SIGKILL');
    await this.removeContainers(b.queue);
  }

  private async removeContainers(queue: string): Promise<void> {
    const cli = this.containerCli;
    if (!cli) return;
    const ids = await new Promise<string[]>((resolve) =>
      execFile(cli, ['ps', '-aq', '--filter', `label=trainyard.queue=${queue}`], (err, out) =>
        resolve(err ? [] : out.split('\n').filter(Boolean)),
      ),
    );
    if (ids.length > 0) await new Promise((resolve) => execFile(cli, ['rm', '-f', ...ids], () => resolve(null)));
  }

  /**
   * What a booted host's agent gets from its user data (/etc/trainyard/agent.env) that these
   * simulated agents honour: the step-secret source (TRAINYARD_SECRETS_SSM_*), with the
   * instance profile's credentials (moto's) to read it. The rest (queue, store, Temporal)
   * the test's agent command sets for this machine.
   */
  private async secretSettingsOf(instanceId: string): Promise<Record<string, string>> {
    const ud = await this.ec2.send(
      new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'userData' }),
    );
    const text = Buffer.from(ud.UserData?.Value ?? '', 'base64').toString('utf8');
    const doc = parseYaml(text.replace(/^#cloud-config\n/, '')) as {
      write_files?: { path: string; content: string }[];
    } | null;
    const envFile = doc?.write_files?.find((f) => f.path === '/etc/trainyard/agent.env')?.content ?? '';
    const out: Record<string, string> = {};
    for (const line of envFile.split('\n')) {
      const m = /^(TRAINYARD_SECRETS_SSM_[A-Z]+)=(.*)$/.exec(line);
      if (m) out[m[1]!] = m[2]!;
    }
    if (Object.keys(out).length > 0)
      Object.assign(out, {
        AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      });
    return out;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const instances = await describeManaged(this.ec2, this.deployment);
      for (const i of instances) {
        const known = this.booted.find((b) => b.instanceId === i.instanceId);
        if (!known && i.state === 'running' && i.queue) {
          const { command, args, env } = this.agent(i.queue);
          const fromUserData = await this.secretSettingsOf(i.instanceId);
          const child = spawn(command, args, {
            env: { ...process.env, ...fromUserData, ...env },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          child.stdout?.on('data', (d: Buffer) => this.log(`[${i.instanceId}] ${d.toString().trimEnd()}`));
          child.stderr?.on('data', (d: Buffer) => this.log(`[${i.instanceId}] ${d.toString().trimEnd()}`));
          const h = { instanceId: i.instanceId, queue: i.queue, agent: child, bootedAt: Date.now() };
          this.booted.push(h);
          this.onBoot?.(h);
        } else if (
          known &&
          (i.state === 'terminated' || i.state === 'shutting-down') &&
          known.agent.exitCode === null &&
          known.agent.signalCode === null
        ) {
          void this.kill(known.instanceId);
        }
      }
    } catch (e) {
      this.log(`simulator: ${String(e)}`);
    } finally {
      this.busy = false;
    }
  }
}

function stopAgent(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

/**
 * The real engine with EC2 on moto: the control worker (pipelineRun, its activities and the
 * compute activities) on a queue of its own, runner agents started by a HostSimulator for each
 * instance moto reports running (real `trainyard agent` processes running podman containers),
 * and a scratch git repository the pipelines are committed to.
 */
export interface Ec2Engine {
  client: Client;
  ec2: EC2Client;
  deployment: string;
  sim: HostSimulator;
  storeDir: string;
  /** What the agents and the simulator said, for failure messages. */
  logs: string[];
  /** Commits the pipeline (YAML text, its `name` naming the file) and starts it through pipelineRun. */
  start(yaml: string): Promise<string>;
  /** The run's result; on timeout, an error saying what it was doing and what the hosts said. */
  result(workflowId: string, ms: number): Promise<RunStatus>;
  /** The run's instances as EC2 (moto) answers DescribeInstances, by the run's workflow-id tag. */
  instancesOf(workflowId: string): Promise<Instance[]>;
  /** Step containers on a host's queue, asked of the container CLI. */
  containersOn(queue: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** Instance ids of these that EC2 reports pending or running: what is still billed. */
export const liveIds = (instances: Instance[]): string[] =>
  instances.filter((i) => i.State?.Name === 'pending' || i.State?.Name === 'running').map((i) => i.InstanceId!);

export async function startEc2Engine(
  opts: { env?: Record<string, string>; faults?: Ec2FaultInjector } = {},
): Promise<Ec2Engine> {
  quietTemporalRuntime();
  await ensureTestImages();
  const cliCommand = (await resolveContainerCli(process.env)).command;
  const deployment = deploymentName();
  const controlQueue = `trainyard-ec2-${deployment}`;
  const localQueue = `trainyard-ec2-local-${deployment}`;
  const clients = motoClients();
  const logs: string[] = [];
  const scratch = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'ec2-engine-'));
  const storeDir = join(scratch, 'store');
  const repo = join(scratch, 'repo');
  mkdirSync(join(repo, '.trainyard'), { recursive: true });
  const git = (...args: string[]) =>
    exec('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
  await git('init', '-q');

  const subnets = await motoSubnets(clients.ec2);
  const connection = await Connection.connect({ address: temporalAddress() });
  const client = new Client({ connection, dataConverter });
  const native = await NativeConnection.connect({ address: temporalAddress() });
  const cfg = loadComputeConfig(
    motoEnv(subnets, deployment, {
      TRAINYARD_EC2_READY_TIMEOUT_SECONDS: '120',
      TRAINYARD_EC2_MAX_PER_CLASS: '2',
      ...opts.env,
    }),
  );
  const workers = await startWorkers({
    connection: native,
    address: temporalAddress(),
    settings: await loadWorkerSettings(process.env, { host: true }),
    store: createStore(storeDir),
    workRoot: join(scratch, 'control'),
    hostQueue: localQueue,
    controlQueue,
    extraActivities: computeActivitiesFor(cfg, {
      client,
      credentials: CREDENTIALS,
      pollMs: 500,
      ...(opts.faults ? { faults: opts.faults } : {}),
    }),
  });
  let hosts = 0;
  const sim = new HostSimulator(
    clients.ec2,
    deployment,
    (queue) => ({
      command: process.execPath,
      args: ['--import', 'tsx', REPO_CLI, 'agent', '--queue', queue],
      env: {
        TEMPORAL_ADDRESS: temporalAddress(),
        TRAINYARD_STORE: storeDir,
        TRAINYARD_WORK_DIR: join(scratch, `host-${++hosts}`),
        TRAINYARD_LOG_LEVEL: 'warn',
      },
    }),
    (l) => logs.push(l),
    cliCommand,
  );
  sim.start();

  let runs = 0;
  const engine: Ec2Engine = {
    client,
    ec2: clients.ec2,
    deployment,
    sim,
    storeDir,
    logs,
    async start(yaml) {
      const name = /^name: (\S+)$/m.exec(yaml)?.[1] ?? 'unnamed';
      const file = `.trainyard/${name}.yaml`;
      const parsed = parsePipeline(yaml, file);
      if (!parsed.pipeline) throw new Error(parsed.errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('\n'));
      writeFileSync(join(repo, file), yaml);
      await git('add', '-A');
      await git('commit', '-q', '--allow-empty', '-m', name);
      const commit = (await git('rev-parse', 'HEAD')).stdout.trim();
      const runId = `${name}-${deployment}-${++runs}`;
      const workflowId = `ec2-test:${runId}`;
      const input: RunInput = {
        runId,
        pipeline: parsed.pipeline,
        params: {},
        source: { kind: 'git', repoPath: repo, commit, subdir: '' },
        trigger: { kind: 'cli', user: 'test' },
        status: { kind: 'none' },
        options: defaultRunOptions({
          controlQueue,
          localHostQueue: localQueue,
          heartbeatTimeoutMs: 5000,
          noCache: true,
        }),
      };
      await startPipelineRun(client, input, { workflowId, reuse: 'allow-duplicate' });
      return workflowId;
    },
    async result(workflowId, ms) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void getRunStatus(client, workflowId).then(
            (st) =>
              reject(
                new Error(
                  `run not finished after ${ms / 1000}s: ${JSON.stringify(st.steps.map((x) => [x.name, x.state, x.message, x.host?.instanceId]))}\nhosts: ${sim.booted.map((b) => b.instanceId).join(', ')}\n${logs.slice(-30).join('\n')}`,
                ),
              ),
            (e: unknown) => reject(e as Error),
          );
        }, ms);
      });
      try {
        return (await Promise.race([client.workflow.getHandle(workflowId).result(), timeout])) as RunStatus;
      } finally {
        clearTimeout(timer);
      }
    },
    instancesOf: (workflowId) => instancesTagged(clients.ec2, TAG.workflowId, workflowId),
    async containersOn(queue) {
      return new Promise((resolve) =>
        execFile(cliCommand, ['ps', '-q', '--filter', `label=trainyard.queue=${queue}`], (err, out) =>
          resolve(err ? [] : out.split('\n').filter(Boolean)),
        ),
      );
    },
    async stop() {
      await sim.stop();
      await workers.shutdown();
      await native.close();
      await connection.close();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
  return engine;
}

/** Every instance (whatever its state) carrying this tag, straight from DescribeInstances. */
export async function instancesTagged(ec2: EC2Client, key: string, value: string): Promise<Instance[]> {
  const out: Instance[] = [];
  let NextToken: string | undefined;
  do {
    const page = await ec2.send(
      new DescribeInstancesCommand({ Filters: [{ Name: `tag:${key}`, Values: [value] }], NextToken }),
    );
    out.push(...(page.Reservations ?? []).flatMap((r) => r.Instances ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

/** Polls `check` until it holds; fails after `ms` with what the agents said last. */
export async function waitUntil(
  check: () => Promise<boolean>,
  what: string,
  ms: number,
  logs: string[] = [],
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`timed out waiting for ${what}\n${logs.slice(-30).join('\n')}`);
}
