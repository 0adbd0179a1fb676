import { describe, expect, it } from 'vitest';
import { METRIC_LIMITS, parseMetricLine } from '../../activities/container/metrics.js';

describe('parseMetricLine', () => {
  it('reads a flat JSON object line as a sample', () => {
    expect(parseMetricLine('  {"epoch": 3, "loss": 0.125, "phase": "val", "best": true, "note": null}\r')).toEqual({
      epoch: 3,
      loss: 0.125,
      phase: 'val',
      best: true,
      note: null,
    });
  });

  it('ignores everything that is not exactly one flat JSON object', () => {
    for (const line of [
      'epoch 3 loss 0.1',
      '',
      '{}',
      '[1, 2]',
      '"text"',
      '42',
      '{"a": 1} trailing',
      'prefix {"a": 1}',
      '{"a": 1}{"b": 2}',
      '{"a": {"b": 1}}',
      '{"a": [1, 2]}',
      '{"a": 1,}',
      '{not json}',
    ]) {
      expect(parseMetricLine(line), line).toBeUndefined();
    }
  });

  it('bounds the size of a sample', () => {
    const many = Object.fromEntries(Array.from({ length: METRIC_LIMITS.keys + 1 }, (_, i) => [`k${i}`, i]));
    expect(parseMetricLine(JSON.stringify(many))).toBeUndefined();
    expect(parseMetricLine(JSON.stringify({ s: 'x'.repeat(METRIC_LIMITS.stringChars + 1) }))).toBeUndefined();
    expect(parseMetricLine(JSON.stringify({ s: 'x'.repeat(METRIC_LIMITS.stringChars) }))).toEqual({ s: 'x'.repeat(METRIC_LIMITS.stringChars) });
    expect(parseMetricLine(JSON.stringify({ ['k'.repeat(METRIC_LIMITS.keyChars + 1)]: 1 }))).toBeUndefined();
  });

  it('keeps a "__proto__" key as plain data', () => {
    const sample = parseMetricLine('{"__proto__": 5, "loss": 1}');
    expect(sample).toBeDefined();
    expect(Object.getPrototypeOf(sample)).toBe(Object.prototype);
    expect(Object.keys(sample ?? {})).toEqual(['__proto__', 'loss']);
  });
});
