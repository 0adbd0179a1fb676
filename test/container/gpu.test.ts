import { describe, expect, it } from 'vitest';
import { GpuSampler, parseNvidiaSmiCsv, sampleGpus, summariseGpuSamples } from '../../activities/container/gpu.js';
import { findOnPath } from '../../activities/container/cli.js';

// Output of `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`
// on an 8×H100 80GB node mid-training, and on a g5.xlarge (A10G) idling after data loading.
const H100_NODE = `0, 97, 71234, 81559
1, 98, 71240, 81559
2, 96, 71198, 81559
3, 0, 3, 81559
4, 99, 71301, 81559
5, 97, 71222, 81559
6, 98, 71260, 81559
7, 96, 71188, 81559
`;
const A10G_IDLE = '0, 0, 21780, 23028\n';
// Some drivers and MIG setups report fields they cannot measure like this.
const MIG = '0, [N/A], 1520, [Not Supported]\r\n';

describe('parseNvidiaSmiCsv', () => {
  it('reads one sample per GPU line', () => {
    const s = parseNvidiaSmiCsv(H100_NODE);
    expect(s).toHaveLength(8);
    expect(s[0]).toEqual({ index: 0, utilisationPercent: 97, memoryUsedMiB: 71234, memoryTotalMiB: 81559 });
    expect(s[3]).toEqual({ index: 3, utilisationPercent: 0, memoryUsedMiB: 3, memoryTotalMiB: 81559 });
  });

  it('turns unmeasured fields into null and skips junk lines', () => {
    expect(parseNvidiaSmiCsv(MIG + 'NVIDIA-SMI has failed\n\n')).toEqual([
      { index: 0, utilisationPercent: null, memoryUsedMiB: 1520, memoryTotalMiB: null },
    ]);
  });
});

describe('GPU summary', () => {
  it('averages utilisation, keeps peak memory and counts idle readings', () => {
    const s = summariseGpuSamples([parseNvidiaSmiCsv(H100_NODE), parseNvidiaSmiCsv(H100_NODE)]);
    expect(s).toEqual({ samples: 16, gpus: 8, meanUtilisation: (97 + 98 + 96 + 0 + 99 + 97 + 98 + 96) / 8, maxMemoryMiB: 71301, idleFraction: 1 / 8 });
    expect(summariseGpuSamples([parseNvidiaSmiCsv(A10G_IDLE)])).toMatchObject({ idleFraction: 1, meanUtilisation: 0, maxMemoryMiB: 21780 });
    expect(summariseGpuSamples([])).toBeUndefined();
  });

  it('sampler polls its source until stopped', async () => {
    const readings = [A10G_IDLE, '0, 88, 22000, 23028\n', '0, 91, 22100, 23028\n'];
    let calls = 0;
    const sampler = new GpuSampler(async () => parseNvidiaSmiCsv(readings[Math.min(calls++, readings.length - 1)] ?? ''));
    sampler.start(100);
    await new Promise((r) => setTimeout(r, 450));
    const summary = await sampler.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 250));
    expect(calls).toBe(after);
    expect(summary?.samples).toBe(after);
    expect(summary?.maxMemoryMiB).toBe(22100);
    expect(summary?.idleFraction).toBeCloseTo(1 / after);
  });
});

describe('on this host', () => {
  it('samples the real GPUs, or gives nothing and a no-op sampler without nvidia-smi', async () => {
    const hasSmi = (await findOnPath('nvidia-smi', process.env)) !== undefined;
    const samples = await sampleGpus();
    const sampler = new GpuSampler();
    sampler.start(100);
    await new Promise((r) => setTimeout(r, 300));
    const summary = await sampler.stop();
    if (!hasSmi) {
      expect(samples).toBeUndefined();
      expect(summary).toBeUndefined();
    } else if (samples) {
      expect(samples.length).toBeGreaterThan(0);
      expect(summary?.gpus).toBe(samples.length);
    }
  });
});
