// When the upload sidecar is killed before it has stored a finished step's outputs, the step's
// failure says so in words that explain it without the cluster at hand: the exit code, how long
// after the step container it ended against the pod's grace time, and the agent's own log.
// The pods reach the store through a proxy here that, once the step runs, accepts connections
// and never answers (an S3 endpoint stalled under load), so the kubelet's SIGKILL at the end of
// the class's grace time comes for real.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stepOf, BUSYBOX_IMAGE } from '../../engine/harness.js';
import { eventually, startKubeEngine, testClass, type KubeEngine } from './harness.js';

let e: KubeEngine;
let proxy: Server;
let stalled = false;
const sockets = new Set<Socket>();

beforeAll(async () => {
  const moto = new URL(inject('k8sS3Endpoint'));
  proxy = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (stalled) return; // accepted, never answered
    const up = connect(Number(moto.port), moto.hostname);
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => client.destroy());
    client.pipe(up).pipe(client);
  });
  // On the pod bridge's address, where the pods reach moto too.
  await new Promise<void>((resolve) => proxy.listen(0, moto.hostname, resolve));
  const port = (proxy.address() as { port: number }).port;
  e = await startKubeEngine({
    podS3Endpoint: `http://${moto.hostname}:${port}`,
    classes: (ns) => ({ quick: testClass('quick', ns, { uploadGraceSeconds: 3 }) }),
  });
});
afterAll(async () => {
  await e?.stop();
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => proxy?.close(resolve));
});

describe('the upload sidecar', () => {
  it('killed at the end of its grace time while storing: the failure gives its exit code, timing and own log', async () => {
    const repo = e.repo().write({
      '.trainyard/up.yaml': `name: up
machines:
  k: { kubernetes: quick }
steps:
  train: { image: ${BUSYBOX_IMAGE}, machine: k, run: "sleep 2 && echo weights > /outputs/model", outputs: [model], cache: false }
`,
    });
    repo.commit();
    const { workflowId } = await e.start(repo, '.trainyard/up.yaml');
    // The fetch agent has laid out the commit; from now on the store does not answer the pod.
    await eventually(
      async () =>
        (await e.pods()).some((p) =>
          p.status?.containerStatuses?.some((c) => c.name === 'step' && (c.state?.running || c.state?.terminated)),
        )
          ? true
          : undefined,
      'the step container started',
    );
    stalled = true;
    const s = await e.result(workflowId);
    const train = stepOf(s, 'train');
    expect(train.state).toBe('failed');
    expect(train.message).toMatch(
      /^outputs could not be stored: the upload agent exited with code 137 \(\w+\); \d+s after the step container ended \(grace 3s\); its log: /,
    );
    // The agent's own lines: it listened, was told to stop, and never logged a stored output.
    expect(train.message).toMatch(
      /\d\d:\d\d:\d\d\.\d{3} listening for SIGTERM \| \d\d:\d\d:\d\d\.\d{3} told to stop: storing the outputs \(SIGTERM\)$/,
    );
    expect(train.outcome!.attempts.map((a) => [a.outcome, a.exitCode])).toEqual([['failed', 0]]);
    expect(await e.pods()).toEqual([]);
  });
});
