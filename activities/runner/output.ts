// What a step prints, recorded the same way by every runner (this host's containers, or a
// Kubernetes Job): the whole log and the whole metrics series go to files and then to the
// artifact store; only references and bounded summaries are kept for the workflow.
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { clipText, LAST_LINE_MAX_CHARS, LAST_VALUE_MAX_CHARS, LAST_VALUES_MAX } from '../../model/bounds.js';
import type { ArtifactRef, MetricSample, MetricValue, StepMetrics } from '../../model/types.js';
import { readMetricLine } from '../container/metrics.js';
import type { ArtifactStore } from '../store/types.js';
import type { LiveLog } from './livelog.js';
import { MetricsSummariser } from './summary.js';

/** Heartbeat details of a running step: bounded whatever the step prints. */
export interface StepProgress {
  lines: number;
  lastLine: string;
}

/** The recorded output of one attempt, once stored. */
export interface StoredOutput {
  log: ArtifactRef;
  metrics?: StepMetrics;
}

/**
 * Feed every line with onLine(), then finish() once the process has ended (on every path:
 * success, failure, timeout). Files live in `dir`, which the caller creates and removes.
 * Memory stays bounded: lines are written out as they come; the summary is fixed-size.
 */
export class StepOutput {
  private lines = 0;
  private last = '';
  private readonly log: WriteStream;
  private series: WriteStream | undefined;
  private readonly summariser = new MetricsSummariser();
  private rejectedLines = 0;
  private firstRejection = '';
  private finished: Promise<StoredOutput> | undefined;

  constructor(
    private readonly dir: string,
    /** ms since the step started, for sample times. */
    private readonly elapsedMs: () => number,
    /**
     * Applied to every line before anything else sees it (log, metrics, last line, heartbeats):
     * the step's secret values become `***` (activities/secrets.ts masker).
     */
    private readonly mask: (line: string) => string = (line) => line,
    /** Where the lines also go while the step runs (livelog.ts), bounded there. */
    private readonly live?: LiveLog,
  ) {
    this.log = createWriteStream(join(dir, 'log.txt'));
  }

  onLine(stream: 'stdout' | 'stderr', raw: string): void {
    const line = this.mask(raw);
    this.lines += 1;
    this.last = line;
    this.log.write(`${stream === 'stderr' ? 'E ' : 'O '}${line}\n`);
    this.live?.write(`${stream === 'stderr' ? 'E ' : 'O '}${line}`);
    if (stream !== 'stdout') return;
    const m = readMetricLine(line);
    if (m === undefined) return;
    if (m.kind === 'rejected') {
      if (this.rejectedLines === 0) this.firstRejection = `line ${this.lines}: ${m.reason}`;
      this.rejectedLines += 1;
      return;
    }
    const sample = { t: this.elapsedMs(), values: m.values };
    this.series ??= createWriteStream(join(this.dir, 'metrics.jsonl'));
    this.series.write(`${JSON.stringify(sample)}\n`);
    this.summariser.add(sample);
  }

  /** For heartbeats and failure messages. */
  progress(): StepProgress {
    return { lines: this.lines, lastLine: clipText(this.last, LAST_LINE_MAX_CHARS) };
  }

  /** The last line printed, clipped (empty when nothing was printed). */
  get lastLine(): string {
    return clipText(this.last, LAST_LINE_MAX_CHARS);
  }

  /** Closes the files and stores log, series and summary. Idempotent. */
  finish(store: ArtifactStore): Promise<StoredOutput> {
    this.finished ??= this.store(store);
    return this.finished;
  }

  /** Closes the files without storing them (a runner that gives up); safe after finish(). */
  async close(): Promise<void> {
    await this.live?.close();
    await closeStream(this.log);
    if (this.series) await closeStream(this.series);
  }

  private async store(store: ArtifactStore): Promise<StoredOutput> {
    await this.close();
    const log = await store.putPath(join(this.dir, 'log.txt'));
    const rejected =
      this.rejectedLines > 0 ? { lines: this.rejectedLines, reason: clipText(this.firstRejection, 300) } : undefined;
    if (this.summariser.count === 0) {
      return { log, ...(rejected ? { metrics: { samples: 0, names: 0, last: {}, rejected } } : {}) };
    }
    const series = await store.putPath(join(this.dir, 'metrics.jsonl'));
    const summary = await store.putBytes(JSON.stringify(this.summariser.summary()));
    const metrics: StepMetrics = {
      samples: this.summariser.count,
      series,
      summary: summary.digest,
      names: this.summariser.names,
      last: boundedLastValues(this.summariser.lastValues()),
      ...(rejected ? { rejected } : {}),
    };
    return { log, metrics };
  }
}

/** Stores samples held in memory as a series and summary (cache records written before series were stored). */
export async function storeSamples(store: ArtifactStore, samples: MetricSample[]): Promise<StepMetrics | undefined> {
  if (samples.length === 0) return undefined;
  const summariser = new MetricsSummariser();
  for (const x of samples) summariser.add(x);
  const series = await store.putBytes(samples.map((x) => `${JSON.stringify(x)}\n`).join(''));
  const summary = await store.putBytes(JSON.stringify(summariser.summary()));
  return {
    samples: summariser.count,
    series,
    summary: summary.digest,
    names: summariser.names,
    last: boundedLastValues(summariser.lastValues()),
  };
}

/** The first LAST_VALUES_MAX metrics' last values, names and strings clipped. */
export function boundedLastValues(values: [string, MetricValue][]): Record<string, MetricValue> {
  const clip = (v: MetricValue): MetricValue =>
    typeof v === 'string'
      ? clipText(v, LAST_VALUE_MAX_CHARS)
      : v !== null && typeof v === 'object'
        ? { number: clipText(v.number, LAST_VALUE_MAX_CHARS) }
        : v;
  // fromEntries: a "__proto__" name stays an own property.
  return Object.fromEntries(
    values.slice(0, LAST_VALUES_MAX).map(([name, v]) => [clipText(name, LAST_VALUE_MAX_CHARS), clip(v)]),
  );
}

function closeStream(s: WriteStream): Promise<void> {
  return new Promise((resolve, reject) => {
    if (s.closed || s.writableFinished) return resolve();
    s.once('error', reject);
    s.end(() => resolve());
  });
}
