// The compute activities of a server without EC2 or Kubernetes settings, apart from the real
// ones: a worker that needs neither (every `trainyard run`) registers these without loading
// the AWS SDK's EC2 client or the Kubernetes client (about 2 s of CPU at start).
import type { ComputeActivities } from '../../activities/ec2/activities.js';
import type { KubernetesActivities } from '../../activities/k8s/activities.js';

/** EC2 activities that fail saying what to configure; the reaper's find nothing. */
export function disabledComputeActivities(): ComputeActivities {
  const off = async (): Promise<never> => {
    throw new Error(
      'EC2 is not configured on this server (TRAINYARD_EC2_SUBNETS is not set), so steps with "machine:" cannot run',
    );
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

/** The Kubernetes reaper's activities on a server without Kubernetes: nothing to list or delete. */
export function disabledKubernetesActivities(): KubernetesActivities {
  return {
    kubernetesListJobs: async () => [],
    kubernetesWorkflowStates: async () => ({}),
    kubernetesDeleteJobs: async () => [],
  };
}
