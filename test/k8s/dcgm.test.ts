// GPU utilisation of Kubernetes steps from NVIDIA's dcgm-exporter: the Prometheus text parser,
// the filter to the step's pod, the summary the runner records, and the sampler against a real
// HTTP server. No GPU needed: the exporter's output is served as it prints it (format and labels
// from NVIDIA/dcgm-exporter's README, pod mapping on).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  dcgmSamples,
  exporterUrl,
  MAX_SCRAPE_BYTES,
  parsePromLine,
  scrapeDcgm,
  startDcgmSampler,
} from '../../activities/k8s/dcgm.js';

const POD = { namespace: 'ml-jobs', pod: 'ty-abc-1-xyz' };

function series(
  name: string,
  gpu: number,
  value: string,
  labels: { namespace?: string; pod?: string; extra?: string } = {},
): string {
  return `${name}{gpu="${gpu}",UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e5${gpu}",device="nvidia${gpu}",modelName="NVIDIA A100-SXM4-80GB",Hostname="gpu-node-1",container="step",namespace="${labels.namespace ?? POD.namespace}",pod="${labels.pod ?? POD.pod}"${labels.extra ?? ''}} ${value}`;
}

const SCRAPE = [
  '# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).',
  '# TYPE DCGM_FI_DEV_SM_CLOCK gauge',
  series('DCGM_FI_DEV_SM_CLOCK', 0, '1410'),
  '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).',
  '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
  series('DCGM_FI_DEV_GPU_UTIL', 0, '87'),
  series('DCGM_FI_DEV_GPU_UTIL', 1, '3'),
  series('DCGM_FI_DEV_GPU_UTIL', 2, '99', { pod: 'someone-else' }),
  series('DCGM_FI_DEV_GPU_UTIL', 3, '99', { namespace: 'other', pod: POD.pod }),
  'DCGM_FI_DEV_GPU_UTIL{gpu="4",UUID="GPU-x",Hostname="gpu-node-1",container="",namespace="",pod=""} 50',
  series('DCGM_FI_DEV_FB_USED', 0, '40960'),
  series('DCGM_FI_DEV_FB_FREE', 0, '40960'),
  series('DCGM_FI_DEV_FB_USED', 1, '512 1700000000000'),
  series('DCGM_FI_DEV_FB_USED', 2, '80000', { pod: 'someone-else' }),
  series('DCGM_FI_DEV_FB_USED', 5, '1000'), // no utilisation reading for GPU 5: left out
  '',
].join('\n');

describe('dcgm-exporter text', () => {
  it('parses a series line with escaped label values and an optional timestamp', () => {
    expect(
      parsePromLine('DCGM_FI_DEV_GPU_UTIL{gpu="0",modelName="a \\"b\\" \\\\ c",pod="p",} 42.5 1700000000000'),
    ).toEqual({
      name: 'DCGM_FI_DEV_GPU_UTIL',
      labels: { gpu: '0', modelName: 'a "b" \\ c', pod: 'p' },
      value: 42.5,
    });
    expect(parsePromLine('DCGM_FI_DEV_GPU_UTIL 7')).toEqual({ name: 'DCGM_FI_DEV_GPU_UTIL', labels: {}, value: 7 });
    expect(parsePromLine('DCGM_FI_DEV_GPU_UTIL{gpu="0"} NaN')!.value).toBeNaN();
  });

  it('refuses malformed, oversized and ambiguous lines instead of guessing', () => {
    for (const bad of [
      'DCGM_FI_DEV_GPU_UTIL{gpu="0"',
      'DCGM_FI_DEV_GPU_UTIL{gpu=0} 1',
      'DCGM_FI_DEV_GPU_UTIL{gpu="0" pod="p"} 1',
      'DCGM_FI_DEV_GPU_UTIL{gpu="0",gpu="1"} 1',
      'DCGM_FI_DEV_GPU_UTIL{gpu="\\x"} 1',
      'DCGM_FI_DEV_GPU_UTIL{gpu="0"} 1 2 3',
      'DCGM_FI_DEV_GPU_UTIL{gpu="0"} 12abc',
      'DCGM_FI_DEV_GPU_UTIL{gpu="0"}',
      `DCGM_FI_DEV_GPU_UTIL{pod="${'p'.repeat(600)}"} 1`,
      `DCGM_FI_DEV_GPU_UTIL{${Array.from({ length: 70 }, (_, i) => `l${i}="v"`).join(',')}} 1`,
      '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
    ])
      expect(parsePromLine(bad), bad).toBeUndefined();
  });

  it("keeps only the step pod's GPUs, with memory used and total in MiB", () => {
    expect(dcgmSamples(SCRAPE, POD)).toEqual([
      { index: 0, utilisationPercent: 87, memoryUsedMiB: 40960, memoryTotalMiB: 81920 },
      { index: 1, utilisationPercent: 3, memoryUsedMiB: 512, memoryTotalMiB: null },
    ]);
    expect(dcgmSamples(SCRAPE, { namespace: 'ml-jobs', pod: 'nobody' })).toEqual([]);
    // A hostile line in the middle changes nothing around it.
    expect(
      dcgmSamples(
        `${series('DCGM_FI_DEV_GPU_UTIL', 0, '87')}\nDCGM_FI_DEV_GPU_UTIL{pod="${POD.pod}",namespace="${POD.namespace}",gpu="1" 99\n`,
        POD,
      ),
    ).toEqual([{ index: 0, utilisationPercent: 87, memoryUsedMiB: null, memoryTotalMiB: null }]);
  });

  it("fills {hostIP} and {node} from the pod's node, and waits while they are unknown or odd", () => {
    expect(exporterUrl('http://{hostIP}:9400/metrics', { hostIP: '10.0.3.7' })).toBe('http://10.0.3.7:9400/metrics');
    expect(exporterUrl('http://{hostIP}:9400/metrics', { hostIP: 'fd00::7' })).toBe('http://[fd00::7]:9400/metrics');
    expect(exporterUrl('http://dcgm-{node}.mon:9400/metrics', { node: 'gpu-node-1' })).toBe(
      'http://dcgm-gpu-node-1.mon:9400/metrics',
    );
    expect(exporterUrl('http://dcgm.mon:9400/metrics', {})).toBe('http://dcgm.mon:9400/metrics');
    expect(exporterUrl('http://{hostIP}:9400/metrics', {})).toBeUndefined();
    expect(exporterUrl('http://{hostIP}:9400/metrics', { hostIP: '10.0.0.1@evil' })).toBeUndefined();
    expect(exporterUrl('http://{node}:9400/metrics', { node: 'a/../b' })).toBeUndefined();
  });
});

