// The server's Kubernetes settings (TRAINYARD_K8S_CONFIG) and the policy a pipeline's
// `kubernetes:` machines must meet. No cluster needed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ComputeConfigError, loadComputeConfig } from '../../app/compute/config.js';
import { checkComputePolicy, estimateWorstCaseCost } from '../../app/compute/policy.js';
import { parsePipeline } from '../../pipeline/parse.js';
import type { Pipeline } from '../../pipeline/types.js';

const dir = mkdtempSync(join(tmpdir(), 'trainyard-k8scfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GOOD = `# Kubernetes compute of this server
agentImage: ghcr.io/trainyard/trainyard:0.1.0
store: s3://ml-artifacts/trainyard
storeSecret: trainyard-store
classes:
  a100:
    namespace: ml-jobs
    nodeSelector: { nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB }
    tolerations: [{ key: nvidia.com/gpu, operator: Exists, effect: NoSchedule }]
    gpu: { resource: nvidia.com/gpu, count: 8 }
    resources: { requests: { cpu: "8", memory: 64Gi }, limits: { memory: 64Gi } }
    serviceAccountName: trainyard-step
    imagePullSecrets: [regcred]
    priorityClassName: ml-high
    hourlyRateUsd: 1.5
    gpuHourlyRateUsd: 2.5
    dcgmExporterUrl: "http://{hostIP}:9400/metrics"
  cpu-small:
    namespace: ml-jobs
    resources: { requests: { cpu: 500m, memory: 1Gi } }
`;

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function problems(env: Record<string, string>): string[] {
  try {
    loadComputeConfig(env);
  } catch (e) {
    if (e instanceof ComputeConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('Kubernetes settings', () => {
  it('is off without TRAINYARD_K8S_CONFIG, and reads classes with their defaults when set', () => {
    expect(loadComputeConfig({}).kubernetes).toBeNull();
    const k = loadComputeConfig({ TRAINYARD_K8S_CONFIG: file('good.yaml', GOOD) }).kubernetes!;
    expect(k).toMatchObject({
      agentImage: 'ghcr.io/trainyard/trainyard:0.1.0',
      store: 's3://ml-artifacts/trainyard',
      storeSecret: 'trainyard-store',
      deployment: 'default',
      agentImagePullPolicy: 'IfNotPresent',
    });
    expect(k.classes.a100).toMatchObject({
      namespace: 'ml-jobs',
      gpu: { resource: 'nvidia.com/gpu', count: 8 },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      resources: { requests: { cpu: '8', memory: '64Gi' }, limits: { memory: '64Gi' } },
      imagePullSecrets: ['regcred'],
      terminationGracePeriodSeconds: 5,
      unschedulableTimeoutSeconds: 600,
    });
    expect(k.classes['cpu-small']).toMatchObject({
      gpu: { resource: 'nvidia.com/gpu', count: 0 },
      hourlyRateUsd: 0,
      nodeSelector: {},
    });
    expect(k.classes.a100!.dcgmExporterUrl).toBe('http://{hostIP}:9400/metrics');
    expect(k.classes['cpu-small']!.dcgmExporterUrl).toBeUndefined();
  });

  it('refuses a dcgm-exporter URL that is not http(s) or has unknown placeholders, and a scrape interval out of range', () => {
    const path = file(
      'dcgm.yaml',
      `agentImage: img
store: s3://ml-artifacts/trainyard
classes:
  a:
    namespace: ml
    dcgmExporterUrl: "http://{pod}:9400/metrics"
    dcgmScrapeSeconds: 0
  b:
    namespace: ml
    dcgmExporterUrl: file:///etc/passwd
`,
    );
    const what =
      "an http(s) URL of the dcgm-exporter metrics, where {hostIP} and {node} stand for the pod's node (e.g. http://{hostIP}:9400/metrics)";
    expect(problems({ TRAINYARD_K8S_CONFIG: path })).toEqual([
      `${path}:6:22: "dcgmExporterUrl" must be ${what}, got "http://{pod}:9400/metrics"`,
      `${path}:7:24: "dcgmScrapeSeconds" must be a whole number between 1 and 300, got 0`,
      `${path}:10:22: "dcgmExporterUrl" must be ${what}, got "file:///etc/passwd"`,
    ]);
  });

  it('reports every mistake in the file with its line and column', () => {
    const path = file(
      'bad.yaml',
      `agentImage: -rm
store: /var/lib/store
classes:
  A100:
    namespace: ml-jobs
  a100:
    namespace: ML
    gpu: { resource: "nvidia gpu", count: 100 }
    resources: { requests: { cpu: lots } }
    tolerations: [{ key: x, operator: Maybe }]
    terminationGracePeriod: 5
`,
    );
    expect(problems({ TRAINYARD_K8S_CONFIG: path })).toEqual([
      `${path}:2:8: "store" must be an s3://bucket/prefix artifact store (default TRAINYARD_STORE, which is /var/lib/store): pods cannot read a folder on this machine`,
      `${path}:4:3: class name "A100" must be lower-case letters, digits and "-" (a DNS label), so pipelines can name it`,
      `${path}:11:5: unknown key "terminationGracePeriod" in class "a100"; the keys allowed here are namespace, nodeSelector, tolerations, gpu, resources, serviceAccountName, imagePullSecrets, priorityClassName, terminationGracePeriodSeconds, uploadGraceSeconds, unschedulableTimeoutSeconds, podTemplatePatch, hourlyRateUsd, gpuHourlyRateUsd, dcgmExporterUrl, dcgmScrapeSeconds`,
      `${path}:7:16: "namespace" must be a namespace name, got "ML"`,
      `${path}:10:39: "operator" must be one of Exists, Equal, got "Maybe"`,
      `${path}:8:22: "resource" must be an extended resource name like nvidia.com/gpu, got "nvidia gpu"`,
      `${path}:8:43: "count" must be a whole number between 0 and 64, got 100`,
      `${path}:9:35: requests of cpu must be a Kubernetes quantity like 500m, 4 or 16Gi, got "lots"`,
      `${path}:1:13: "agentImage" must be an image reference, got "-rm"`,
    ]);
  });

  it('names an unreadable file', () => {
    expect(problems({ TRAINYARD_K8S_CONFIG: join(dir, 'missing.yaml') })[0]).toMatch(
      /^TRAINYARD_K8S_CONFIG: must be a readable file, got ".*missing\.yaml" \(ENOENT/,
    );
  });
});

