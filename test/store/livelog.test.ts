// A running step's live log on a real folder store: chunks readable in order while it runs,
// bounded per attempt with a truncated marker, bounded in memory when the store is slow.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LiveLog,
  latestLiveAttempt,
  liveAttemptKey,
  liveLogPrefix,
  readLiveChunks,
  truncatedMarker,
} from '../../activities/runner/livelog.js';
import { createStore } from '../../activities/store/factory.js';
import type { ArtifactStore } from '../../activities/store/types.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'livelog-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const text = async (store: ArtifactStore, exec: string) => {
  const attempt = (await latestLiveAttempt(store, exec))!;
  const { chunks, end } = await readLiveChunks(store, exec, attempt, 0);
  return { text: chunks.map((c) => c.text).join(''), end, attempt };
};

describe('live log', () => {
  it('lines are readable before the step ends, in order; close() marks the end', async () => {
    const store = createStore(join(root, 'a'));
    const log = new LiveLog(store, `${liveLogPrefix('trainyard-step-aa')}${liveAttemptKey(1, 1)}/`, { flushMs: 20 });
    log.write('O epoch 1');
    log.write('E warning');
    await expect
      .poll(async () => (await text(store, 'trainyard-step-aa')).text, { timeout: 10_000 })
      .toBe('O epoch 1\nE warning\n');
    expect((await text(store, 'trainyard-step-aa')).end).toBeUndefined();
    log.write('O epoch 2');
    await log.close();
    expect(await text(store, 'trainyard-step-aa')).toMatchObject({
      text: 'O epoch 1\nE warning\nO epoch 2\n',
      end: { lines: 3, truncated: false },
    });
  });

  it('stops at the per-attempt bound with a truncated marker; the newest attempt is the one read', async () => {
    const store = createStore(join(root, 'b'));
    const first = new LiveLog(store, `${liveLogPrefix('trainyard-step-bb')}${liveAttemptKey(1, 1)}/`, {
      maxBytes: 2000,
      chunkBytes: 500,
      flushMs: 10,
    });
    for (let i = 0; i < 1000; i++) {
      first.write(`O line ${i} ${'x'.repeat(20)}`);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2)); // the step prints over time
    }
    await first.close();
    const a = await text(store, 'trainyard-step-bb');
    expect(a.text.endsWith(truncatedMarker(2000))).toBe(true);
    expect(Buffer.byteLength(a.text)).toBeLessThanOrEqual(2000 + 300 + truncatedMarker(2000).length);
    expect(a.text.startsWith('O line 0 ')).toBe(true);
    expect(a.end).toMatchObject({ truncated: true });
    const retry = new LiveLog(store, `${liveLogPrefix('trainyard-step-bb')}${liveAttemptKey(2, 1)}/`, { flushMs: 10 });
    retry.write('O second attempt');
    await retry.close();
    expect(await text(store, 'trainyard-step-bb')).toMatchObject({ attempt: 'a0002-t001', text: 'O second attempt\n' });
  });

  it('while the store is slow, holds at most one chunk and says how much it left out', async () => {
    const real = createStore(join(root, 'c'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let maxPending = 0;
    const slow: ArtifactStore = Object.assign(Object.create(real) as ArtifactStore, {
      putRecord: async (k: string, v: unknown) => {
        await gate;
        return real.putRecord(k, v);
      },
    });
    const log = new LiveLog(slow, `${liveLogPrefix('trainyard-step-cc')}${liveAttemptKey(1, 1)}/`, {
      chunkBytes: 1000,
      flushMs: 10,
    });
    for (let i = 0; i < 10_000; i++) {
      log.write(`O ${i} ${'y'.repeat(40)}`);
      maxPending = Math.max(maxPending, (log as unknown as { pending: string }).pending.length);
    }
    expect(maxPending).toBeLessThanOrEqual(1000);
    release();
    await log.close();
    const { text: all } = await text(real, 'trainyard-step-cc');
    expect(all).toMatch(/\[trainyard: \d+ bytes of output left out of the live log while the store was slow/);
  });
});
