// The pod agent's upload sidecar holds the only copy of a step's outputs: it must ride out S3
// being unreachable for a while, and when it gives up, say how long it tried. S3 is the test
// run's moto behind a TCP proxy here that resets connections while it is "down".
import { S3Client } from '@aws-sdk/client-s3';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MOUNT, type PodPlan, type UploadResult } from '../../activities/k8s/job.js';
import {
  type AgentMounts,
  POD_AGENT_S3_ATTEMPTS,
  podAgentStore,
  uploadOutputs,
} from '../../activities/k8s/podagent.js';
import { sha256Bytes } from '../../activities/store/digest.js';
import { s3ClientConfig, s3Endpoint } from '../setup/services.js';
import { createTestBucket, deleteTestBucket, scratchDir } from '../store/backends.js';

/** A TCP proxy to moto that resets the connections it accepts while `down()` says so. */
async function flakyProxy(
  down: (resetSoFar: number) => boolean,
): Promise<{ url: string; resets: () => number; close: () => Promise<void> }> {
  const target = new URL(s3Endpoint());
  let resets = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    if (down(resets)) {
      resets++;
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    resets: () => resets,
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('pod agent upload', () => {
  let client: S3Client;
  let bucket: string;
  let work: string;
  const model = Buffer.from('weights\n');
  beforeAll(async () => {
    client = new S3Client(s3ClientConfig());
    bucket = await createTestBucket(client, 'podagent');
    work = await scratchDir('podagent');
    await mkdir(join(work, 'outputs'), { recursive: true });
    await writeFile(join(work, 'outputs', 'model'), model);
  });
  afterAll(async () => {
    if (bucket) await deleteTestBucket(client, bucket);
    client?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const plan = (resultKey: string): PodPlan => ({
    store: `s3://${bucket}/p`,
    workspace: { digest: sha256Bytes(Buffer.from('')), kind: 'file' },
    inputs: {},
    params: {},
    outputs: ['model'],
    resultKey,
  });
  const mounts = (): AgentMounts => ({ ...AGENT_MOUNT, outputs: join(work, 'outputs') });
  const via = (url: string) => ({ ...s3ClientConfig(), endpoint: url });

  it('stores the outputs when S3 resets more connections than the SDK retries by default (3 attempts)', async () => {
    const proxy = await flakyProxy((n) => n < 5);
    try {
      const p = plan('results/flaky');
      const store = podAgentStore(p, via(proxy.url));
      const r = await uploadOutputs(p, store, mounts());
      expect(r.refused).toEqual({});
      expect(r.outputs.model?.digest).toBe(sha256Bytes(model));
      expect(proxy.resets()).toBe(5);
      expect(await store.getRecord<UploadResult>('results/flaky')).toEqual(r);
      const direct = podAgentStore(p, s3ClientConfig());
      expect(await direct.has(sha256Bytes(model))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('refuses an output with the number of attempts and the time it tried once S3 stays unreachable', async () => {
    // Down for every attempt at the output, up again for the result record.
    const proxy = await flakyProxy((n) => n < POD_AGENT_S3_ATTEMPTS);
    try {
      const p = plan('results/down');
      const r = await uploadOutputs(p, podAgentStore(p, via(proxy.url)), mounts());
      expect(r.outputs).toEqual({});
      expect(r.refused.model).toMatch(new RegExp(`\\(${POD_AGENT_S3_ATTEMPTS} attempts in \\d+\\.\\d s\\)$`));
      expect(await podAgentStore(p, s3ClientConfig()).getRecord<UploadResult>('results/down')).toEqual(r);
    } finally {
      await proxy.close();
    }
  });
});
