import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  GpuSampler,
  NVIDIA_SMI_ARGS,
  parseNvidiaSmiCsv,
  sampleGpus,
  summariseGpuSamples,
} from '../../activities/container/gpu.js';

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
    expect(s).toEqual({
      samples: 16,
      gpus: 8,
      meanUtilisation: (97 + 98 + 96 + 0 + 99 + 97 + 98 + 96) / 8,
      maxMemoryMiB: 71301,
      idleFraction: 1 / 8,
    });
    expect(summariseGpuSamples([parseNvidiaSmiCsv(A10G_IDLE)])).toMatchObject({
      idleFraction: 1,
      meanUtilisation: 0,
      maxMemoryMiB: 21780,
    });
    expect(summariseGpuSamples([])).toBeUndefined();
  });

  it('sampler polls its source until stopped', async () => {
    // Fake timers: the poll ticks are driven here, so "no poll after stop" is checked without waiting.
    vi.useFakeTimers();
    try {
      const readings = [A10G_IDLE, '0, 88, 22000, 23028\n', '0, 91, 22100, 23028\n'];
      let calls = 0;
      const sampler = new GpuSampler(async () =>
        parseNvidiaSmiCsv(readings[Math.min(calls++, readings.length - 1)] ?? ''),
      );
      sampler.start(100);
      await vi.advanceTimersByTimeAsync(450);
      const summary = await sampler.stop();
      const after = calls;
      expect(after).toBe(5); // the first poll at start, then one every 100 ms
      await vi.advanceTimersByTimeAsync(10_000);
      expect(calls).toBe(after);
      expect(summary?.samples).toBe(after);
      expect(summary?.maxMemoryMiB).toBe(22100);
      expect(summary?.idleFraction).toBeCloseTo(1 / after);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('reading nvidia-smi', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'trainyard-gpu-test-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('runs nvidia-smi with the query it parses and reads its answer', async () => {
    // A stand-in nvidia-smi that answers only the exact query Trainyard documents.
    const smi = join(scratch, 'nvidia-smi');
    writeFileSync(join(scratch, 'h100.csv'), H100_NODE);
    writeFileSync(
      smi,
      `#!/bin/sh\n[ "$*" = ${JSON.stringify(NVIDIA_SMI_ARGS.join(' '))} ] || exit 9\ncat ${JSON.stringify(join(scratch, 'h100.csv'))}\n`,
    );
    chmodSync(smi, 0o755);
    const samples = await sampleGpus(smi);
    expect(samples).toEqual(parseNvidiaSmiCsv(H100_NODE));
    const sampler = new GpuSampler(() => sampleGpus(smi));
    sampler.start(100);
    const summary = await sampler.stop();
    expect(summary).toMatchObject({ gpus: 8, samples: 8, maxMemoryMiB: 71301 });
  });

  it('gives nothing, and a sampler that stops polling, where nvidia-smi is missing or fails', async () => {
    const failing = join(scratch, 'nvidia-smi-failing');
    writeFileSync(
      failing,
      '#!/bin/sh\necho "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver." >&2\nexit 9\n',
    );
    chmodSync(failing, 0o755);
    expect(await sampleGpus(join(scratch, 'absent', 'nvidia-smi'))).toBeUndefined();
    expect(await sampleGpus(failing)).toBeUndefined();
    let calls = 0;
    const sampler = new GpuSampler(async () => {
      calls++;
      return sampleGpus(failing);
    });
    sampler.start(100);
    const summary = await sampler.stop();
    expect(summary).toBeUndefined();
    // The first empty answer stops it for good: a CPU-only host pays for one call per step.
    sampler.start(100);
    expect(calls).toBe(1);
    expect(await sampler.stop()).toBeUndefined();
  });
});
