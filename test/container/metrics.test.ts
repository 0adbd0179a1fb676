import { describe, expect, it } from 'vitest';
import { exactNumber, METRIC_LIMITS, parseMetricLine, readMetricLine } from '../../activities/container/metrics.js';
import { MetricsSummariser, SUMMARY_POINTS, summariseSamples } from '../../activities/runner/summary.js';

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

  it('reads strings with every JSON escape, and whitespace anywhere JSON allows it', () => {
    expect(parseMetricLine('{ "a\\"b" :\t"x\\\\y\\n\\u00e9\\/" , "c":-0.5e-3 }')).toEqual({
      'a"b': 'x\\y\né/',
      c: -0.0005,
    });
  });

  it("keeps what Python's json.dumps writes for a diverging loss: NaN, Infinity, -Infinity", () => {
    expect(parseMetricLine('{"loss": NaN, "grad": Infinity, "lr": -Infinity, "step": 7}')).toEqual({
      loss: { number: 'NaN' },
      grad: { number: 'Infinity' },
      lr: { number: '-Infinity' },
      step: 7,
    });
  });

  it('keeps every digit: numbers a double would change stay as printed, the rest stay numbers', () => {
    const s = parseMetricLine(
      '{"big": 1e400, "neg": -1e400, "tiny": 1e-400, "id": 12345678901234567890, "odd": 9007199254740993, "fine": 9007199254740992, "pi": 3.141592653589793238462643, "a": 0.1, "b": 1.0, "c": 1E3, "d": 0.30000000000000004, "z": -0}',
    );
    expect(s).toEqual({
      big: { number: '1e400' },
      neg: { number: '-1e400' },
      tiny: { number: '1e-400' },
      id: { number: '12345678901234567890' },
      odd: { number: '9007199254740993' },
      fine: 9007199254740992,
      pi: { number: '3.141592653589793238462643' },
      a: 0.1,
      b: 1,
      c: 1000,
      d: 0.30000000000000004,
      z: -0,
    });
    // Whatever is kept as a number writes back as the same value.
    for (const v of Object.values(s!))
      if (typeof v === 'number') expect(JSON.parse(JSON.stringify(v))).toBe(v === 0 ? 0 : v);
    expect(exactNumber('123456789012345678')).toEqual({ number: '123456789012345678' });
    expect(exactNumber('1.5e2')).toBe(150);
  });

  it('ignores lines that are not {…}: ordinary log lines', () => {
    for (const line of [
      'epoch 3 loss 0.1',
      '',
      '{',
      '[1, 2]',
      '"text"',
      '42',
      'prefix {"a": 1}',
      '{"a": 1} trailing',
    ]) {
      expect(readMetricLine(line), line).toBeUndefined();
    }
  });

  it('reports lines that look like a sample but are not one, with the reason', () => {
    const cases: [string, RegExp][] = [
      ['{}', /empty/],
      ['{"a": 1}{"b": 2}', /text after the closing brace/],
      ['{"a": {"b": 1}}', /"a" is an object/],
      ['{"a": [1, 2]}', /"a" is an array/],
      ['{"a": 1,}', /key must be a double-quoted string/],
      ["{'loss': 0.5}", /key must be a double-quoted string .*json\.dumps/],
      ['{not json}', /key must be a double-quoted string/],
      ['{"a": nan}', /"a" is not a JSON value/],
      ['{"a": 01}', /expected "," or "}"/],
      ['{"a": "x\ty"}', /string is not valid JSON/],
      ['{"": 1}', /key is empty/],
    ];
    for (const [line, why] of cases) {
      const r = readMetricLine(line);
      expect(r?.kind, line).toBe('rejected');
      expect(r?.kind === 'rejected' ? r.reason : '', line).toMatch(why);
      expect(r?.kind === 'rejected' ? r.reason : '', line).toMatch(/at column \d+/);
    }
  });

  it('bounds the size of a sample, and says so', () => {
    const many = Object.fromEntries(Array.from({ length: METRIC_LIMITS.keys + 1 }, (_, i) => [`k${i}`, i]));
    expect(readMetricLine(JSON.stringify(many))).toMatchObject({
      kind: 'rejected',
      reason: expect.stringMatching(/more than 256 keys/),
    });
    expect(readMetricLine(JSON.stringify({ s: 'x'.repeat(METRIC_LIMITS.stringChars + 1) }))).toMatchObject({
      kind: 'rejected',
    });
    expect(parseMetricLine(JSON.stringify({ s: 'x'.repeat(METRIC_LIMITS.stringChars) }))).toEqual({
      s: 'x'.repeat(METRIC_LIMITS.stringChars),
    });
    expect(readMetricLine(JSON.stringify({ ['k'.repeat(METRIC_LIMITS.keyChars + 1)]: 1 }))).toMatchObject({
      kind: 'rejected',
    });
    expect(readMetricLine(`{"a": "${'x'.repeat(METRIC_LIMITS.lineChars)}"}`)).toMatchObject({
      kind: 'rejected',
      reason: expect.stringMatching(/longer than 16384/),
    });
    // 100 keys of ordinary numbers is well within bounds.
    const hundred = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`metric_${i}`, i / 7]));
    expect(parseMetricLine(JSON.stringify(hundred))).toEqual(hundred);
  });

  it('keeps a "__proto__" key as plain data', () => {
    const sample = parseMetricLine('{"__proto__": 5, "loss": 1}');
    expect(sample).toBeDefined();
    expect(Object.getPrototypeOf(sample)).toBe(Object.prototype);
    expect(Object.keys(sample ?? {})).toEqual(['__proto__', 'loss']);
  });
});

