// An engine whose `kubernetes:` steps run as Jobs on the test run's local Kubernetes
// (test/setup/k8s.ts): a namespace, a store Secret and an S3 bucket (moto, reachable from the
// pods) of its own, a Kubernetes runner on a queue of its own. Everything is removed by stop().
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { createKubeClients, type KubeClients } from '../../../activities/k8s/client.js';
import { K8S_LABEL, type KubernetesClass, type KubernetesSettings } from '../../../activities/k8s/types.js';
import { S3Store } from '../../../activities/store/s3.js';
import { loadComputeConfig, type ComputeConfig } from '../../../app/compute/config.js';
import { startEngine, type Engine } from '../../engine/harness.js';

export interface KubeEngine extends Engine {
  kube: KubeClients;
  namespace: string;
  settings: KubernetesSettings;
  compute: ComputeConfig;
  /** Pods of this engine's Jobs, whatever their state. */
  pods(): Promise<V1Pod[]>;
  /** How many Jobs the runner asked the API to create. */
  jobsCreated(): number;
}

export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

export function testClass(name: string, namespace: string, over: Partial<KubernetesClass> = {}): KubernetesClass {
  return {
    name,
    namespace,
    nodeSelector: {},
    tolerations: [],
    gpu: { resource: 'nvidia.com/gpu', count: 4 },
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: {} },
    imagePullSecrets: [],
    terminationGracePeriodSeconds: 1,
    uploadGraceSeconds: 60,
    unschedulableTimeoutSeconds: 600,
    hourlyRateUsd: 0.36,
    gpuHourlyRateUsd: 3.6,
    ...over,
  };
}

/** `kubeconfig`: run the runner with these credentials instead of the cluster admin's. */
/** `podS3Endpoint`: where the pods reach the store (default: the test run's moto, as the runner does). */
export async function startKubeEngine(
  opts: {
    classes?: (ns: string) => Record<string, KubernetesClass>;
    kubeconfig?: KubeConfig;
    namespace?: string;
    podS3Endpoint?: string;
  } = {},
): Promise<KubeEngine> {
  const admin = new KubeConfig();
  admin.loadFromFile(inject('kubeconfig'));
  const adminClients = createKubeClients({ kubeconfig: admin });
  const salt = Math.random().toString(16).slice(2, 8);
  const namespace = opts.namespace ?? `ty-${salt}`;
  if (!opts.namespace) {
    await adminClients.core.createNamespace({ body: { metadata: { name: namespace } } });
    // Agent containers only: the step container never sees the store's credentials.
    await adminClients.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'trainyard-store' },
        stringData: { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey },
      },
    });
  }
  const endpoint = inject('k8sS3Endpoint');
  const bucket = `ty-${salt}`;
  const s3 = { endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS };
  await new S3Client(s3).send(new CreateBucketCommand({ Bucket: bucket }));
  const store = new S3Store({ bucket, prefix: 'store', clientConfig: s3 });
  const classes = opts.classes?.(namespace) ?? { standard: testClass('standard', namespace) };
  const settings: KubernetesSettings = {
    source: 'test',
    agentImage: inject('podAgentImage'),
    agentImagePullPolicy: 'IfNotPresent',
    agentResources: { requests: { cpu: '10m', memory: '64Mi' }, limits: {} },
    store: store.location,
    s3Endpoint: opts.podS3Endpoint ?? endpoint,
    s3Region: 'us-east-1',
    storeSecret: 'trainyard-store',
    deployment: `t-${salt}`,
    classes,
  };
  const compute: ComputeConfig = { ...loadComputeConfig({}), kubernetes: settings };
  const kube = opts.kubeconfig
    ? createKubeClients({ kubeconfig: opts.kubeconfig })
    : createKubeClients({ kubeconfig: admin });
  let created = 0;
  const createJob = kube.batch.createNamespacedJob.bind(kube.batch);
  kube.batch.createNamespacedJob = ((...args: Parameters<typeof createJob>) => {
    created++;
    return createJob(...args);
  }) as typeof createJob;
  const kubernetesQueue = `test-k8s-${salt}`;
  const engine = await startEngine({
    store,
    options: { kubernetesQueue },
    workers: { compute, kubernetesQueue, kube },
  });
  const stop = engine.stop;
  return Object.assign(engine, {
    kube,
    namespace,
    settings,
    compute,
    jobsCreated: () => created,
    async pods() {
      return (
        await adminClients.core.listNamespacedPod({
          namespace,
          labelSelector: `${K8S_LABEL.deployment}=${settings.deployment}`,
        })
      ).items;
    },
    async stop() {
      await stop();
      if (!opts.namespace)
        await adminClients.core.deleteNamespace({ name: namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
    },
  });
}

/** Polls until `check` returns a value (not undefined), or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
