// Escaping of user-controlled text (step names, env values, params, URIs, messages) for the
// three places the report puts it: Markdown prose/table cells, code spans inside table
// cells, and Mermaid labels. Anything unescaped could break the table, close the
// ```mermaid fence, or inject HTML into a check run; bidirectional controls could make it
// read as something else (neutraliseBidi).
import { neutraliseBidi } from '../usertext.js';

const LINE_BREAKS = /\r\n|[\r\n\u2028\u2029]/g;
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  return `${s.slice(0, Math.max(0, max - 1))}…`;
}

/** Plain text inside a table cell or a line of prose. */
export function mdText(s: string, max = 300): string {
  return clip(neutraliseBidi(s.replace(LINE_BREAKS, ' ').replace(CONTROL, '')), max)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|#~!])/g, '\\$1');
}

/**
 * A code span that survives any content: fenced with one backtick more than the longest
 * run inside, line breaks shown as ⏎, and `|` escaped (GFM splits cells on it even inside
 * code spans; `\|` is the documented way around it).
 */
export function mdCode(s: string, max = 200, inTable = true): string {
  const clipped = clip(neutraliseBidi(s.replace(LINE_BREAKS, '⏎').replace(CONTROL, '')), max);
  const body = inTable ? clipped.replace(/\|/g, '\\|') : clipped;
  const longest = Math.max(0, ...(body.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  const pad = body.startsWith('`') || body.endsWith('`') || body === '' ? ' ' : '';
  return `${fence}${pad}${body}${pad}${fence}`;
}

const MERMAID_ENTITIES: Record<string, string> = {
  '"': '#quot;',
  '#': '#35;',
  '&': '#38;',
  '<': '#lt;',
  '>': '#gt;',
  '[': '#91;',
  ']': '#93;',
  '|': '#124;',
  '`': '#96;',
  '{': '#123;',
  '}': '#125;',
  '(': '#40;',
  ')': '#41;',
};

/** Text for a quoted Mermaid node or edge label. */
export function mermaidLabel(s: string, max = 80): string {
  return clip(neutraliseBidi(s.replace(LINE_BREAKS, ' ').replace(CONTROL, '')), max).replace(
    /["#&<>[\]|`{}()]/g,
    (c) => MERMAID_ENTITIES[c] ?? c,
  );
}

/** A double-quoted title for Mermaid chart syntax, which has no entity escapes: drop what could end it. */
export function mermaidTitle(s: string, max = 60): string {
  return clip(neutraliseBidi(s.replace(LINE_BREAKS, ' ').replace(CONTROL, '')).replace(/["`\\]/g, "'"), max);
}

/** Only http(s) URLs become links; anything else is shown as code. */
export function mdLink(text: string, url: string): string {
  if (!/^https?:\/\/[^\s<>()]+$/.test(url) || neutraliseBidi(url) !== url) return `${mdText(text)} (${mdCode(url)})`;
  return `[${mdText(text)}](${url})`;
}
