import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../activities/container/lines.js';

function split(chunks: (string | Buffer)[], max?: number): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), max);
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c) : c);
  s.end();
  return lines;
}

describe('LineSplitter', () => {
  it('joins partial chunks and splits several lines in one chunk', () => {
    expect(split(['ab', 'c\nde', 'f\r\n\nlast'])).toEqual(['abc', 'def', '', 'last']);
  });

  it('keeps a multi-byte character split across chunks intact', () => {
    const bytes = Buffer.from('naïve ✓\n');
    expect(split([bytes.subarray(0, 3), bytes.subarray(3, 9), bytes.subarray(9)])).toEqual(['naïve ✓']);
  });

  it('cuts an over-long line at the cap, drops its rest and keeps the next line', () => {
    expect(split(['0123456', '789abc\nnext\n'], 8)).toEqual(['01234567', 'next']);
    expect(split(['01234567\n'], 8)).toEqual(['01234567']);
    expect(split(['012345678'], 8)).toEqual(['01234567']);
  });
});
