// What happens to a step's Job when things go wrong: no node can take it, the run is
// cancelled, its pod is deleted behind Trainyard's back, or a crash leaves a Job behind.
import { Client, Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { K8S_ANNOTATION, K8S_LABEL, MANAGED_BY } from '../../../activities/k8s/types.js';
import { kubernetesActivitiesFor } from '../../../app/compute/activities.js';
import { dataConverter } from '../../../app/codec.js';
import { cancelPipelineRun } from '../../../app/engine.js';
import { workflowBundle } from '../../../app/worker.js';
import type { reapOrphans } from '../../../workflows/reaper.js';
import { stepOf, BUSYBOX_IMAGE } from '../../engine/harness.js';
import { temporalAddress } from '../../setup/services.js';
import { eventually, startKubeEngine, testClass, type KubeEngine } from './harness.js';

let e: KubeEngine;
beforeAll(async () => {
  e = await startKubeEngine({
    classes: (ns) => ({
      standard: testClass('standard', ns),
      // The node has one GPU (test/setup/k8s.ts); a step asking for two waits, then fails.
      tight: testClass('tight', ns, { unschedulableTimeoutSeconds: 3 }),
    }),
  });
});
afterAll(async () => {
  await e?.stop();
});

const running = async (): Promise<string | undefined> => {
  const pod = (await e.pods()).find((p) =>
    p.status?.containerStatuses?.some((c) => c.name === 'step' && c.state?.running),
  );
  return pod?.metadata?.name;
};

describe('kubernetes step lifecycle', () => {
  it("fails an Unschedulable step with the scheduler's reason after the class's wait", async () => {
    const repo = e.repo().write({
      '.trainyard/big.yaml': `name: big
machines:
  two: { kubernetes: tight, gpus: 2 }
steps:
  train: { image: ${BUSYBOX_IMAGE}, machine: two, run: "true", cache: false }
`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/big.yaml');
    expect(stepOf(s, 'train').state).toBe('failed');
    expect(stepOf(s, 'train').message).toMatch(
      /^Unschedulable for 3s in namespace ty-\w+ \(class tight, 2 × nvidia\.com\/gpu\): 0\/1 nodes are available: 1 Insufficient nvidia\.com\/gpu/,
    );
    expect(await e.pods()).toEqual([]);
  });

  it('cancel mid-step deletes the Job: no pod is left when the run reports cancelled', async () => {
    const repo = e.repo().write({
      '.trainyard/long.yaml': `name: long
machines:
  k: { kubernetes: standard }
steps:
  wait: { image: ${BUSYBOX_IMAGE}, machine: k, run: "sleep 600", cache: false }
`,
    });
    repo.commit();
    const { workflowId } = await e.start(repo, '.trainyard/long.yaml');
    await eventually(running, 'the step container running');
    await cancelPipelineRun(e.client, workflowId);
    const s = await e.result(workflowId);
    expect(s.state).toBe('cancelled');
    expect(stepOf(s, 'wait').state).toBe('cancelled');
    expect(await e.pods()).toEqual([]);
    expect((await e.kube.batch.listNamespacedJob({ namespace: e.namespace })).items).toEqual([]);
  });

  it("retries a step whose pod was deleted behind Trainyard's back, on a new pod", async () => {
    const repo = e.repo().write({
      '.trainyard/lost.yaml': `name: lost
machines:
  k: { kubernetes: standard }
steps:
  work:
    image: ${BUSYBOX_IMAGE}
    machine: k
    run: 'if [ "$TRAINYARD_ATTEMPT" = 1 ]; then sleep 600; fi; echo "attempt $TRAINYARD_ATTEMPT" > /outputs/result'
    outputs: [result]
    cache: false
`,
    });
    repo.commit();
    const { workflowId } = await e.start(repo, '.trainyard/lost.yaml');
    const pod = await eventually(running, 'the first attempt running');
    await e.kube.core.deleteNamespacedPod({ namespace: e.namespace, name: pod, gracePeriodSeconds: 0 });
    const s = await e.result(workflowId);
    const work = stepOf(s, 'work');
    expect([work.state, work.message]).toEqual(['succeeded', undefined]);
    expect(work.outcome!.attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'host_lost'],
      [2, 'succeeded'],
    ]);
    expect(work.outcome!.attempts[0]!.message).toMatch(/^pod lost: /);
    expect((await e.store.getBytes(work.outcome!.outputs.result!.digest)).toString()).toBe('attempt 2\n');
    expect(await e.pods()).toEqual([]);
  });

  it('the reaper deletes a Job whose step execution is unknown, and leaves others alone', async () => {
    const orphan = {
      metadata: {
        name: `orphan-${e.salt}`,
        labels: { [K8S_LABEL.managed]: MANAGED_BY, [K8S_LABEL.deployment]: e.settings.deployment },
        annotations: { [K8S_ANNOTATION.workflowId]: `trainyard-step-gone-${e.salt}` },
      },
      spec: {
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: 'Never',
            terminationGracePeriodSeconds: 1,
            containers: [
              { name: 'step', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', args: ['sleep', '600'] },
            ],
          },
        },
      },
    };
    const foreign = {
      ...orphan,
      metadata: {
        ...orphan.metadata,
        name: `foreign-${e.salt}`,
        labels: { [K8S_LABEL.managed]: MANAGED_BY, [K8S_LABEL.deployment]: 'another-deployment' },
      },
    };
    await e.kube.batch.createNamespacedJob({ namespace: e.namespace, body: orphan });
    await e.kube.batch.createNamespacedJob({ namespace: e.namespace, body: foreign });
    const taskQueue = `reaper-${e.salt}`;
    const worker = await Worker.create({
      connection: await (await import('@temporalio/worker')).NativeConnection.connect({ address: temporalAddress() }),
      taskQueue,
      dataConverter,
      workflowBundle: await workflowBundle(),
      activities: {
        ...kubernetesActivitiesFor(e.compute, { client: e.client, kube: e.kube }),
        computeListManagedInstances: async () => [],
        computeWorkflowStates: async () => ({}),
        computeTerminateHosts: async () => [],
      },
    });
    const client = new Client({ connection: await Connection.connect({ address: temporalAddress() }), dataConverter });
    const report = await worker.runUntil(
      client.workflow.execute<typeof reapOrphans>('reapOrphans', {
        taskQueue,
        workflowId: `reaper-${e.salt}`,
        args: [{ kubernetes: true, graceSeconds: 0 }],
      }),
    );
    expect(report.deletedJobs).toEqual([
      {
        namespace: e.namespace,
        name: `orphan-${e.salt}`,
        workflowId: `trainyard-step-gone-${e.salt}`,
        reason: 'run-unknown',
      },
    ]);
    const left = await eventually(async () => {
      const names = (await e.kube.batch.listNamespacedJob({ namespace: e.namespace })).items.map(
        (j) => j.metadata!.name,
      );
      return names.includes(`orphan-${e.salt}`) ? undefined : names;
    }, 'the orphan Job gone');
    expect(left).toEqual([`foreign-${e.salt}`]);
    await e.kube.batch.deleteNamespacedJob({
      namespace: e.namespace,
      name: `foreign-${e.salt}`,
      propagationPolicy: 'Background',
      gracePeriodSeconds: 0,
    });
  });
});
