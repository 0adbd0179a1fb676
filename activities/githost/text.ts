// Text for check runs, commit statuses and notes: live step tables, size limits.
import type { RunStatus, StepStatus } from '../../model/types.js';
import { mdCode, mdText } from '../report/escape.js';
import { humanDuration } from '../report/markdown.js';
import { reasonBeside, STATE_EMOJI, stepDetail, stepElapsedMs } from '../report/statetext.js';

/** GitHub's limit for a check run's summary and text, in bytes. */
export const CHECK_TEXT_MAX = 65_535;

/** Cuts at a UTF-8 character boundary so the result plus `suffix` fits in maxBytes. */
export function truncateUtf8(text: string, maxBytes: number, suffix = ''): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  const room = Math.max(0, maxBytes - Buffer.byteLength(suffix, 'utf8'));
  let end = room;
  // Step back over continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + suffix;
}

/** At most `chars` characters, cut with an ellipsis (GitLab's 255-character fields). */
export function clipChars(text: string, chars: number): string {
  const arr = [...text];
  return arr.length <= chars ? text : `${arr.slice(0, chars - 1).join('')}…`;
}

/** The last lines of a log, at most maxLines lines and maxBytes bytes. */
export function tailLines(text: string, maxLines: number, maxBytes: number): string {
  const lines = text.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');
  let out = lines.slice(-maxLines).join('\n');
  while (Buffer.byteLength(out, 'utf8') > maxBytes) {
    const cut = out.indexOf('\n');
    if (cut < 0) return truncateFromStart(out, maxBytes);
    out = out.slice(cut + 1);
  }
  return out;
}

function truncateFromStart(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  let start = bytes.length - maxBytes;
  while (start < bytes.length && (bytes[start]! & 0xc0) === 0x80) start++;
  return bytes.subarray(start).toString('utf8');
}

export interface StepCounts {
  total: number;
  done: number;
  running: number;
  cached: number;
  failed: number;
}

export function countSteps(status: RunStatus): StepCounts {
  const c: StepCounts = { total: status.steps.length, done: 0, running: 0, cached: 0, failed: 0 };
  for (const s of status.steps) {
    if (s.state === 'running') c.running++;
    if (s.state === 'cached') c.cached++;
    if (s.state === 'failed') c.failed++;
    if (
      s.state === 'succeeded' ||
      s.state === 'cached' ||
      s.state === 'failed' ||
      s.state === 'skipped' ||
      s.state === 'cancelled'
    )
      c.done++;
  }
  return c;
}

export function progressTitle(status: RunStatus): string {
  const c = countSteps(status);
  const parts = [`${c.done}/${c.total} steps done`];
  if (c.running) parts.push(`${c.running} running`);
  if (c.cached) parts.push(`${c.cached} cached`);
  if (c.failed) parts.push(`${c.failed} failed`);
  return parts.join(', ');
}

/**
 * The live step table. A 200-step pipeline stays well under the summary limit: rows are
 * short, and past `maxRows` the finished steps are folded into one line.
 */
export function stepTable(status: RunStatus, now = Date.now(), maxRows = 250): string {
  const rows = status.steps.map((s) => {
    const why = s.cache ? reasonBeside(s.state, s.cache.reason) : stepDetail(s.state, s.message);
    const where = s.host ? (s.host.instanceType ?? s.host.kind) : '';
    const elapsed = stepElapsedMs(s, now);
    return `| ${STATE_EMOJI[s.state]} | ${mdCode(s.name, 160)} | ${s.state} | ${elapsed === null ? '' : humanDuration(elapsed)} | ${mdText(where, 160)} | ${mdText(why, 160)} |`;
  });
  let shown = rows;
  if (rows.length > maxRows) {
    const active = status.steps
      .map((s, i) => ({ s, i }))
      .filter(({ s }) => s.state === 'running' || s.state === 'failed');
    shown = [...active.map(({ i }) => rows[i]!), `| | … | ${rows.length - active.length} more steps | | | |`];
  }
  return ['| | step | state | time | machine | why |', '| --- | --- | --- | --- | --- | --- |', ...shown].join('\n');
}
