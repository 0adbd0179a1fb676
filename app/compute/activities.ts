// Wiring for the control worker: the compute activities built from the server config.
// Pass the result as `extraActivities` to startWorkers (app/worker.ts).
import type { Client } from '@temporalio/client';
import { createComputeActivities, type ComputeActivities } from '../../activities/ec2/activities.js';
import { createAwsClients } from '../../activities/ec2/client.js';
import type { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { createKubernetesActivities, disabledKubernetesActivities, type KubernetesActivities } from '../../activities/k8s/activities.js';
import { createKubeClients, type KubeClients } from '../../activities/k8s/client.js';
import type { ComputeConfig } from './config.js';

export interface ComputeWiring {
  client?: Client;
  /** Tests and the bench only. */
  faults?: Ec2FaultInjector;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  pollMs?: number;
}

/** The activities, or a set that fails clearly when EC2 is not configured. */
export function computeActivitiesFor(cfg: ComputeConfig, w: ComputeWiring = {}): ComputeActivities {
  if (!cfg.ec2) return disabledActivities();
  const clients = createAwsClients({ region: cfg.ec2.region, endpoint: cfg.ec2.endpoint, credentials: w.credentials, faults: w.faults });
  const maxPerClass = Object.fromEntries(Object.entries(cfg.policy.maxPerClass).filter(([k]) => k !== '*'));
  return createComputeActivities({ clients, settings: cfg.ec2, client: w.client, maxPerClass, pollMs: w.pollMs });
}

function disabledActivities(): ComputeActivities {
  const off = async (): Promise<never> => {
    throw new Error('EC2 is not configured on this server (TRAINYARD_EC2_SUBNETS is not set), so steps with "machine:" cannot run');
  };
  // The reaper still runs on a server without EC2: nothing to list, nothing to terminate.
  return {
    computePoolSettings: off,
    computeProvisionHost: off,
    computeWaitHostReady: off,
    computeTerminateHosts: async () => [],
    computeTerminateRunHosts: async () => [],
    computeDescribeHost: async () => null,
    computeExtendLease: off,
    computeListManagedInstances: async () => [],
    computeWorkflowStates: async () => ({}),
  };
}

/** The Kubernetes reaper's activities, or a set that finds nothing when Kubernetes is not configured. */
export function kubernetesActivitiesFor(cfg: ComputeConfig, w: { client?: Client; kube?: KubeClients } = {}): KubernetesActivities {
  if (!cfg.kubernetes) return disabledKubernetesActivities();
  const kube = w.kube ?? createKubeClients(cfg.kubernetes.context ? { context: cfg.kubernetes.context } : {});
  return createKubernetesActivities({ settings: cfg.kubernetes, kube, ...(w.client ? { client: w.client } : {}) });
}
