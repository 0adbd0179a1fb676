// The failures the kubelet and the API report on their own, caused for real on the local
// Kubernetes: the kernel's OOM killer in a container's memory cgroup, an eviction through the
// API's Eviction subresource (as `kubectl drain` does), and the kubelet evicting a pod past its
// ephemeral-storage limit. Each reads in the report and the lineage as docs/kubernetes.md says.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lineageSchemaErrors } from '../../lineage/schema.js';
import { stepOf, BUSYBOX_IMAGE, PYTHON_IMAGE } from '../../engine/harness.js';
import { eventually, startKubeEngine, testClass, type KubeEngine } from './harness.js';

let e: KubeEngine;
beforeAll(async () => {
  e = await startKubeEngine({
    classes: (ns) => ({
      standard: testClass('standard', ns),
      small: testClass('small', ns, {
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '48Mi' } },
      }),
      // The kubelet measures a container's writable layer and logs against this limit.
      tiny: testClass('tiny', ns, {
        resources: {
          requests: { cpu: '10m', memory: '32Mi', 'ephemeral-storage': '1Mi' },
          limits: { 'ephemeral-storage': '4Mi' },
        },
      }),
    }),
  });
});
afterAll(async () => {
  await e?.stop();
});

interface LineageDoc {
  steps: { name: string; state: string; message: string | null; attempts: { outcome: string; message?: string }[] }[];
}

const runningPod = async (): Promise<string | undefined> =>
  (await e.pods()).find(
    (p) =>
      !p.metadata?.deletionTimestamp && p.status?.containerStatuses?.some((c) => c.name === 'step' && c.state?.running),
  )?.metadata?.name;

describe('kubernetes failures reported by the kubelet and the API', () => {
  it('a step past its memory limit fails as OOMKilled, in the report and the lineage, and is not retried as a lost pod', async () => {
    const repo = e.repo().write({
      '.trainyard/oom.yaml': `name: oom
machines:
  small: { kubernetes: small }
steps:
  hog:
    image: ${PYTHON_IMAGE}
    machine: small
    run: python3 -c "print('allocating', flush=True); b = bytearray(256 * 1024 * 1024); print('survived', len(b))"
    cache: false
`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/oom.yaml');
    const hog = stepOf(s, 'hog');
    expect([hog.state, hog.message]).toEqual([
      'failed',
      'killed: out of memory (OOMKilled; memory limit 48Mi, exit code 137)',
    ]);
    expect(hog.outcome!.attempts.map((a) => [a.outcome, a.exitCode])).toEqual([['failed', 137]]);
    const log = (await e.store.getBytes(hog.outcome!.logDigest!)).toString();
    expect(log).toContain('O allocating');
    expect(log).not.toContain('survived');
    const lineage = await e.store.getRecord<LineageDoc>(s.lineageKey!);
    expect(lineageSchemaErrors(lineage)).toEqual([]);
    expect(lineage!.steps.find((x) => x.name === 'hog')).toMatchObject({
      state: 'failed',
      message: 'killed: out of memory (OOMKilled; memory limit 48Mi, exit code 137)',
    });
    expect(await e.pods()).toEqual([]);
  });

  const RETRIED = (cls: string, first: string): string => `name: evict
machines:
  k: { kubernetes: ${cls} }
steps:
  work:
    image: ${BUSYBOX_IMAGE}
    machine: k
    run: 'if [ "$TRAINYARD_ATTEMPT" = 1 ]; then ${first}; fi; echo "attempt $TRAINYARD_ATTEMPT" > /outputs/result'
    outputs: [result]
    cache: false
`;

  it('a pod evicted through the Eviction API (as kubectl drain does) is retried on a new pod', async () => {
    const repo = e
      .repo()
      .write({ '.trainyard/evict.yaml': RETRIED('standard', 'sleep 600'), 'salt.txt': `api ${e.salt}` });
    repo.commit();
    const { workflowId } = await e.start(repo, '.trainyard/evict.yaml');
    const pod = await eventually(runningPod, 'the first attempt running');
    // As `kubectl drain --grace-period=1`: with the pod's own grace (the class's uploadGraceSeconds)
    // the kubelet, already stopping the sleeping step, lets it run to that end.
    await e.kube.core.createNamespacedPodEviction({
      namespace: e.namespace,
      name: pod,
      body: {
        apiVersion: 'policy/v1',
        kind: 'Eviction',
        metadata: { name: pod, namespace: e.namespace },
        deleteOptions: { gracePeriodSeconds: 1 },
      },
    });
    const s = await e.result(workflowId);
    const work = stepOf(s, 'work');
    expect([work.state, work.message]).toEqual(['succeeded', undefined]);
    expect(work.outcome!.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'host_lost'],
      [2, 'succeeded'],
    ]);
    expect(work.outcome!.attempts[0]!.message).toBe(
      `pod lost: ${pod} was evicted (EvictionByEvictionAPI: Eviction API: evicting)`,
    );
    expect((await e.store.getBytes(work.outcome!.outputs.result!.digest)).toString()).toBe('attempt 2\n');
    expect(await e.pods()).toEqual([]);
  });

  it("a pod the kubelet evicts for its ephemeral storage is retried on a new pod, with the kubelet's reason", async () => {
    // 16 MiB in the container's writable layer, past the class's 4Mi limit; the kubelet's
    // eviction manager notices within its monitoring period and evicts the pod.
    const repo = e.repo().write({
      '.trainyard/evict.yaml': RETRIED('tiny', 'dd if=/dev/zero of=/tmp/fill bs=1M count=16 && sleep 600'),
      'salt.txt': `kubelet ${e.salt}`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/evict.yaml');
    const work = stepOf(s, 'work');
    expect([work.state, work.message]).toEqual(['succeeded', undefined]);
    expect(work.outcome!.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'host_lost'],
      [2, 'succeeded'],
    ]);
    expect(work.outcome!.attempts[0]!.message).toMatch(/^pod lost: trainyard-\w+-1-\w+ evicted: .*ephemeral.*4Mi/i);
    expect((await e.store.getBytes(work.outcome!.outputs.result!.digest)).toString()).toBe('attempt 2\n');
    const lineage = await e.store.getRecord<LineageDoc>(s.lineageKey!);
    expect(lineage!.steps.find((x) => x.name === 'work')!.attempts.map((a) => a.outcome)).toEqual([
      'host_lost',
      'succeeded',
    ]);
    expect(await e.pods()).toEqual([]);
  });
});
