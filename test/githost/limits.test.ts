import { describe, expect, it } from 'vitest';
import { WriteBudget } from '../../activities/githost/ratelimit.js';
import { clipChars, stepTable, tailLines, truncateUtf8 } from '../../activities/githost/text.js';
import { tokenMatches } from '../../app/gitlab/endpoint.js';
import { signatureValid } from '../../app/github/verify.js';
import { sign } from './payloads.js';
import type { RunStatus } from '../../model/types.js';

describe('size limits', () => {
  it('cuts UTF-8 text at a character boundary and keeps the note within the limit', () => {
    const text = 'é'.repeat(40_000); // 80,000 bytes
    const out = truncateUtf8(text, 65_535, '\n…(cut)');
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(65_535);
    expect(out.endsWith('\n…(cut)')).toBe(true);
    expect(out).not.toContain('\uFFFD');
    expect(truncateUtf8('short', 10, 'x')).toBe('short');
  });

  it('keeps the last lines of a log within both limits', () => {
    const log = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n');
    expect(tailLines(log, 3, 10_000)).toBe('line 997\nline 998\nline 999');
    expect(Buffer.byteLength(tailLines(log, 1000, 50))).toBeLessThanOrEqual(50);
  });

  it('clips GitLab fields to 255 characters, counting characters not bytes', () => {
    expect([...clipChars('ü'.repeat(300), 255)]).toHaveLength(255);
  });

  it('keeps a 200-step table under the check-run summary limit', () => {
    const status: RunStatus = {
      runId: 'r',
      pipeline: 'big',
      state: 'running',
      startedAt: new Date().toISOString(),
      steps: Array.from({ length: 200 }, (_, i) => ({
        name: `step-${i}-with-a-longish-name`,
        state: i % 3 ? 'succeeded' : 'running',
        startedAt: new Date().toISOString(),
        message: 'x'.repeat(500),
      })),
    };
    const table = stepTable(status);
    expect(Buffer.byteLength(table)).toBeLessThan(65_535);
    expect(table.split('\n')).toHaveLength(202);
  });
});

describe('write budget', () => {
  it('always counts required writes and refuses optional ones past 60% of a window', () => {
    let now = 0;
    const budget = new WriteBudget(
      [
        { windowMs: 60_000, max: 80 },
        { windowMs: 3_600_000, max: 500 },
      ],
      0.6,
      () => now,
    );
    let optional = 0;
    for (let i = 0; i < 100; i++) if (budget.tryOptional('a')) optional++;
    expect(optional).toBe(48);
    expect(budget.tryOptional('b')).toBe(true); // accounts are separate
    now += 61_000;
    for (let i = 0; i < 100; i++) if (budget.tryOptional('a')) optional++;
    expect(optional).toBe(96);
    for (let h = 0; h < 10; h++) {
      now += 61_000;
      for (let i = 0; i < 100; i++) if (budget.tryOptional('a')) optional++;
    }
    expect(optional).toBe(300); // the hourly window caps it: 60% of 500
    for (let i = 0; i < 10; i++) budget.spend('a');
    now += 3_600_001;
    expect(budget.tryOptional('a')).toBe(true);
  });
});

describe('webhook authentication', () => {
  it('accepts only the exact HMAC-SHA256 signature of the body', () => {
    const body = Buffer.from('{"a":1}');
    expect(signatureValid('s3cret', body, sign('s3cret', body.toString()))).toBe(true);
    expect(signatureValid('s3cret', body, sign('other', body.toString()))).toBe(false);
    expect(signatureValid('s3cret', Buffer.from('{"a":2}'), sign('s3cret', body.toString()))).toBe(false);
    expect(signatureValid('s3cret', body, undefined)).toBe(false);
    expect(signatureValid('s3cret', body, 'sha1=abc')).toBe(false);
  });

  it('compares the GitLab token whatever its length', () => {
    expect(tokenMatches('tok', 'tok')).toBe(true);
    expect(tokenMatches('tok2', 'tok')).toBe(false);
    expect(tokenMatches('', 'tok')).toBe(false);
    expect(tokenMatches(undefined, 'tok')).toBe(false);
  });
});
