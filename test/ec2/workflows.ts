// Workflows for the compute tests: a run-like scenario that drives the HostPool exactly
// as the pipeline does (acquire, run on the host's queue, release, shut down in a
// non-cancellable finally), the reaper, and a workflow that just stays open.
import {
  ActivityCancellationType,
  ActivityFailure,
  CancellationScope,
  TimeoutFailure,
  condition,
  isCancellation,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { HostRecord } from '../../workflows/hosttypes.js';
import { HostPool, type ComputeSummary } from '../../workflows/hostpool.js';
import type { MachineSpec } from '../../pipeline/types.js';

export { reapOrphans } from '../../workflows/reaper.js';

export interface ScenarioStep {
  name: string;
  machine: string;
  ms: number;
  fail?: boolean;
  retries?: number;
  /** Workflow-side pause before the step starts, ms. */
  delayMs?: number;
}

export interface ScenarioInput {
  runId: string;
  machines: Record<string, MachineSpec>;
  steps: ScenarioStep[];
  parallel: boolean;
  maxPerClass?: Record<string, number>;
}

export interface StepResult {
  attempts: { attempt: number; queue: string; instanceId?: string; outcome: 'succeeded' | 'failed' | 'host_lost'; message?: string }[];
  hosts: HostRecord[];
}

export interface ScenarioResult {
  steps: Record<string, StepResult>;
  hosts: HostRecord[];
  summary: ComputeSummary;
}

interface HostActivities {
  hostWork(input: { ms: number; fail?: boolean }): Promise<{ queue: string; pid: number }>;
}

export async function poolScenario(input: ScenarioInput): Promise<ScenarioResult> {
  const { workflowId } = workflowInfo();
  const pool = new HostPool({ runId: input.runId, workflowId, machines: input.machines, maxPerClass: input.maxPerClass });
  const pending = new Set(input.steps.map((s) => s.name));
  const results: Record<string, StepResult> = {};
  const stillNeeded = (machine: string): number => input.steps.filter((s) => pending.has(s.name) && s.machine === machine).length;

  const runStep = async (step: ScenarioStep): Promise<void> => {
    if (step.delayMs) await sleep(step.delayMs);
    pending.delete(step.name);
    const r: StepResult = { attempts: [], hosts: [] };
    results[step.name] = r;
    for (let attempt = 1; ; attempt++) {
      const host = await pool.acquire(step.machine, step.name, attempt);
      r.hosts.push(host);
      const acts = proxyActivities<HostActivities>({
        taskQueue: host.queue,
        startToCloseTimeout: '2 minutes',
        heartbeatTimeout: '3 seconds',
        retry: { maximumAttempts: 1 },
        cancellationType: ActivityCancellationType.TRY_CANCEL,
      });
      try {
        await acts.hostWork({ ms: step.ms, fail: step.fail });
        r.attempts.push({ attempt, queue: host.queue, instanceId: host.instanceId, outcome: 'succeeded' });
        await pool.release(host, stillNeeded(step.machine), false);
        return;
      } catch (e) {
        if (isCancellation(e)) throw e;
        const lost = e instanceof ActivityFailure && e.cause instanceof TimeoutFailure;
        r.attempts.push({ attempt, queue: host.queue, instanceId: host.instanceId, outcome: lost ? 'host_lost' : 'failed', message: (e as Error).message });
        await pool.release(host, stillNeeded(step.machine) + (lost && attempt <= (step.retries ?? 0) ? 1 : 0), lost);
        if (!lost || attempt > (step.retries ?? 0)) throw e;
      }
    }
  };

  try {
    if (input.parallel) await Promise.all(input.steps.map(runStep));
    else for (const s of input.steps) await runStep(s);
  } finally {
    await CancellationScope.nonCancellable(() => pool.shutdownAll());
  }
  return { steps: results, hosts: pool.hosts(), summary: pool.summary() };
}

export async function stayOpen(): Promise<void> {
  await condition(() => false);
}
