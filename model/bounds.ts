// Size bounds for everything user-controlled that crosses the workflow boundary (activity
// inputs and results, signals, queries, heartbeat details, continue-as-new state). Temporal
// refuses a payload over 2 MB ([TMPRL1103], the server's `limit.blobSize.error`) and a
// gRPC message over 4 MB; a step's output, however large, must never get near either. Bulk
// data (metric series, logs, file listings) goes to the artifact store and travels as a
// digest; what stays inline is cut to these sizes. Pure functions: safe in workflow code.

/** A sentence that can quote step output (attempt, step and outcome messages), in UTF-16 units. */
export const MESSAGE_MAX_CHARS = 2000;
/** The last log line in heartbeat details and failure messages. */
export const LAST_LINE_MAX_CHARS = 200;
/** Metrics whose last value travels inline in StepMetrics.last. */
export const LAST_VALUES_MAX = 8;
/** A metric name or string value inside StepMetrics.last. */
export const LAST_VALUE_MAX_CHARS = 100;

/**
 * At most `max` UTF-16 units, cut with "…" when longer; never splits a surrogate pair.
 * Returns the text unchanged when it fits.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  // A high surrogate at the cut would be left without its pair.
  const code = text.charCodeAt(end - 1);
  if (end > 0 && code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/** A message for an attempt, outcome or step status: bounded, whatever the step printed. */
export const boundMessage = (text: string): string => clipText(text, MESSAGE_MAX_CHARS);
