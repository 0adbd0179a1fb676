// Control-worker activities for the Kubernetes reaper: list Trainyard's Jobs of this
// deployment in the classes' namespaces, tell which owning workflows are still open, delete
// Jobs (pods first, with a short grace period).
import { Context, getClient } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { WorkflowState } from '../ec2/types.js';
import type { KubeClients } from './client.js';
import { deleteJob } from './runner.js';
import { K8S_ANNOTATION, K8S_LABEL, MANAGED_BY, type KubernetesSettings, type ManagedJob } from './types.js';
import { workflowStates } from '../workflowstates.js';

export interface KubernetesActivities {
  kubernetesListJobs(): Promise<ManagedJob[]>;
  kubernetesWorkflowStates(input: { workflowIds: string[] }): Promise<Record<string, WorkflowState>>;
  kubernetesDeleteJobs(input: { jobs: { namespace: string; name: string }[]; reason: string }): Promise<string[]>;
}

export function createKubernetesActivities(deps: {
  settings: KubernetesSettings;
  kube: KubeClients;
  client?: Client;
}): KubernetesActivities {
  const { settings, kube } = deps;
  const namespaces = [...new Set(Object.values(settings.classes).map((c) => c.namespace))].sort();
  const selector = `${K8S_LABEL.managed}=${MANAGED_BY},${K8S_LABEL.deployment}=${settings.deployment}`;
  return {
    async kubernetesListJobs(): Promise<ManagedJob[]> {
      const out: ManagedJob[] = [];
      for (const namespace of namespaces) {
        const jobs = await kube.batch.listNamespacedJob({ namespace, labelSelector: selector });
        for (const j of jobs.items) {
          const a = j.metadata?.annotations ?? {};
          const finished = (j.status?.conditions ?? []).some(
            (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
          );
          out.push({
            namespace,
            name: j.metadata!.name!,
            finished,
            ...(a[K8S_ANNOTATION.workflowId] ? { workflowId: a[K8S_ANNOTATION.workflowId] } : {}),
            ...(a[K8S_ANNOTATION.runId] ? { runId: a[K8S_ANNOTATION.runId] } : {}),
            ...(j.metadata?.creationTimestamp
              ? { createdAt: new Date(j.metadata.creationTimestamp).toISOString() }
              : {}),
          });
        }
      }
      return out;
    },
    async kubernetesWorkflowStates({ workflowIds }): Promise<Record<string, WorkflowState>> {
      return workflowStates(deps.client ?? getClient(), workflowIds);
    },
    async kubernetesDeleteJobs({ jobs, reason }): Promise<string[]> {
      const done: string[] = [];
      const grace = Math.min(...Object.values(settings.classes).map((c) => c.terminationGracePeriodSeconds), 30);
      for (const j of jobs) {
        if (!namespaces.includes(j.namespace)) continue; // only the classes' namespaces
        Context.current().heartbeat(j.name);
        await deleteJob(kube, j.namespace, j.name, grace, false);
        done.push(`${j.namespace}/${j.name}`);
        Context.current().log.info('deleted Job', { job: j.name, namespace: j.namespace, reason });
      }
      return done;
    },
  };
}

/** The same activities on a server without Kubernetes: nothing to list, nothing to delete. */
