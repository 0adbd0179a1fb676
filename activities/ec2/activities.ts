// The compute activities, run on the control worker (they need AWS credentials; hosts
// never do). Plain functions over the EC2 layer, with Temporal's failure types so the
// workflow can tell "retry later" from "give up".
import { ApplicationFailure, getClient, heartbeat, log, sleep } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { AgentPackageRef } from './agentpackage.js';
import type { AwsClients } from './client.js';
import { describeInstance, describeManaged, setTags, terminateManaged } from './instances.js';
import { ProvisionError, provisionHost } from './provision.js';
import { TAG } from './tags.js';
import { workflowStates } from '../workflowstates.js';
import type {
  Ec2Settings,
  ManagedInstance,
  PoolSettings,
  ProvisionHostInput,
  ProvisionHostResult,
  TerminateInput,
  TerminateResult,
  TerminateRunInput,
  WaitReadyInput,
  WorkflowState,
} from './types.js';
import { FailureType } from '../../model/failures.js';

export interface ComputeActivityDeps {
  clients: AwsClients;
  settings: Ec2Settings;
  /** Temporal client for task-queue and workflow lookups; default: the worker's own. */
  client?: Client;
  /** Per machine class concurrency limits inside one run (server policy). */
  maxPerClass?: Record<string, number>;
  /** How often readiness is checked, ms. */
  pollMs?: number;
  /**
   * The agent package hosts install when settings.agent names none: published to the agent
   * store by this worker (see agentPackagePublisher). Required in that case.
   */
  agentPackage?: () => Promise<AgentPackageRef>;
}

/**
 * Publishes this worker's agent package once (a failed try is retried on the next call):
 * `publish` is typically `() => publishAgentPackage(store, { file })`.
 */
export function agentPackagePublisher(publish: () => Promise<AgentPackageRef>): () => Promise<AgentPackageRef> {
  let pending: Promise<AgentPackageRef> | undefined;
  return () => {
    pending ??= publish().catch((e: unknown) => {
      pending = undefined;
      throw e;
    });
    return pending;
  };
}

// Temporal API enum values (temporal.api.enums.v1); spelled out to avoid importing the proto package.
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;

export const FAILURE = {
  exhausted: FailureType.Ec2CapacityExhausted,
  config: FailureType.Ec2ConfigError,
  limit: FailureType.Ec2InstanceLimit,
  notReady: FailureType.Ec2HostNotReady,
  lost: FailureType.Ec2HostLost,
} as const;

