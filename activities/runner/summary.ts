// A metrics series summarised in one pass and bounded memory, whatever its length: per
// metric its count, range, last value, the values that are not finite doubles, and a
// downsampled series for charts (at most SUMMARY_POINTS averaged points). The runner
// builds it while the step prints; the lineage document embeds it; the report charts it.
import type { MetricSample, MetricValue } from '../../model/types.js';
import { clipText } from '../../model/bounds.js';
import { numericValue } from '../container/metrics.js';

export const METRICS_SUMMARY_SCHEMA = 'trainyard.metrics-summary/v1' as const;
/** Points kept per metric: past this, neighbouring points are averaged in pairs. */
export const SUMMARY_POINTS = 60;
/** Distinct metric names summarised per step; later names stay in the series only (and are counted). */
export const MAX_SUMMARISED_METRICS = 256;
export interface NonFiniteCount {
  /** `NaN`, `Infinity` and `-Infinity` as printed, or a number past the double range (`1e400`, `-1e999`). */
  kind: 'NaN' | 'Infinity' | '-Infinity' | 'beyond the double range';
  /** The first one, as printed. */
  example: string;
  count: number;
  /** ms since the step started, of the first one. */
  firstT: number;
}

export interface MetricSeriesSummary {
  name: string;
  /** Samples that carry this metric. */
  count: number;
  /** Of those, finite numbers (the values charted). */
  finite: number;
  firstT: number;
  lastT: number;
  /** The last value, exactly as recorded. */
  last: MetricValue;
  /** Range of the finite numbers; null when there are none. */
  min: number | null;
  max: number | null;
  /** Values that are not finite numbers (never charted, always reported). */
  nonFinite: NonFiniteCount[];
  /** Numbers kept as text because a double would have rounded them (exact in the series). */
  exactText: number;
  /** The finite numbers, downsampled: [mean t (ms), mean value] per point, in order. */
  points: [number, number][];
  /** Every finite value an integer no smaller than the one before (epoch, step): a counter, not a curve. */
  counter: boolean;
  /** True when a point averages more than one sample. */
  downsampled: boolean;
}

export interface MetricsSummary {
  schema: typeof METRICS_SUMMARY_SCHEMA;
  samples: number;
  /** In order of first appearance. */
  metrics: MetricSeriesSummary[];
  /** Distinct metric names past MAX_SUMMARISED_METRICS (kept in the series, not summarised). */
  unsummarised: number;
}

/** Running means, weighted so that no sum of huge values overflows to Infinity. */
interface Bucket {
  n: number;
  t: number;
  v: number;
}

function merge(a: Bucket, b: Bucket): Bucket {
  const n = a.n + b.n;
  return { n, t: a.t * (a.n / n) + b.t * (b.n / n), v: a.v * (a.n / n) + b.v * (b.n / n) };
}

/** Running state of one metric. */
class SeriesState {
  count = 0;
  finite = 0;
  firstT = 0;
  lastT = 0;
  last: MetricValue = null;
  min: number | null = null;
  max: number | null = null;
  exactText = 0;
  counter = true;
  nonFinite: NonFiniteCount[] = [];
  private previous = 0;
  private buckets: Bucket[] = [];
  /** Samples per bucket; doubles each time the buckets are folded in pairs. */
  private span = 1;

  constructor(readonly name: string) {}

  add(t: number, v: MetricValue): void {
    if (this.count === 0) this.firstT = t;
    this.count += 1;
    this.lastT = t;
    this.last = v;
    const x = numericValue(v);
    if (x === undefined) return;
    if (!Number.isFinite(x)) {
      const printed = typeof v === 'object' && v !== null ? v.number : String(x);
      const kind = nonFiniteKind(printed, x);
      const known = this.nonFinite.find((k) => k.kind === kind);
      if (known) known.count += 1;
      else this.nonFinite.push({ kind, example: clipText(printed, 40), count: 1, firstT: t });
      return;
    }
    if (typeof v === 'object' && v !== null) this.exactText += 1;
    if (!Number.isInteger(x) || (this.finite > 0 && x < this.previous)) this.counter = false;
    this.previous = x;
    this.finite += 1;
    this.min = this.min === null ? x : Math.min(this.min, x);
    this.max = this.max === null ? x : Math.max(this.max, x);
    const lastBucket = this.buckets.at(-1);
    if (lastBucket && lastBucket.n < this.span)
      this.buckets[this.buckets.length - 1] = merge(lastBucket, { n: 1, t, v: x });
    else this.buckets.push({ n: 1, t, v: x });
    if (this.buckets.length > SUMMARY_POINTS) this.fold();
  }

  private fold(): void {
    const folded: Bucket[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) {
      const a = this.buckets[i]!;
      const b = this.buckets[i + 1];
      folded.push(b ? merge(a, b) : a);
    }
    this.buckets = folded;
    this.span *= 2;
  }

  summary(): MetricSeriesSummary {
    return {
      name: this.name,
      count: this.count,
      finite: this.finite,
      firstT: this.firstT,
      lastT: this.lastT,
      last: this.last,
      min: this.min,
      max: this.max,
      nonFinite: this.nonFinite.map((k) => ({ ...k })),
      exactText: this.exactText,
      points: this.buckets.map((b) => [Math.round(b.t), b.v]),
      counter: this.finite > 0 && this.counter,
      downsampled: this.buckets.some((b) => b.n > 1),
    };
  }
}

function nonFiniteKind(printed: string, x: number): NonFiniteCount['kind'] {
  if (printed === 'NaN' || printed === 'Infinity' || printed === '-Infinity') return printed;
  return Number.isNaN(x) ? 'NaN' : 'beyond the double range';
}

/** Feed samples in order with add(); summary() any time. Memory is bounded by the limits above. */
export class MetricsSummariser {
  private readonly series = new Map<string, SeriesState>();
  private samples = 0;
  private unsummarised = new Set<string>();

  add(sample: MetricSample): void {
    this.samples += 1;
    for (const [name, v] of Object.entries(sample.values)) {
      let s = this.series.get(name);
      if (!s) {
        if (this.series.size >= MAX_SUMMARISED_METRICS) {
          // Only counted up to a bound as well: a step inventing a name per line must not grow this.
          if (this.unsummarised.size < 100_000) this.unsummarised.add(name);
          continue;
        }
        s = new SeriesState(name);
        this.series.set(name, s);
      }
      s.add(sample.t, v);
    }
  }

  get count(): number {
    return this.samples;
  }

  /** Names seen (summarised or not). */
  get names(): number {
    return this.series.size + this.unsummarised.size;
  }

  /** The last value of each summarised metric, in order of first appearance. */
  lastValues(): [string, MetricValue][] {
    return [...this.series.values()].map((s) => [s.name, s.last]);
  }

  summary(): MetricsSummary {
    return {
      schema: METRICS_SUMMARY_SCHEMA,
      samples: this.samples,
      metrics: [...this.series.values()].map((s) => s.summary()),
      unsummarised: this.unsummarised.size,
    };
  }
}

/** The summary of samples held in memory (tests, and cache records written before series were stored). */
export function summariseSamples(samples: MetricSample[]): MetricsSummary {
  const s = new MetricsSummariser();
  for (const x of samples) s.add(x);
  return s.summary();
}
