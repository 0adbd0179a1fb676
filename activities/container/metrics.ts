// Valohai's convention: a stdout line that is exactly one flat JSON object is a metrics sample.

export type MetricValue = number | string | boolean | null;
export type MetricSample = Record<string, MetricValue>;

/** Bounds so a chatty or hostile step cannot bloat the lineage record. */
export const METRIC_LIMITS = {
  lineChars: 16 * 1024,
  keys: 256,
  keyChars: 256,
  stringChars: 1024,
} as const;

/** The metrics sample on this line, or undefined when the line is anything else. */
export function parseMetricLine(line: string): MetricSample | undefined {
  const text = line.trim();
  if (text.length < 2 || text.length > METRIC_LIMITS.lineChars) return undefined;
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const entries = Object.entries(parsed);
  if (entries.length === 0 || entries.length > METRIC_LIMITS.keys) return undefined;
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > METRIC_LIMITS.keyChars) return undefined;
    if (typeof value === 'string' ? value.length > METRIC_LIMITS.stringChars : !isScalar(value)) return undefined;
  }
  // fromEntries defines own properties, so a "__proto__" key stays data and never a prototype.
  return Object.fromEntries(entries) as MetricSample;
}

function isScalar(value: unknown): value is MetricValue {
  return value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string';
}