describe('scraping the exporter', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await new Promise((r) => server!.close(r));
    server = undefined;
  });
  /** An exporter that answers with `body()` (or the status it returns). */
  async function exporter(body: () => string | number): Promise<{ url: string; hits: () => number }> {
    let hits = 0;
    server = createServer((_req, res) => {
      hits++;
      const b = body();
      if (typeof b === 'number') res.writeHead(b).end();
      else res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(b);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, hits: () => hits };
  }

  it('refuses an error status and a body over the size bound', async () => {
    const bad = await exporter(() => 503);
    await expect(scrapeDcgm(bad.url, POD, 2000)).rejects.toThrow('HTTP 503');
    await new Promise((r) => server!.close(r));
    const huge = await exporter(() => `# ${'x'.repeat(MAX_SCRAPE_BYTES)}\n`);
    await expect(scrapeDcgm(huge.url, POD, 5000)).rejects.toThrow(/larger than/);
  });

  it('samples while the step runs and summarises like nvidia-smi: mean, idle fraction, peak memory', async () => {
    const utils = ['90', '1', '80', '0'];
    let n = 0;
    const ex = await exporter(() =>
      [
        series('DCGM_FI_DEV_GPU_UTIL', 0, utils[Math.min(n++, 3)]!),
        series('DCGM_FI_DEV_FB_USED', 0, String(1000 * n)),
        series('DCGM_FI_DEV_GPU_UTIL', 1, '100', { pod: 'other' }),
      ].join('\n'),
    );
    const errors: string[] = [];
    const s = startDcgmSampler({
      urlTemplate: ex.url,
      target: POD,
      node: {},
      intervalSeconds: 1,
      onFirstError: (e) => errors.push(e),
    });
    await waitFor(() => ex.hits() >= 4);
    const summary = await s.stop();
    expect(errors).toEqual([]);
    const readings = summary!.samples;
    expect(readings).toBeGreaterThanOrEqual(4);
    // 90, 1, 80 then 0 for every later scrape.
    const total = 171;
    expect(summary).toEqual({
      samples: readings,
      gpus: 1,
      meanUtilisation: total / readings,
      maxMemoryMiB: 1000 * readings,
      idleFraction: (readings - 2) / readings,
    });
    const hits = ex.hits();
    await new Promise((r) => setTimeout(r, 1500)); // scrapes stop with the step: none after stop()
    expect(ex.hits()).toBe(hits);
  });

  it("records nothing when no series is the pod's, and reports a failing scrape once without stopping", async () => {
    let fail = true;
    const ex = await exporter(() => (fail ? 500 : series('DCGM_FI_DEV_GPU_UTIL', 0, '50', { pod: 'other' })));
    const errors: string[] = [];
    const s = startDcgmSampler({
      urlTemplate: ex.url,
      target: POD,
      node: {},
      intervalSeconds: 1,
      onFirstError: (e) => errors.push(e),
    });
    await waitFor(() => ex.hits() >= 2);
    fail = false;
    const seen = ex.hits();
    await waitFor(() => ex.hits() >= seen + 2);
    expect(await s.stop()).toBeUndefined();
    expect(errors).toEqual(['HTTP 500']);
  });
});

/** Polls `check` every 50 ms until it holds, for at most 20 s. */
async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met within 20 s');
    await new Promise((r) => setTimeout(r, 50));
  }
}