const PIPELINE = `name: train
machines:
  gpu: { kubernetes: a100, gpus: 2 }
  huge: { kubernetes: a100, gpus: 9 }
  other: { kubernetes: v100, gpus: 1 }
steps:
  train: { image: busybox, run: echo, machine: gpu, timeout: 2h, retries: 1 }
  big: { image: busybox, run: echo, machine: huge }
  old: { image: busybox, run: echo, machine: other }
`;

function pipeline(text: string): Pipeline {
  const r = parsePipeline(text, '.trainyard/train.yaml');
  if (!r.pipeline) throw new Error(JSON.stringify(r.errors));
  return r.pipeline;
}

describe('Kubernetes machines against the server policy', () => {
  const env = () => ({ TRAINYARD_K8S_CONFIG: file('policy.yaml', GOOD) });

  it('refuses unknown classes and more GPUs than the class allows, pointing at their lines', () => {
    const errors = checkComputePolicy(pipeline(PIPELINE), loadComputeConfig(env()), PIPELINE);
    expect(errors.map((e) => `${e.line}:${e.column} ${e.message}`)).toEqual([
      '4:35 machine "huge" asks for 9 GPUs; Kubernetes class "a100" allows at most 8 (nvidia.com/gpu)',
      '5:24 Kubernetes machine class "v100" (machine "other") is not defined on this server (its classes: a100, cpu-small)',
    ]);
  });

  it('refuses kubernetes machines when the server has no Kubernetes configured', () => {
    const errors = checkComputePolicy(pipeline(PIPELINE), loadComputeConfig({}), PIPELINE);
    expect(errors).toEqual([
      {
        file: '.trainyard/train.yaml',
        line: 7,
        column: 48,
        message: expect.stringMatching(
          /^step "train" needs Kubernetes machine "gpu", but this server has no Kubernetes configured \(TRAINYARD_K8S_CONFIG is not set\)/,
        ),
      },
    ]);
  });

  it('prices the worst case from the class rate and counts its GPUs against the run limit', () => {
    const text = `name: train
machines:
  gpu: { kubernetes: a100, gpus: 2 }
steps:
  a: { image: busybox, run: echo, machine: gpu, timeout: 2h, retries: 1 }
  b: { image: busybox, run: echo, machine: gpu, timeout: 1h }
`;
    const cfg = loadComputeConfig({ ...env(), TRAINYARD_MAX_GPUS_PER_RUN: '3', TRAINYARD_MAX_COST_USD: '20' });
    // a: 2 h × 2 tries × ($1.5 + 2 × $2.5)/h = $26; b: 1 h × $6.5 = $6.5 (no boot time on Kubernetes)
    expect(estimateWorstCaseCost(pipeline(text), cfg).perStep).toEqual({ a: 26, b: 6.5 });
    expect(checkComputePolicy(pipeline(text), cfg, text).map((e) => e.message)).toEqual([
      "the run could hold 4 GPUs at once; this server allows at most 3 per run (lower the classes' gpus or the steps that use them)",
    ]);
  });
});
