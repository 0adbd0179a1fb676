// Kubernetes step start latency on the local cluster (test/k8s/cluster/): the time from "step
// ready" (the runner activity is called) to "container running" (the step container is
// running, as the runner sees it), against a bare `kubectl create -f` of the same Job spec
// (same init container and sidecar, same images) polled the same way, in the same run.
// Starts and always stops its own cluster (as the tests do), unless KUBECONFIG_BENCH and
// K8S_BENCH_S3_ENDPOINT name a running one.
//   node --import tsx bench/kubernetes.ts [trials=5]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { KubeConfig, type V1Job } from '@kubernetes/client-node';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createKubeClients } from '../activities/k8s/client.js';
import { createKubernetesRunStep, deleteJob } from '../activities/k8s/runner.js';
import { CONTAINER } from '../activities/k8s/job.js';
import type { KubernetesSettings } from '../activities/k8s/types.js';
import { LocalGitSource } from '../activities/source/local.js';
import { S3Store } from '../activities/store/s3.js';
import { setup, teardown } from '../test/setup/k8s.js';
import { BUSYBOX_IMAGE } from '../test/fixtures/images/images.js';
import { GitRepo } from '../test/engine/harness.js';
import type { RunStepRequest } from '../model/contracts.js';

const trials = Number(process.argv[2] ?? 5);
const POLL_MS = 200;
const ctx: Record<string, string> = {};
const own = !process.env.KUBECONFIG_BENCH;
if (own) await setup({ provide: (k: string, v: string) => (ctx[k] = v) } as never);
const kubeconfig = process.env.KUBECONFIG_BENCH ?? ctx.kubeconfig!;
const endpoint = process.env.K8S_BENCH_S3_ENDPOINT ?? ctx.k8sS3Endpoint!;
const root = mkdtempSync(join(tmpdir(), 'trainyard-bench-k8s-'));
try {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const kube = createKubeClients({ kubeconfig: kc });
  const ns = `bench-${Date.now().toString(36)}`;
  await kube.core.createNamespace({ body: { metadata: { name: ns } } });
  const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
  await kube.core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'store' }, stringData: { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' } },
  });
  const s3 = { endpoint, region: 'us-east-1', forcePathStyle: true, credentials };
  await new S3Client(s3).send(new CreateBucketCommand({ Bucket: ns }));
  const store = new S3Store({ bucket: ns, prefix: 'store', clientConfig: s3 });
  const settings: KubernetesSettings = {
    source: 'bench',
    agentImage: ctx.podAgentImage ?? 'localhost/trainyard:local',
    agentImagePullPolicy: 'IfNotPresent',
    agentResources: { requests: { cpu: '10m', memory: '64Mi' }, limits: {} },
    store: store.location,
    s3Endpoint: endpoint,
    s3Region: 'us-east-1',
    storeSecret: 'store',
    deployment: 'bench',
    classes: {
      standard: {
        name: 'standard',
        namespace: ns,
        nodeSelector: {},
        tolerations: [],
        gpu: { resource: 'nvidia.com/gpu', count: 0 },
        resources: { requests: { cpu: '10m' }, limits: {} },
        imagePullSecrets: [],
        terminationGracePeriodSeconds: 1,
        uploadGraceSeconds: 30,
        unschedulableTimeoutSeconds: 60,
        hourlyRateUsd: 0,
        gpuHourlyRateUsd: 0,
      },
    },
  };
  const repo = new GitRepo(root).write({ 'train.py': 'print(1)\n' });
  const commit = repo.commit();
  let lastJob: V1Job | undefined;
  const create = kube.batch.createNamespacedJob.bind(kube.batch);
  kube.batch.createNamespacedJob = ((req: Parameters<typeof create>[0]) => {
    lastJob = structuredClone(req.body);
    return create(req);
  }) as typeof create;
  const runStep = createKubernetesRunStep({
    store,
    sources: new LocalGitSource(join(root, 'sources')),
    settings,
    kube,
    workRoot: join(root, 'work'),
    pollMs: POLL_MS,
  });
  const input = await store.putBytes('input bytes');
  const spec: RunStepRequest['spec'] = {
    pipeline: 'bench',
    step: 'train',
    image: BUSYBOX_IMAGE,
    command: ['sh', '-c', 'sleep 1; echo done > /outputs/out'],
    env: {},
    params: { epochs: 1 },
    inputs: { data: input },
    outputs: ['out'],
    source: { kind: 'git', repoPath: repo.path, commit, subdir: '' },
    timeoutSeconds: 600,
    gpus: false,
  };

  const trainyard: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < trials; i++) {
    // Trainyard: the runner activity, as the worker runs it.
    const env = new MockActivityEnvironment({
      workflowExecution: { workflowId: `bench-${i}`, runId: `r${Date.now()}-${i}` },
    });
    let runningAt: number | undefined;
    env.on('heartbeat', (d: { phase?: string }) => {
      if (d?.phase === 'running') runningAt ??= Date.now();
    });
    const t0 = Date.now();
    await env.run(runStep, {
      execId: `bench-${i}-${Date.now()}`,
      attempt: 1,
      spec,
      heartbeatTimeoutMs: 30_000,
      host: { kind: 'kubernetes' as const, queue: 'bench', kubernetesClass: 'standard', gpus: 0 },
      runId: 'bench',
    } satisfies RunStepRequest);
    trainyard.push((runningAt ?? Date.now()) - t0);

    // Bare: the very Job the runner created (renamed), through kubectl, then the same polling.
    const job = structuredClone(lastJob!);
    job.metadata!.name = `bare-${i}-${Date.now().toString(36)}`;
    const b0 = Date.now();
    await new Promise<void>((resolve, reject) => {
      const p = spawn('kubectl', ['--kubeconfig', kubeconfig, 'create', '-f', '-'], {
        stdio: ['pipe', 'ignore', 'inherit'],
      });
      p.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`kubectl create exited ${c}`))));
      p.stdin.end(JSON.stringify(job));
    });
    for (;;) {
      const pods = await kube.core.listNamespacedPod({
        namespace: ns,
        labelSelector: `job-name=${job.metadata!.name}`,
      });
      if (pods.items[0]?.status?.containerStatuses?.find((c) => c.name === CONTAINER.step)?.state?.running) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    bare.push(Date.now() - b0);
    await deleteJob(kube, ns, job.metadata!.name!, 0, true);
  }
  await kube.core.deleteNamespace({ name: ns, gracePeriodSeconds: 0 });
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`step ready -> container running, local Kubernetes, ${trials} trials (ms)`);
  console.log(`| path | median | min | max |`);
  console.log(`| --- | --- | --- | --- |`);
  console.log(
    `| trainyard (runner activity) | ${median(trainyard)} | ${Math.min(...trainyard)} | ${Math.max(...trainyard)} |`,
  );
  console.log(
    `| bare kubectl create job (same spec) | ${median(bare)} | ${Math.min(...bare)} | ${Math.max(...bare)} |`,
  );
  console.log(`ratio (median): ${(median(trainyard) / median(bare)).toFixed(2)}`);
} finally {
  rmSync(root, { recursive: true, force: true });
  if (own) await teardown();
}
