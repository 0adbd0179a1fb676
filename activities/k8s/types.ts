// Shapes of the server-side Kubernetes compute settings, shared by the configuration loader
// (app/compute/kubernetes.ts), the runner activity and the reaper. Types only.

/** One toleration, as in a pod spec (core/v1 Toleration). */
export interface KubeToleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

/**
 * A Kubernetes machine class: where and how a step's pod runs. Server-side only: a pipeline
 * names the class (`machines: { gpu: { kubernetes: a100, gpus: 1 } }`) and can ask for at
 * most `gpu.count` GPUs of it.
 */
export interface KubernetesClass {
  name: string;
  namespace: string;
  nodeSelector: Record<string, string>;
  tolerations: KubeToleration[];
  /** Extended resource the GPUs are requested as (`nvidia.com/gpu`), and the most one step may request. */
  gpu: { resource: string; count: number };
  /** CPU / memory (and any other resource) requests and limits of the step container, as Kubernetes quantities. */
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  serviceAccountName?: string;
  imagePullSecrets: string[];
  priorityClassName?: string;
  /** Grace period of the pod: a cancelled step gets this long to stop (default 5 s, not Kubernetes' 30 s). */
  terminationGracePeriodSeconds: number;
  /** Seconds after which the agent sidecar's output upload is cut off when the step ends (pod grace after the main container exits). */
  uploadGraceSeconds: number;
  /** A pod that stays Unschedulable this long fails the attempt with the scheduler's reason. */
  unschedulableTimeoutSeconds: number;
  /** Merged into the generated pod template (maps merge, lists of named items merge by name, other lists replace). */
  podTemplatePatch?: Record<string, unknown>;
  /** USD per hour of one pod of this class, whatever its GPUs. */
  hourlyRateUsd: number;
  /** USD per hour of each requested GPU, added to hourlyRateUsd. */
  gpuHourlyRateUsd: number;
  /**
   * NVIDIA dcgm-exporter metrics URL on the pod's node, `{hostIP}` / `{node}` filled from the pod
   * (e.g. `http://{hostIP}:9400/metrics`): when set, a GPU step's utilisation is scraped from it
   * (activities/k8s/dcgm.ts). Unset: utilisation is not measured.
   */
  dcgmExporterUrl?: string;
  /** Seconds between scrapes of dcgmExporterUrl (default 5). */
  dcgmScrapeSeconds?: number;
}

/** Server-side Kubernetes settings (TRAINYARD_K8S_CONFIG). A pipeline file can never set these. */
export interface KubernetesSettings {
  /** Where the file came from, for messages. */
  source: string;
  /** kubeconfig context; default the current one (or the in-cluster service account). */
  context?: string;
  /** Image of the pod agent (`trainyard-pod-agent` on its PATH): fetches inputs, uploads outputs. */
  agentImage: string;
  agentImagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Requests and limits of the agent containers. */
  agentResources: { requests: Record<string, string>; limits: Record<string, string> };
  /** s3://bucket/prefix the pods read inputs from and write outputs to. */
  store: string;
  /** S3 endpoint as the pods reach it (MinIO, a VPC endpoint); default AWS. */
  s3Endpoint?: string;
  s3Region: string;
  /** A Secret in each class namespace with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) for the agent containers only; absent = the pod's own identity (IRSA, EKS Pod Identity). */
  storeSecret?: string;
  /** Label value separating Trainyard deployments that share a cluster (the reaper only touches its own). */
  deployment: string;
  classes: Record<string, KubernetesClass>;
}

/** Task queue of the Kubernetes runner (the control worker's activity that creates and watches Jobs). */
export const DEFAULT_K8S_QUEUE = 'trainyard-kubernetes';

/** Labels and annotations Trainyard puts on its Jobs and pods. */
export const K8S_LABEL = {
  managed: 'app.kubernetes.io/managed-by',
  deployment: 'trainyard.dev/deployment',
  exec: 'trainyard.dev/exec',
  attempt: 'trainyard.dev/attempt',
  step: 'trainyard.dev/step',
  pipeline: 'trainyard.dev/pipeline',
  runId: 'trainyard.dev/run-id',
  machineClass: 'trainyard.dev/machine-class',
} as const;

export const K8S_ANNOTATION = {
  /** The step-execution workflow that owns the Job: the reaper deletes the Job once it is closed or unknown. */
  workflowId: 'trainyard.dev/workflow-id',
  runId: 'trainyard.dev/run-id',
  commit: 'trainyard.dev/commit',
} as const;

export const MANAGED_BY = 'trainyard';

/** A Job the reaper looks at. */
export interface ManagedJob {
  namespace: string;
  name: string;
  workflowId?: string;
  runId?: string;
  createdAt?: string;
  /** Job finished (Complete or Failed condition). */
  finished: boolean;
}
