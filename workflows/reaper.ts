// The reaper: run on a Temporal Schedule (app/reaper.ts). Terminates every managed
// instance whose run is closed or unknown, or whose lease has expired, deletes every
// Kubernetes Job whose step execution is closed or unknown, and returns what it removed and why. It is the backstop for what a run's own clean-up could not do
// (worker crash at the wrong moment, a terminated workflow, a bug).
import { ActivityCancellationType, log, proxyActivities } from '@temporalio/workflow';
import type { ComputeActivities } from '../activities/ec2/activities.js';
import type { ManagedInstance, WorkflowState } from '../activities/ec2/types.js';
import type { KubernetesActivities } from '../activities/k8s/activities.js';
import type { ManagedJob } from '../activities/k8s/types.js';

export interface ReaperInput {
  /** Report what would be terminated, terminate nothing. */
  dryRun?: boolean;
  /** Instances younger than this are left alone when their run is unknown (default 600 s): tags may lag a launch. */
  graceSeconds?: number;
  /** Also sweep Kubernetes Jobs (the server has TRAINYARD_K8S_CONFIG). */
  kubernetes?: boolean;
}

export interface ReapedJob {
  namespace: string;
  name: string;
  workflowId?: string;
  runId?: string;
  reason: 'run-closed' | 'run-unknown';
}

export interface ReapedInstance {
  instanceId: string;
  instanceType: string;
  runId?: string;
  workflowId?: string;
  reason: 'run-closed' | 'run-unknown' | 'lease-expired';
  state: string;
}

export interface ReaperReport {
  checkedAt: string;
  checked: number;
  terminated: ReapedInstance[];
  /** Kubernetes Jobs deleted (or, dry run, that would be). */
  deletedJobs: ReapedJob[];
  dryRun: boolean;
}

const acts = proxyActivities<ComputeActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

const kube = proxyActivities<KubernetesActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});

/** Jobs whose owning step execution is closed, or unknown once older than the grace period. */
export function decideReapJobs(
  jobs: ManagedJob[],
  states: Record<string, WorkflowState>,
  nowMs: number,
  graceSeconds: number,
): ReapedJob[] {
  const out: ReapedJob[] = [];
  for (const j of jobs) {
    const state = j.workflowId ? (states[j.workflowId] ?? 'unknown') : 'unknown';
    const age = j.createdAt ? (nowMs - Date.parse(j.createdAt)) / 1000 : Number.POSITIVE_INFINITY;
    const base = {
      namespace: j.namespace,
      name: j.name,
      ...(j.workflowId ? { workflowId: j.workflowId } : {}),
      ...(j.runId ? { runId: j.runId } : {}),
    };
    if (state === 'closed') out.push({ ...base, reason: 'run-closed' });
    else if (state === 'unknown' && age >= graceSeconds) out.push({ ...base, reason: 'run-unknown' });
  }
  return out;
}

/** Pure decision, for tests and for the dry run. */
export function decideReap(
  instances: ManagedInstance[],
  states: Record<string, WorkflowState>,
  nowMs: number,
  graceSeconds: number,
): { instance: ManagedInstance; reason: ReapedInstance['reason'] }[] {
  const out: { instance: ManagedInstance; reason: ReapedInstance['reason'] }[] = [];
  for (const i of instances) {
    if (i.state === 'terminated' || i.state === 'shutting-down') continue;
    const lease = i.leaseUntil ? Date.parse(i.leaseUntil) : Number.NaN;
    const age = i.launchedAt ? (nowMs - Date.parse(i.launchedAt)) / 1000 : Number.POSITIVE_INFINITY;
    const state = i.workflowId ? (states[i.workflowId] ?? 'unknown') : 'unknown';
    if (Number.isFinite(lease) && lease < nowMs) out.push({ instance: i, reason: 'lease-expired' });
    else if (state === 'closed') out.push({ instance: i, reason: 'run-closed' });
    else if (state === 'unknown' && age >= graceSeconds) out.push({ instance: i, reason: 'run-unknown' });
  }
  return out;
}

export async function reapOrphans(input: ReaperInput = {}): Promise<ReaperReport> {
  const instances = await acts.computeListManagedInstances();
  const ids = [...new Set(instances.map((i) => i.workflowId).filter((w): w is string => !!w))];
  const states = ids.length > 0 ? await acts.computeWorkflowStates({ workflowIds: ids }) : {};
  const doomed = decideReap(instances, states, Date.now(), input.graceSeconds ?? 600);
  let terminated: ReapedInstance[] = doomed.map(({ instance: i, reason }) => ({
    instanceId: i.instanceId,
    instanceType: i.instanceType,
    runId: i.runId,
    workflowId: i.workflowId,
    reason,
    state: i.state,
  }));
  if (!input.dryRun && terminated.length > 0) {
    const results = await acts.computeTerminateHosts({
      instanceIds: terminated.map((t) => t.instanceId),
      reason: 'reaper',
    });
    const after = new Map(results.map((r) => [r.instanceId, r.state]));
    terminated = terminated.map((t) => ({ ...t, state: after.get(t.instanceId) ?? t.state }));
  }
  for (const t of terminated) log.warn(input.dryRun ? 'reaper would terminate' : 'reaper terminated', { ...t });
  let deletedJobs: ReapedJob[] = [];
  if (input.kubernetes) {
    const jobs = await kube.kubernetesListJobs();
    const owners = [...new Set(jobs.map((j) => j.workflowId).filter((w): w is string => !!w))];
    const jobStates = owners.length > 0 ? await kube.kubernetesWorkflowStates({ workflowIds: owners }) : {};
    deletedJobs = decideReapJobs(jobs, jobStates, Date.now(), input.graceSeconds ?? 600);
    if (!input.dryRun && deletedJobs.length > 0)
      await kube.kubernetesDeleteJobs({ jobs: deletedJobs, reason: 'reaper' });
    for (const j of deletedJobs) log.warn(input.dryRun ? 'reaper would delete Job' : 'reaper deleted Job', { ...j });
  }
  return {
    checkedAt: new Date().toISOString(),
    checked: instances.length,
    terminated,
    deletedJobs,
    dryRun: !!input.dryRun,
  };
}
