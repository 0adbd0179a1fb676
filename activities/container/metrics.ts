// Valohai's convention: a stdout line that is exactly one flat JSON object is a metrics
// sample. Read losslessly: JSON.parse would refuse Python's `NaN`/`Infinity`/`-Infinity`
// (json.dumps writes them for a diverging loss), turn `1e400` into Infinity (written back
// as null) and round a 20-digit integer. Here every number keeps its exact value: a number
// a double carries exactly stays a number, any other keeps its printed text
// (`{ number: "NaN" }`, see MetricValue in model/types.ts).
import type { MetricValue } from '../../model/types.js';

export type { MetricValue };
export type MetricValues = Record<string, MetricValue>;

/** Bounds so a chatty or hostile step cannot bloat a sample; a line past them is rejected, and counted. */
export const METRIC_LIMITS = {
  lineChars: 16 * 1024,
  keys: 256,
  keyChars: 256,
  stringChars: 1024,
} as const;

/**
 * What a stdout line is: a sample, a line that looks like one (`{…}`) but is not (with the
 * reason, for the report), or anything else (undefined: an ordinary log line).
 */
export type MetricLine = { kind: 'sample'; values: MetricValues } | { kind: 'rejected'; reason: string };

/** The metrics sample on this line, or undefined when the line is anything else. */
export function parseMetricLine(line: string): MetricValues | undefined {
  const r = readMetricLine(line);
  return r?.kind === 'sample' ? r.values : undefined;
}

/** Classifies one stdout line; see MetricLine. Never throws. */
export function readMetricLine(line: string): MetricLine | undefined {
  const text = line.trim();
  if (text.length < 2 || !text.startsWith('{') || !text.endsWith('}')) return undefined;
  if (text.length > METRIC_LIMITS.lineChars)
    return rejected(`the line is longer than ${METRIC_LIMITS.lineChars} characters`);
  try {
    return { kind: 'sample', values: new FlatObjectReader(text).read() };
  } catch (err) {
    if (err instanceof NotASample) return rejected(err.message);
    throw err;
  }
}

const rejected = (reason: string): MetricLine => ({ kind: 'rejected', reason });

class NotASample extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const WORDS: [string, MetricValue][] = [
  ['true', true],
  ['false', false],
  ['null', null],
  ['NaN', { number: 'NaN' }],
  ['Infinity', { number: 'Infinity' }],
  ['-Infinity', { number: '-Infinity' }],
];

/** A JSON object of scalars (plus the three words Python writes), read without losing digits. */
class FlatObjectReader {
  private i = 0;
  constructor(private readonly s: string) {}

  read(): MetricValues {
    this.expect('{');
    const entries: [string, MetricValue][] = [];
    this.ws();
    if (this.s[this.i] === '}') throw this.fail('the object is empty');
    for (;;) {
      this.ws();
      const keyAt = this.i;
      if (this.s[this.i] !== '"')
        throw this.fail('a key must be a double-quoted string (print the sample with json.dumps)');
      const key = this.string();
      if (key.length === 0) throw this.fail('a key is empty', keyAt);
      if (key.length > METRIC_LIMITS.keyChars)
        throw this.fail(`a key is longer than ${METRIC_LIMITS.keyChars} characters`, keyAt);
      this.ws();
      this.expect(':');
      this.ws();
      entries.push([key, this.value(key)]);
      if (entries.length > METRIC_LIMITS.keys) throw this.fail(`more than ${METRIC_LIMITS.keys} keys`);
      this.ws();
      if (this.s[this.i] === ',') {
        this.i += 1;
        continue;
      }
      if (this.s[this.i] !== '}') throw this.fail('expected "," or "}"');
      this.i += 1;
      this.ws();
      if (this.i !== this.s.length) throw this.fail('text after the closing brace');
      // fromEntries defines own properties, so a "__proto__" key stays data and never a prototype.
      return Object.fromEntries(entries);
    }
  }

  private value(key: string): MetricValue {
    const c = this.s[this.i];
    if (c === '"') {
      const at = this.i;
      const v = this.string();
      if (v.length > METRIC_LIMITS.stringChars)
        throw this.fail(`the value of "${short(key)}" is longer than ${METRIC_LIMITS.stringChars} characters`, at);
      return v;
    }
    if (c === '{' || c === '[')
      throw this.fail(
        `the value of "${short(key)}" is an ${c === '{' ? 'object' : 'array'}; a sample holds numbers, strings, booleans and null only`,
      );
    for (const [word, v] of WORDS) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) throw this.fail(`the value of "${short(key)}" is not a JSON value`);
    this.i += m[0].length;
    return exactNumber(m[0]);
  }

  private string(): string {
    STRING.lastIndex = this.i;
    const m = STRING.exec(this.s);
    if (!m) throw this.fail('a string is not valid JSON (unclosed, a raw control character, or a bad escape)');
    this.i += m[0].length;
    return JSON.parse(m[0]) as string;
  }

  private ws(): void {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i]!)) this.i += 1;
  }

  private expect(c: string): void {
    if (this.s[this.i] !== c) throw this.fail(`expected "${c}"`);
    this.i += 1;
  }

  private fail(what: string, at = this.i): NotASample {
    return new NotASample(`not a metrics sample: ${what} at column ${at + 1}`);
  }
}

const short = (key: string): string => (key.length > 40 ? `${key.slice(0, 40)}…` : key);

/**
 * The number a JSON number token stands for: a double when writing that double back gives
 * the same decimal value, otherwise the token's text (`1e400`, `12345678901234567890`,
 * `1e-400`), so no digit the step printed is lost.
 */
export function exactNumber(token: string): MetricValue {
  const d = Number(token);
  if (Number.isFinite(d) && decimalKey(String(d)) === decimalKey(token)) return d;
  return { number: token };
}

/** A canonical form of a decimal's value: digits without leading/trailing zeros and a power of ten. */
function decimalKey(text: string): string {
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (!m) return `?${text}`;
  const frac = m[3] ?? '';
  let digits = (m[2]! + frac).replace(/^0+/, '');
  if (digits === '') return '0';
  let exp = BigInt(m[4] ?? '0') - BigInt(frac.length);
  const trimmed = digits.replace(/0+$/, '');
  exp += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return `${m[1]}${digits}e${exp}`;
}

/** The number a value stands for, for charts and statistics (NaN for text and booleans). */
export function numericValue(v: MetricValue): number | undefined {
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object') return Number(v.number);
  return undefined;
}

/** How a value reads in a report or table: numbers as printed, `NaN`/`Infinity` as such. */
export function metricValueText(v: MetricValue): string {
  if (v !== null && typeof v === 'object') return v.number;
  return String(v);
}