describe('the metrics summary', () => {
  it('downsamples a long series to at most SUMMARY_POINTS means, keeping its shape, range and last value', () => {
    const s = new MetricsSummariser();
    const n = 200_000;
    for (let i = 0; i < n; i += 1) s.add({ t: i, values: { loss: 1 / (1 + i / 1000), step: i } });
    const loss = s.summary().metrics.find((m) => m.name === 'loss')!;
    expect(loss).toMatchObject({
      count: n,
      finite: n,
      min: 1 / (1 + (n - 1) / 1000),
      max: 1,
      last: 1 / (1 + (n - 1) / 1000),
      downsampled: true,
      counter: false,
    });
    expect(loss.points.length).toBeGreaterThan(SUMMARY_POINTS / 2);
    expect(loss.points.length).toBeLessThanOrEqual(SUMMARY_POINTS);
    // Monotone decreasing input stays monotone decreasing; the means lie within the range.
    for (let i = 1; i < loss.points.length; i += 1) {
      expect(loss.points[i]![1]).toBeLessThan(loss.points[i - 1]![1]);
      expect(loss.points[i]![0]).toBeGreaterThan(loss.points[i - 1]![0]);
    }
    expect(s.summary().metrics.find((m) => m.name === 'step')).toMatchObject({ counter: true, last: n - 1 });
  });

  it('does not downsample a short series', () => {
    const sum = summariseSamples([1, 2, 3].map((k) => ({ t: k, values: { loss: 1 / k } })));
    expect(sum.metrics[0]).toMatchObject({
      points: [
        [1, 1],
        [2, 0.5],
        [3, 1 / 3],
      ],
      downsampled: false,
    });
  });

  it('counts non-finite values by kind, with the time of the first, and never charts them', () => {
    const sum = summariseSamples([
      { t: 10, values: { loss: 0.5 } },
      { t: 20, values: { loss: { number: 'NaN' } } },
      { t: 30, values: { loss: { number: 'Infinity' } } },
      { t: 40, values: { loss: { number: 'NaN' } } },
      { t: 50, values: { loss: { number: '1e400' } } },
      { t: 60, values: { loss: { number: '12345678901234567890' } } },
    ]);
    expect(sum.metrics[0]).toMatchObject({
      count: 6,
      finite: 2,
      exactText: 1,
      last: { number: '12345678901234567890' },
      nonFinite: [
        { kind: 'NaN', count: 2, firstT: 20, example: 'NaN' },
        { kind: 'Infinity', count: 1, firstT: 30, example: 'Infinity' },
        { kind: 'beyond the double range', count: 1, firstT: 50, example: '1e400' },
      ],
    });
    expect(sum.metrics[0]!.points.map((p) => p[1])).toEqual([0.5, 12345678901234567890]);
    // Survives JSON: nothing became null.
    expect(JSON.stringify(sum)).not.toContain('null');
  });

  it('never overflows a mean of huge finite values into Infinity (which JSON would write as null)', () => {
    const sum = summariseSamples(Array.from({ length: 500 }, (_, i) => ({ t: i, values: { x: 1.7e308 } })));
    expect(sum.metrics[0]!.points.every((p) => p[1] === 1.7e308)).toBe(true);
  });

  it('summarises a bounded number of metric names and counts the rest', () => {
    const s = new MetricsSummariser();
    for (let i = 0; i < 300; i += 1) s.add({ t: i, values: { [`m${i}`]: i } });
    expect(s.summary().metrics).toHaveLength(256);
    expect(s.summary().unsummarised).toBe(44);
    expect(s.names).toBe(300);
  });
});
