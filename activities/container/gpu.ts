// GPU utilisation while a step runs, read from nvidia-smi; a host without a GPU yields nothing.
import { execQuiet } from './exec.js';

export interface GpuSample {
  index: number;
  /** Percent; null when the driver reports "[N/A]" / "[Not Supported]". */
  utilisationPercent: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
}

export interface GpuSummary {
  /** Readings taken: one per GPU per tick. */
  samples: number;
  gpus: number;
  /** Mean utilisation percent over all readings that reported one. */
  meanUtilisation: number;
  maxMemoryMiB: number;
  /** Fraction of readings with utilisation under IDLE_PERCENT: money spent on a waiting GPU. */
  idleFraction: number;
}

export const IDLE_PERCENT = 5;

export const NVIDIA_SMI_ARGS = [
  '--query-gpu=index,utilization.gpu,memory.used,memory.total',
  '--format=csv,noheader,nounits',
] as const;

function numberOrNull(field: string | undefined): number | null {
  if (field === undefined) return null;
  const t = field.trim();
  if (!/^\d+(\.\d+)?$/.test(t)) return null;
  return Number(t);
}

/** Parses `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmiCsv(text: string): GpuSample[] {
  const out: GpuSample[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const fields = line.split(',');
    if (fields.length < 4) continue;
    const index = numberOrNull(fields[0]);
    if (index === null) continue;
    out.push({
      index,
      utilisationPercent: numberOrNull(fields[1]),
      memoryUsedMiB: numberOrNull(fields[2]),
      memoryTotalMiB: numberOrNull(fields[3]),
    });
  }
  return out;
}

/** One reading per GPU, or undefined when nvidia-smi is missing or finds no usable GPU. */
export async function sampleGpus(command = 'nvidia-smi'): Promise<GpuSample[] | undefined> {
  const r = await execQuiet(command, NVIDIA_SMI_ARGS, { timeoutMs: 10_000 });
  if (r.code !== 0) return undefined;
  const samples = parseNvidiaSmiCsv(r.stdout);
  return samples.length > 0 ? samples : undefined;
}

export function summariseGpuSamples(ticks: readonly GpuSample[][]): GpuSummary | undefined {
  const readings = ticks.flat();
  if (readings.length === 0) return undefined;
  const utils = readings.map((r) => r.utilisationPercent).filter((u): u is number => u !== null);
  const memory = readings.map((r) => r.memoryUsedMiB).filter((m): m is number => m !== null);
  return {
    samples: readings.length,
    gpus: new Set(readings.map((r) => r.index)).size,
    meanUtilisation: utils.length > 0 ? utils.reduce((a, b) => a + b, 0) / utils.length : 0,
    maxMemoryMiB: memory.length > 0 ? Math.max(...memory) : 0,
    idleFraction: utils.length > 0 ? utils.filter((u) => u < IDLE_PERCENT).length / utils.length : 0,
  };
}

export type GpuSampleSource = () => Promise<GpuSample[] | undefined>;

/** Polls GPUs while a step runs. Without a GPU the first poll finds none and it stops polling. */
export class GpuSampler {
  private readonly ticks: GpuSample[][] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private noGpu = false;

  constructor(private readonly source: GpuSampleSource = () => sampleGpus()) {}

  start(intervalMs: number): void {
    if (this.timer || this.noGpu) return;
    const tick = (): void => {
      if (this.inFlight || this.noGpu) return; // a slow nvidia-smi must not pile up
      this.inFlight = this.source()
        .then((samples) => {
          if (samples) this.ticks.push(samples);
          else if (this.ticks.length === 0) this.halt(true);
        })
        .catch(() => undefined)
        .finally(() => {
          this.inFlight = undefined;
        });
    };
    this.timer = setInterval(tick, Math.max(100, intervalMs));
    this.timer.unref();
    tick();
  }

  private halt(noGpu: boolean): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (noGpu) this.noGpu = true;
  }

  /** Stops polling; undefined when no GPU was seen. */
  async stop(): Promise<GpuSummary | undefined> {
    this.halt(false);
    await this.inFlight;
    return summariseGpuSamples(this.ticks);
  }
}
