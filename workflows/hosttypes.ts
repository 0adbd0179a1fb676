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

/** The machine a step ran on. `local` for this host. */
export interface HostRecord {
  kind: 'local' | 'ec2';
  /** Task queue of the runner agent on that host. */
  queue: string;
  machineClass?: string;
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
