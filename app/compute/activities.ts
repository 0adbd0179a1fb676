// Wiring for the control worker: the compute activities built from the server config.
// Pass the result as `extraActivities` to startWorkers (app/worker.ts).
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { pino } from 'pino';
import {
  agentPackagePublisher,
  createComputeActivities,
  type ComputeActivities,
} from '../../activities/ec2/activities.js';
import { publishAgentPackage, type AgentPackageRef } from '../../activities/ec2/agentpackage.js';
import { createStore } from '../../activities/store/factory.js';
import { createAwsClients } from '../../activities/ec2/client.js';
import type { Ec2FaultInjector } from '../../activities/ec2/faults.js';
import { createKubernetesActivities, type KubernetesActivities } from '../../activities/k8s/activities.js';
import { createKubeClients, type KubeClients } from '../../activities/k8s/client.js';
import type { ComputeConfig } from './config.js';
import { disabledComputeActivities, disabledKubernetesActivities } from './disabled.js';

export { disabledComputeActivities, disabledKubernetesActivities };

export interface ComputeWiring {
  client?: Client;
  /** Tests and the bench only. */
  faults?: Ec2FaultInjector;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  pollMs?: number;
  /** Publish the agent package when the activities are made (default true; tests turn it off). */
  publishAgentPackageOnStart?: boolean;
  /** S3 client settings of the agent store (its endpoint: app/store.ts s3Settings). */
  s3?: S3ClientConfig;
}

const log = pino({ level: process.env.TRAINYARD_LOG_LEVEL ?? 'info', name: 'trainyard-compute' });

/** The activities, or a set that fails clearly when EC2 is not configured. */
export function computeActivitiesFor(cfg: ComputeConfig, w: ComputeWiring = {}): ComputeActivities {
  if (!cfg.ec2) return disabledComputeActivities();
  const clients = createAwsClients({
    region: cfg.ec2.region,
    endpoint: cfg.ec2.endpoint,
    credentials: w.credentials,
    faults: w.faults,
  });
  const maxPerClass = Object.fromEntries(Object.entries(cfg.policy.maxPerClass).filter(([k]) => k !== '*'));
  const agent = cfg.ec2.agent;
  let agentPackage: (() => Promise<AgentPackageRef>) | undefined;
  if (!agent.agentPackage) {
    // No package named: this worker publishes its own version's package to the agent store,
    // now (a host launched later finds it there) and again before a launch if this failed.
    agentPackage = agentPackagePublisher(() =>
      publishAgentPackage(
        createStore(agent.storeLocation, { s3: w.s3 ?? {} }),
        agent.agentPackageFile ? { file: agent.agentPackageFile } : {},
      ),
    );
    if (w.publishAgentPackageOnStart !== false) {
      agentPackage().then(
        (p) => log.info({ agentPackage: p.uri, sha256: p.sha256, version: p.version }, 'agent package in the store'),
        (err: unknown) => log.warn({ err }, 'could not publish the agent package; retried before the next host launch'),
      );
    }
  }
  return createComputeActivities({
    clients,
    settings: cfg.ec2,
    client: w.client,
    maxPerClass,
    pollMs: w.pollMs,
    ...(agentPackage ? { agentPackage } : {}),
  });
}

/** The Kubernetes reaper's activities, or a set that finds nothing when Kubernetes is not configured. */
export function kubernetesActivitiesFor(
  cfg: ComputeConfig,
  w: { client?: Client; kube?: KubeClients } = {},
): KubernetesActivities {
  if (!cfg.kubernetes) return disabledKubernetesActivities();
  const kube = w.kube ?? createKubeClients(cfg.kubernetes.context ? { context: cfg.kubernetes.context } : {});
  return createKubernetesActivities({ settings: cfg.kubernetes, kube, ...(w.client ? { client: w.client } : {}) });
}
