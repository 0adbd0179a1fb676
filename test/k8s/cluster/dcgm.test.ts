// GPU utilisation of a Kubernetes step from the node's dcgm-exporter, on the real local cluster.
// There is no GPU here (nor in CI): the node's nvidia.com/gpu capacity is patched by the test
// setup, and a small HTTP server in this test stands in for NVIDIA's dcgm-exporter DaemonSet.
// It answers the way the exporter does with its Kubernetes pod mapping on: one series per GPU,
// labelled with the namespace and pod holding it — the step's pod (whose name it reads from the
// API once the runner has created it) and, on the same node, another pod whose GPU sits idle.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReport } from '../../../activities/report/markdown.js';
import type { LineageDoc } from '../../../activities/lineage/document.js';
import { stepOf, BUSYBOX_IMAGE } from '../../engine/harness.js';
import { lineageSchemaErrors } from '../../lineage/schema.js';
import { startKubeEngine, testClass, type KubeEngine } from './harness.js';

let e: KubeEngine;
let exporter: Server;
/** Utilisation percent served for the step's pod, one per scrape, in order. */
const served: number[] = [];

beforeAll(async () => {
  exporter = createServer((_req, res) => {
    void (async () => {
      const lines = ['# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).', '# TYPE DCGM_FI_DEV_GPU_UTIL gauge'];
      const series = (name: string, ns: string, pod: string, gpu: number, value: number): string =>
        `${name}{gpu="${gpu}",UUID="GPU-0000000${gpu}-d9cf-fef3-62e9-d92044ab6e52",device="nvidia${gpu}",modelName="NVIDIA A100-SXM4-80GB",Hostname="localhost",container="step",namespace="${ns}",pod="${pod}"} ${value}`;
      for (const p of await e.pods()) {
        // Busy and idle in turn, so the mean and the idle fraction depend on every sample.
        const util = served.length % 2 === 0 ? 90 : 2;
        served.push(util);
        lines.push(
          series('DCGM_FI_DEV_GPU_UTIL', e.namespace, p.metadata!.name!, 0, util),
          series('DCGM_FI_DEV_FB_USED', e.namespace, p.metadata!.name!, 0, 2048),
          series('DCGM_FI_DEV_FB_FREE', e.namespace, p.metadata!.name!, 0, 79872),
        );
        // Not the step's: another pod on the node, and the same pod name in another namespace.
        lines.push(
          series('DCGM_FI_DEV_GPU_UTIL', e.namespace, 'someone-else', 1, 0),
          series('DCGM_FI_DEV_FB_USED', e.namespace, 'someone-else', 1, 70000),
        );
        lines.push(series('DCGM_FI_DEV_GPU_UTIL', 'other-team', p.metadata!.name!, 2, 0));
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(`${lines.join('\n')}\n`);
    })().catch(() => res.writeHead(500).end());
  });
  // Every address: the runner fills {hostIP} with the node's address, which is this machine.
  await new Promise<void>((r) => exporter.listen(0, '0.0.0.0', r));
  const port = (exporter.address() as AddressInfo).port;
  e = await startKubeEngine({
    classes: (ns) => ({
      standard: testClass('standard', ns, { dcgmExporterUrl: `http://{hostIP}:${port}/metrics`, dcgmScrapeSeconds: 1 }),
    }),
  });
});
afterAll(async () => {
  await e?.stop();
  await new Promise((r) => exporter?.close(r));
});

describe('GPU utilisation from dcgm-exporter', () => {
  it("records the step pod's utilisation, ignores other pods' GPUs, and counts idle GPU time in the lineage and report", async () => {
    const repo = e.repo().write({
      '.trainyard/gpu.yaml': `name: gpu
machines:
  g: { kubernetes: standard, gpus: 1 }
steps:
  train: { image: ${BUSYBOX_IMAGE}, machine: g, run: "sleep 5 && echo trained > /outputs/model", outputs: [model], cache: false }
`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/gpu.yaml');
    const train = stepOf(s, 'train');
    expect([train.state, train.message]).toEqual(['succeeded', undefined]);
    expect(served.length).toBeGreaterThanOrEqual(2);
    const idle = served.filter((u) => u < 5).length / served.length;
    const host = train.host!;
    expect(host.gpu).toEqual({
      samples: served.length,
      meanUtilisation: served.reduce((a, b) => a + b, 0) / served.length,
      maxMemoryMiB: 2048,
      idleFraction: idle,
    });
    expect(host.idleGpuSeconds).toBeCloseTo(host.billedSeconds! * idle, 2);
    expect(train.outcome!.attempts[0]!.gpu).toEqual(host.gpu);

    const lineage = (await e.store.getRecord<LineageDoc>(s.lineageKey!))!;
    expect(lineageSchemaErrors(lineage)).toEqual([]);
    expect(lineage.steps.find((x) => x.name === 'train')!.host!.gpu).toEqual(host.gpu);
    expect(lineage.totals.gpu).toEqual({
      billedGpuSeconds: expect.closeTo(host.billedSeconds!, 2),
      idleGpuSeconds: expect.closeTo(host.idleGpuSeconds!, 2),
      idleFraction: expect.closeTo(idle, 2),
    });
    expect(renderReport(lineage)).toContain(`billed, ${(lineage.totals.gpu!.idleFraction * 100).toFixed(1)}% idle |`);
  });

  it('records nothing for a step without GPUs, whose pod is never scraped', async () => {
    const before = served.length;
    const repo = e.repo().write({
      '.trainyard/cpu.yaml': `name: cpu
machines:
  c: { kubernetes: standard }
steps:
  prep: { image: ${BUSYBOX_IMAGE}, machine: c, run: "sleep 2", cache: false }
`,
    });
    repo.commit();
    const s = await e.run(repo, '.trainyard/cpu.yaml');
    expect(stepOf(s, 'prep').state).toBe('succeeded');
    expect(stepOf(s, 'prep').host!.gpu).toBeUndefined();
    expect(served.length).toBe(before);
  });
});
