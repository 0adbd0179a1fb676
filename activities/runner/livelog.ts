// A running step's log, readable while it runs: lines are stored as numbered chunk records
// as they come (`trainyard logs RUN STEP -f` follows them). Bounded twice: at most
// LIVE_LOG_MAX_BYTES per attempt (then a "truncated" marker; the whole log is still stored
// by digest when the step ends), and at most one chunk in memory — lines that arrive while
// the store is slow beyond that are counted and said, never queued without limit.
//
// Record layout:
//   logs/live/<execId>/<aNNNN-tNNN>/c<NNNNNN>   { seq, text }   text: lines as in log.txt ("O …" / "E …")
//   logs/live/<execId>/<aNNNN-tNNN>/end         { bytes, lines, truncated }
// <aNNNN-tNNN>: the execution's attempt and Temporal's attempt of the activity, zero-padded,
// so the newest attempt sorts last.
import type { ArtifactStore } from '../store/types.js';

/** Most bytes of one attempt's live log (the stored log by digest has everything). */
export const LIVE_LOG_MAX_BYTES = 1024 * 1024;
/** A chunk is written once this much is pending, or after LIVE_LOG_FLUSH_MS. */
export const LIVE_LOG_CHUNK_BYTES = 64 * 1024;
export const LIVE_LOG_FLUSH_MS = 1000;

export const liveLogPrefix = (execId: string): string => `logs/live/${execId}/`;
export const liveAttemptKey = (attempt: number, activityAttempt: number): string =>
  `a${String(attempt).padStart(4, '0')}-t${String(activityAttempt).padStart(3, '0')}`;

export interface LiveChunk {
  seq: number;
  text: string;
}

export interface LiveEnd {
  bytes: number;
  lines: number;
  truncated: boolean;
}

export const truncatedMarker = (max: number): string =>
  `[trainyard: live log truncated after ${max} bytes; the whole log is stored when the step ends: trainyard logs RUN STEP]\n`;

export interface LiveLogOptions {
  maxBytes?: number;
  chunkBytes?: number;
  flushMs?: number;
}

/** Writes one attempt's live log. write() never blocks or throws; close() flushes and marks the end. */
export class LiveLog {
  private pending = '';
  private seq = 0;
  private bytes = 0;
  private lines = 0;
  private skipped = 0;
  private truncated = false;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly max: number;
  private readonly chunk: number;
  private readonly flushMs: number;

  constructor(
    private readonly store: ArtifactStore,
    private readonly prefix: string,
    opts: LiveLogOptions = {},
  ) {
    this.max = opts.maxBytes ?? LIVE_LOG_MAX_BYTES;
    this.chunk = opts.chunkBytes ?? LIVE_LOG_CHUNK_BYTES;
    this.flushMs = opts.flushMs ?? LIVE_LOG_FLUSH_MS;
  }

  /** One line as log.txt holds it (`O text` / `E text`), without its newline. */
  write(line: string): void {
    if (this.closed || this.truncated) return;
    this.lines += 1;
    const text = `${line}\n`;
    // Everything the step printed counts toward the bound, also what a slow store left out.
    if (this.bytes + this.pending.length + this.skipped + text.length > this.max) {
      this.pending += this.skippedNote() + truncatedMarker(this.max);
      this.truncated = true;
      this.flushSoon(0);
      return;
    }
    if (this.pending.length + text.length > this.chunk) {
      if (this.inFlight) {
        // The store is behind: keep memory bounded and say what was left out.
        this.skipped += Buffer.byteLength(text);
        return;
      }
      this.flushSoon(0);
      if (this.pending.length + text.length > this.chunk) {
        this.skipped += Buffer.byteLength(text);
        return;
      }
    }
    this.pending += text;
    this.flushSoon(this.pending.length >= this.chunk ? 0 : this.flushMs);
  }

  /** Flushes what is pending and writes the end record. Idempotent; never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    await this.inFlight;
    await this.flush();
    await this.store
      .putRecord(`${this.prefix}end`, {
        bytes: this.bytes,
        lines: this.lines,
        truncated: this.truncated,
      } satisfies LiveEnd)
      .catch(() => undefined);
  }

  /** Says (once) how much a slow store made the live log leave out; empty when nothing. */
  private skippedNote(): string {
    if (this.skipped === 0) return '';
    const note = `[trainyard: ${this.skipped} bytes of output left out of the live log while the store was slow; the whole log is stored when the step ends]\n`;
    this.skipped = 0;
    return note;
  }

  private flushSoon(ms: number): void {
    if (this.inFlight) return;
    if (ms === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, ms);
  }

  private flush(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (!this.truncated) this.pending += this.skippedNote();
    if (!this.pending) return Promise.resolve();
    const text = this.pending;
    this.pending = '';
    const seq = this.seq++;
    this.bytes += Buffer.byteLength(text);
    this.inFlight = this.store
      .putRecord(`${this.prefix}c${String(seq).padStart(6, '0')}`, { seq, text } satisfies LiveChunk)
      .catch(() => undefined) // a live log is a convenience: a failed write never fails the step
      .finally(() => {
        this.inFlight = undefined;
        if (this.pending && !this.closed)
          this.flushSoon(this.pending.length >= this.chunk || this.truncated ? 0 : this.flushMs);
      });
    return this.inFlight;
  }
}

/** The newest attempt's folder of an execution's live log, or undefined when none was written. */
export async function latestLiveAttempt(store: ArtifactStore, execId: string): Promise<string | undefined> {
  const prefix = liveLogPrefix(execId);
  const attempts = new Set<string>();
  for (const k of await store.listRecords(prefix)) {
    const tail = k.startsWith(prefix) ? k.slice(prefix.length) : k;
    const a = tail.split('/')[0];
    if (a && /^a\d{4}-t\d{3}$/.test(a)) attempts.add(a);
  }
  return [...attempts].sort().at(-1);
}

/** Chunks of one attempt from `fromSeq` on, in order, and whether its end record is there. */
export async function readLiveChunks(
  store: ArtifactStore,
  execId: string,
  attempt: string,
  fromSeq: number,
): Promise<{ chunks: LiveChunk[]; end: LiveEnd | undefined }> {
  const prefix = `${liveLogPrefix(execId)}${attempt}/`;
  const keys = (await store.listRecords(prefix)).map((k) => (k.startsWith(prefix) ? k.slice(prefix.length) : k));
  const end = keys.includes('end') ? await store.getRecord<LiveEnd>(`${prefix}end`) : undefined;
  const seqs = keys
    .filter((k) => /^c\d{6}$/.test(k))
    .map((k) => Number(k.slice(1)))
    .filter((n) => n >= fromSeq)
    .sort((a, b) => a - b);
  const chunks: LiveChunk[] = [];
  for (const n of seqs) {
    // Chunks are written one at a time in order: a gap means the next one is still being written.
    if (n !== fromSeq + chunks.length) break;
    const c = await store.getRecord<LiveChunk>(`${prefix}c${String(n).padStart(6, '0')}`);
    if (!c) break;
    chunks.push(c);
  }
  return { chunks, end };
}