export function createComputeActivities(deps: ComputeActivityDeps) {
  const { clients, settings } = deps;
  const client = (): Client => deps.client ?? getClient();
  const pollMs = deps.pollMs ?? 2000;

  return {
    async computePoolSettings(): Promise<PoolSettings> {
      return {
        maxPerClass: deps.maxPerClass ?? {},
        defaultMaxPerClass: settings.maxPerClass,
        idleSeconds: settings.idleSeconds,
        readyTimeoutSeconds: settings.readyTimeoutSeconds,
        leaseSlackSeconds: settings.leaseSlackSeconds,
      };
    },

    async computeProvisionHost(input: ProvisionHostInput): Promise<ProvisionHostResult> {
      try {
        const r = await provisionHost(
          { clients, settings: await withAgentPackage(settings, deps.agentPackage) },
          input,
        );
        log.info('provisioned host', {
          instanceId: r.instanceId,
          instanceType: r.instanceType,
          market: r.market,
          found: r.found,
          queue: input.queue,
        });
        return r;
      } catch (e) {
        if (!(e instanceof ProvisionError)) throw e;
        const type = FAILURE[e.kind];
        if (e.kind === 'limit') throw ApplicationFailure.retryable(e.message, type, e.attempts);
        throw ApplicationFailure.create({ message: e.message, type, nonRetryable: true, details: [e.attempts] });
      }
    },

    /** Resolves once the runner agent on the host polls its task queue. */
    async computeWaitHostReady(input: WaitReadyInput): Promise<{ readyAt: string; agent: string }> {
      const deadline = Date.now() + input.timeoutSeconds * 1000;
      const c = client();
      let lastStateCheck = 0;
      for (;;) {
        heartbeat();
        const res = await c.workflowService.describeTaskQueue({
          namespace: c.options.namespace,
          taskQueue: { name: input.queue, kind: TASK_QUEUE_KIND_NORMAL },
          taskQueueType: TASK_QUEUE_TYPE_ACTIVITY,
        });
        const poller = res.pollers?.[0];
        if (poller) return { readyAt: new Date().toISOString(), agent: poller.identity ?? 'unknown' };
        if (Date.now() - lastStateCheck > 15_000) {
          lastStateCheck = Date.now();
          const m = await describeInstance(clients.ec2, settings.deployment, input.instanceId);
          if (!m || m.state === 'shutting-down' || m.state === 'terminated' || m.state === 'stopped') {
            throw ApplicationFailure.create({
              message: `host ${input.instanceId} is ${m?.state ?? 'gone'} before its agent started${m?.lostReason ? `: ${m.lostReason}` : ''}`,
              type: FAILURE.lost,
              nonRetryable: true,
            });
          }
        }
        if (Date.now() > deadline) {
          throw ApplicationFailure.create({
            message: `the runner agent on ${input.instanceId} did not poll task queue ${input.queue} within ${input.timeoutSeconds}s (see the instance's console output)`,
            type: FAILURE.notReady,
            nonRetryable: true,
          });
        }
        await sleep(pollMs);
      }
    },

    async computeTerminateHosts(input: TerminateInput): Promise<TerminateResult[]> {
      const out = await terminateManaged(clients.ec2, settings.deployment, input.instanceIds);
      log.info('terminated hosts', { reason: input.reason, instances: out });
      return out;
    },

    /** Everything a run launched, including instances the workflow never heard of (a launch whose activity was cancelled). */
    async computeTerminateRunHosts(input: TerminateRunInput): Promise<TerminateResult[]> {
      const tagged = await describeManaged(clients.ec2, settings.deployment, [
        { Name: `tag:${TAG.workflowId}`, Values: [input.workflowId] },
        { Name: `tag:${TAG.runId}`, Values: [input.runId] },
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ]);
      const ids = [...input.instanceIds, ...tagged.map((t) => t.instanceId)];
      const out = await terminateManaged(clients.ec2, settings.deployment, ids);
      log.info('terminated run hosts', { workflowId: input.workflowId, reason: input.reason, instances: out });
      return out;
    },

    async computeDescribeHost(input: { instanceId: string }): Promise<ManagedInstance | null> {
      return (await describeInstance(clients.ec2, settings.deployment, input.instanceId)) ?? null;
    },

    async computeExtendLease(input: { instanceId: string; leaseUntil: string }): Promise<void> {
      await setTags(clients.ec2, input.instanceId, { [TAG.leaseUntil]: input.leaseUntil });
    },

    async computeListManagedInstances(): Promise<ManagedInstance[]> {
      return describeManaged(clients.ec2, settings.deployment, [
        { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      ]);
    },

    async computeWorkflowStates(input: { workflowIds: string[] }): Promise<Record<string, WorkflowState>> {
      return workflowStates(client(), input.workflowIds);
    },
  };
}

export type ComputeActivities = ReturnType<typeof createComputeActivities>;

/** Settings whose agent package is resolved: the configured one, else the published one. */
async function withAgentPackage(
  settings: Ec2Settings,
  publish: (() => Promise<AgentPackageRef>) | undefined,
): Promise<Ec2Settings> {
  if (settings.agent.agentPackage) return settings;
  if (!publish)
    throw new ProvisionError(
      'config',
      'no agent package: set TRAINYARD_AGENT_PACKAGE (and _SHA256), or let the control worker publish its own',
      [],
    );
  const pkg = await publish();
  return { ...settings, agent: { ...settings.agent, agentPackage: pkg.uri, agentPackageSha256: pkg.sha256 } };
}
