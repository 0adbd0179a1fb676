// Compute-host records kept in run status and lineage. Types only (workflow-safe).

/** One try at getting an instance: a type in a subnet, spot or on-demand. */
export interface ProvisionAttempt {
  instanceType: string;
  subnetId?: string;
  market: 'spot' | 'on-demand';
  outcome: 'launched' | 'capacity' | 'unsupported' | 'price' | 'error';
  message?: string;
  at: string;
}

/** What one Kubernetes attempt held and cost: its pod from start on the node to its last container's end. */
export interface AttemptCompute {
  kind: 'kubernetes';
  /** Server-side Kubernetes machine class. */
  machineClass: string;
  namespace: string;
  job: string;
  pod?: string;
  node?: string;
  /** GPUs requested. */
  gpus: number;
  billedSeconds: number;
  /** gpus × billedSeconds: GPU time requested (held), whether used or not. */
  gpuSeconds: number;
  /** The class's rate for this pod: hourlyRateUsd + gpus × gpuHourlyRateUsd. */
  pricePerHourUsd: number;
  costUsd: number;
}

/** The machine a step ran on. `local` for this host, `kubernetes` for Jobs on the server's cluster. */
export interface HostRecord {
  kind: 'local' | 'ec2' | 'kubernetes';
  /** Task queue of the runner agent on that host (for Kubernetes: of the runner that creates the Jobs). */
  queue: string;
  machineClass?: string;
  /** Kubernetes: the server's machine class the pipeline's machine names, its namespace and the last attempt's Job, pod and node. */
  kubernetesClass?: string;
  namespace?: string;
  job?: string;
  pod?: string;
  node?: string;
  instanceId?: string;
  instanceType?: string;
  market?: 'spot' | 'on-demand';
  provisioning?: ProvisionAttempt[];
  /** Billed seconds attributed to this step and their cost in USD. */
  billedSeconds?: number;
  costUsd?: number;
  gpu?: { samples: number; meanUtilisation: number; maxMemoryMiB: number; idleFraction: number };
  /** GPUs on the host (machine class `gpus`). */
  gpus?: number;
  /** Billed GPU-seconds in billedSeconds that did no work: boot, waiting idle, and idle time inside steps. */
  idleGpuSeconds?: number;
  /** Price per hour the cost was computed with (from the configured price table). */
  pricePerHourUsd?: number;
  imageId?: string;
  availabilityZone?: string;
  launchedAt?: string;
  terminatedAt?: string;
  /** Why the host was lost (spot interruption notice, EC2 state reason), when it was. */
  lostReason?: string;
}
