// Simulates hosts booting: once moto reports a managed instance running, start a runner
// agent process for that instance's task queue; once the instance is terminated, stop it
// (the machine is gone). Tests can also kill an agent to simulate a crashed host.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { describeManaged } from '../../activities/ec2/instances.js';

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
      execFile(cli, ['ps', '-aq', '--filter', `label=trainyard.queue=${queue}`], (err, out) => resolve(err ? [] : out.split('\n').filter(Boolean))),
    );
    if (ids.length > 0) await new Promise((resolve) => execFile(cli, ['rm', '-f', ...ids], () => resolve(null)));
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
          const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
          child.stdout?.on('data', (d: Buffer) => this.log(`[${i.instanceId}] ${d.toString().trimEnd()}`));
          child.stderr?.on('data', (d: Buffer) => this.log(`[${i.instanceId}] ${d.toString().trimEnd()}`));
          const h = { instanceId: i.instanceId, queue: i.queue, agent: child, bootedAt: Date.now() };
          this.booted.push(h);
          this.onBoot?.(h);
        } else if (known && (i.state === 'terminated' || i.state === 'shutting-down') && known.agent.exitCode === null && known.agent.signalCode === null) {
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
