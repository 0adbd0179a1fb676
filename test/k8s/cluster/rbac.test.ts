// The Role in deploy/k8s/runner-rbac.yaml is enough: a step runs as a Job and the reaper
// lists and deletes Jobs with a ServiceAccount token bound to exactly that Role, and nothing
// more (no Secrets, nothing outside the namespace).
import { readFileSync } from 'node:fs';
import { KubeConfig, type V1Role, type V1RoleBinding } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createKubeClients } from '../../../activities/k8s/client.js';
import { kubernetesActivitiesFor } from '../../../app/compute/activities.js';
import { stepOf, BUSYBOX_IMAGE } from '../../engine/harness.js';
import { CREDENTIALS, startKubeEngine, type KubeEngine } from './harness.js';

const admin = new KubeConfig();
let e: KubeEngine | undefined;
const namespace = `ty-rbac-${Math.random().toString(16).slice(2, 8)}`;

beforeAll(async () => {
  admin.loadFromFile(inject('kubeconfig'));
  const a = createKubeClients({ kubeconfig: admin });
  await a.core.createNamespace({ body: { metadata: { name: namespace } } });
  await a.core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: 'trainyard-store' },
      stringData: { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey },
    },
  });
  await a.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'trainyard-worker' } } });
  const [role, binding] = parseAllDocuments(
    readFileSync(new URL('../../../deploy/k8s/runner-rbac.yaml', import.meta.url), 'utf8'),
  ).map((d) => d.toJS()) as [V1Role, V1RoleBinding];
  role.metadata!.namespace = namespace;
  binding.metadata!.namespace = namespace;
  binding.subjects![0]!.namespace = namespace;
  const rbac = admin.makeApiClient((await import('@kubernetes/client-node')).RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: role });
  await rbac.createNamespacedRoleBinding({ namespace, body: binding });
  const token = (
    await a.core.createNamespacedServiceAccountToken({
      namespace,
      name: 'trainyard-worker',
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    })
  ).status!.token;
  const cluster = admin.getCurrentCluster()!;
  const worker = new KubeConfig();
  worker.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'trainyard-worker', token }],
    contexts: [{ name: 'worker', cluster: cluster.name, user: 'trainyard-worker', namespace }],
    currentContext: 'worker',
  });
  e = await startKubeEngine({ namespace, kubeconfig: worker });
});

afterAll(async () => {
  await e?.stop();
  await createKubeClients({ kubeconfig: admin })
    .core.deleteNamespace({ name: namespace, gracePeriodSeconds: 0 })
    .catch(() => undefined);
});

describe('the runner Role in deploy/', () => {
  it('is enough to run a step as a Job and for the reaper, and grants no Secrets', async () => {
    const repo = e!.repo().write({
      '.trainyard/rbac.yaml': `name: rbac
machines:
  k: { kubernetes: standard }
steps:
  run: { image: ${BUSYBOX_IMAGE}, machine: k, run: "echo ok > /outputs/out", outputs: [out], cache: false }
`,
    });
    repo.commit();
    const s = await e!.run(repo, '.trainyard/rbac.yaml');
    expect([stepOf(s, 'run').state, stepOf(s, 'run').message]).toEqual(['succeeded', undefined]);
    const reaper = kubernetesActivitiesFor(e!.compute, { client: e!.client, kube: e!.kube });
    expect(await reaper.kubernetesListJobs()).toEqual([]);
    await expect(e!.kube.core.listNamespacedSecret({ namespace })).rejects.toMatchObject({ code: 403 });
    await expect(e!.kube.batch.listNamespacedJob({ namespace: 'default' })).rejects.toMatchObject({ code: 403 });
  });
});
