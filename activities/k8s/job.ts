// The Job one attempt of one step becomes. Pure: no API calls, so the shape can be checked
// without a cluster and the bench can create the same spec with kubectl.
//
// One pod, never restarted (backoffLimit 0: Trainyard owns retries):
//   init container `fetch`   (agent image) materialises the commit at /workspace, each input at
//                             /inputs/<name> and the parameters at /trainyard/params.json, by
//                             digest from the artifact store;
//   sidecar `upload`         (agent image, a native sidecar: restartPolicy Always) waits; when the
//                             step container has exited the kubelet stops it and it stores each
//                             declared output from /outputs, writing what it stored to a record;
//   container `step`         the step's own image and command, exactly as on the other machines.
// Only the agent containers get store credentials; the step container gets none.
import { createHash } from 'node:crypto';
import type { V1Container, V1EnvVar, V1Job, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import type { ArtifactRef, ParamValue } from '../../model/types.js';
import { K8S_ANNOTATION, K8S_LABEL, MANAGED_BY, type KubernetesClass, type KubernetesSettings } from './types.js';

/** What the agent containers read from TRAINYARD_POD_PLAN. */
export interface PodPlan {
  /** s3://bucket/prefix */
  store: string;
  /** The commit's files, as a tar blob. */
  workspace: Pick<ArtifactRef, 'digest' | 'kind'>;
  inputs: Record<string, Pick<ArtifactRef, 'digest' | 'kind'>>;
  params: Record<string, ParamValue>;
  outputs: string[];
  /** Store record the upload sidecar writes its UploadResult to. */
  resultKey: string;
}

/** What the upload sidecar stored. */
export interface UploadResult {
  outputs: Record<string, ArtifactRef>;
  /** Declared outputs the step did not write. */
  missing: string[];
  /** Outputs the store refused (a symlink, a device file), with the reason. */
  refused: Record<string, string>;
}

export interface JobRequest {
  settings: KubernetesSettings;
  cls: KubernetesClass;
  /** Step-execution workflow id (owner of the Job) and the attempt number. */
  execId: string;
  attempt: number;
  runId: string;
  pipeline: string;
  step: string;
  commit: string;
  image: string;
  command: string[];
  /** The step container's environment (TRAINYARD_* and PARAM_* included). */
  env: Record<string, string>;
  gpus: number;
  plan: PodPlan;
  /** Backstop for the Job as a whole (Trainyard enforces the step timeout itself). */
  activeDeadlineSeconds: number;
}

export const CONTAINER = { fetch: 'fetch', upload: 'upload', step: 'step' } as const;
export const AGENT_COMMAND = 'trainyard-pod-agent';
const MOUNT = { workspace: '/workspace', inputs: '/inputs', outputs: '/outputs', meta: '/trainyard' } as const;
/** Where the agent containers see the same volumes. */
export const AGENT_MOUNT = {
  workspace: '/mnt/workspace',
  inputs: '/mnt/inputs',
  outputs: '/mnt/outputs',
  meta: '/mnt/meta',
  scratch: '/mnt/scratch',
} as const;

/**
 * Written by the upload sidecar once it listens for SIGTERM; its startupProbe checks it, so the
 * step container starts only then (the kubelet starts a native sidecar's successors after its
 * startupProbe succeeds: KEP-753) and a quick step cannot end before the sidecar can hear it.
 */
export const UPLOAD_READY_FILE = `${AGENT_MOUNT.scratch}/upload-ready`;

/** `trainyard-<16 hex of the execution>-<attempt>`: the same attempt always gets the same name, so creation is idempotent. */
export function jobName(execId: string, attempt: number): string {
  return `trainyard-${createHash('sha256').update(execId).digest('hex').slice(0, 16)}-${attempt}`;
}

/** Label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends (anything else becomes "_"/trimmed). */
export function labelValue(s: string): string {
  const v = s
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return v;
}

export function execLabel(execId: string): string {
  return createHash('sha256').update(execId).digest('hex').slice(0, 16);
}

export function buildJob(r: JobRequest): V1Job {
  const name = jobName(r.execId, r.attempt);
  const labels: Record<string, string> = {
    [K8S_LABEL.managed]: MANAGED_BY,
    [K8S_LABEL.deployment]: r.settings.deployment,
    [K8S_LABEL.exec]: execLabel(r.execId),
    [K8S_LABEL.attempt]: String(r.attempt),
    [K8S_LABEL.step]: labelValue(r.step),
    [K8S_LABEL.pipeline]: labelValue(r.pipeline),
    [K8S_LABEL.runId]: labelValue(r.runId),
    [K8S_LABEL.machineClass]: r.cls.name,
  };
  const annotations = {
    [K8S_ANNOTATION.workflowId]: r.execId,
    [K8S_ANNOTATION.runId]: r.runId,
    [K8S_ANNOTATION.commit]: r.commit,
  };
  const vol = (n: string): V1Volume => ({ name: n, emptyDir: {} });
  const agentEnv: V1EnvVar[] = [
    { name: 'TRAINYARD_POD_PLAN', value: JSON.stringify(r.plan) },
    { name: 'AWS_REGION', value: r.settings.s3Region },
    // Node's and the AWS SDK's version notices would crowd out the agent's own failure messages.
    { name: 'NODE_NO_WARNINGS', value: '1' },
    // Carried on the agent's log lines.
    { name: 'TRAINYARD_JOB', value: name },
    { name: 'TRAINYARD_RUN_ID', value: r.runId },
    { name: 'TRAINYARD_RUN_STEP', value: r.step },
    ...(r.settings.s3Endpoint ? [{ name: 'TRAINYARD_S3_ENDPOINT', value: r.settings.s3Endpoint }] : []),
  ];
  const agent = (cname: string, arg: string, mounts: [string, string, boolean][]): V1Container => ({
    name: cname,
    image: r.settings.agentImage,
    imagePullPolicy: r.settings.agentImagePullPolicy,
    command: [AGENT_COMMAND, arg],
    env: agentEnv,
    ...(r.settings.storeSecret ? { envFrom: [{ secretRef: { name: r.settings.storeSecret } }] } : {}),
    resources: r.settings.agentResources,
    volumeMounts: mounts.map(([v, p, ro]) => ({ name: v, mountPath: p, readOnly: ro })),
    terminationMessagePolicy: 'FallbackToLogsOnError',
  });
  const gpuLimits = r.gpus > 0 ? { [r.cls.gpu.resource]: String(r.gpus) } : {};
  const step: V1Container = {
    name: CONTAINER.step,
    image: r.image,
    imagePullPolicy: 'IfNotPresent',
    // `args` only: the image's ENTRYPOINT stays, as with `docker run IMAGE CMD…` on the other machines.
    args: r.command,
    workingDir: MOUNT.workspace,
    env: Object.entries(r.env).map(([k, v]) => ({ name: k, value: v })),
    resources: { requests: { ...r.cls.resources.requests }, limits: { ...r.cls.resources.limits, ...gpuLimits } },
    volumeMounts: [
      { name: 'workspace', mountPath: MOUNT.workspace, readOnly: true },
      { name: 'inputs', mountPath: MOUNT.inputs, readOnly: true },
      { name: 'outputs', mountPath: MOUNT.outputs },
      { name: 'meta', mountPath: MOUNT.meta, readOnly: true },
    ],
  };
  const pod: V1PodSpec = {
    restartPolicy: 'Never',
    // Not Kubernetes' 30 s: after the step container exits, the upload sidecar gets this long.
    // A cancel deletes the pod with the class's (short) terminationGracePeriodSeconds instead.
    terminationGracePeriodSeconds: r.cls.uploadGraceSeconds,
    ...(Object.keys(r.cls.nodeSelector).length ? { nodeSelector: r.cls.nodeSelector } : {}),
    ...(r.cls.tolerations.length ? { tolerations: r.cls.tolerations } : {}),
    ...(r.cls.serviceAccountName
      ? { serviceAccountName: r.cls.serviceAccountName }
      : { automountServiceAccountToken: false }),
    ...(r.cls.imagePullSecrets.length ? { imagePullSecrets: r.cls.imagePullSecrets.map((n) => ({ name: n })) } : {}),
    ...(r.cls.priorityClassName ? { priorityClassName: r.cls.priorityClassName } : {}),
    initContainers: [
      agent(CONTAINER.fetch, 'fetch', [
        ['workspace', AGENT_MOUNT.workspace, false],
        ['inputs', AGENT_MOUNT.inputs, false],
        ['meta', AGENT_MOUNT.meta, false],
        ['scratch', AGENT_MOUNT.scratch, false],
      ]),
      {
        ...agent(CONTAINER.upload, 'upload', [
          ['outputs', AGENT_MOUNT.outputs, true],
          ['scratch', AGENT_MOUNT.scratch, false],
        ]),
        restartPolicy: 'Always',
        // busybox's `test` is in the agent image; a slow start under load gets up to 10 minutes.
        startupProbe: { exec: { command: ['test', '-e', UPLOAD_READY_FILE] }, periodSeconds: 1, failureThreshold: 600 },
      },
    ],
    containers: [step],
    volumes: ['workspace', 'inputs', 'outputs', 'meta', 'scratch'].map(vol),
  };
  const template = { metadata: { labels, annotations }, spec: pod };
  const patched = r.cls.podTemplatePatch ? (mergePatch(template, r.cls.podTemplatePatch) as typeof template) : template;
  // What Trainyard relies on is set again after the class's patch.
  patched.metadata.labels = { ...patched.metadata.labels, ...labels };
  patched.spec.restartPolicy = 'Never';
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: r.cls.namespace, labels, annotations },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: r.activeDeadlineSeconds,
      // A backstop when Trainyard itself cannot delete it; it normally deletes the Job at once.
      ttlSecondsAfterFinished: 3600,
      template: patched,
    },
  };
}

/**
 * Merges `patch` into `base`: mappings merge key by key (null deletes), lists whose items all
 * have a `name` merge item by item on it (containers, volumes, env), any other value replaces.
 */
export function mergePatch(base: unknown, patch: unknown): unknown {
  if (patch === null) return undefined;
  if (Array.isArray(patch)) {
    const named = (xs: unknown[]): boolean =>
      xs.every((x) => typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string');
    if (!Array.isArray(base) || !named(base) || !named(patch)) return patch;
    const out = [...base] as { name: string }[];
    for (const p of patch as { name: string }[]) {
      const i = out.findIndex((b) => b.name === p.name);
      if (i >= 0) out[i] = mergePatch(out[i], p) as { name: string };
      else out.push(p);
    }
    return out;
  }
  if (typeof patch !== 'object') return patch;
  const out: Record<string, unknown> =
    typeof base === 'object' && base !== null && !Array.isArray(base) ? { ...(base as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    const merged = mergePatch(out[k], v);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}
