// Text from users (comments, pipeline files, step names, step output) shown anywhere a
// person reads it: check runs, PR comments, MR notes, commit statuses, reports, run pages,
// the CLI and log lines. Unicode's bidirectional controls reorder how text around them is
// displayed, so a comment could make a reply or a report show something other than what
// it says ("Trojan Source", CVE-2021-42574). Every surface passes user text through here.

/**
 * Unicode's Bidi_Control characters (PropList.txt): U+061C, U+200E, U+200F, U+202A–U+202E
 * (embeddings, overrides, pop) and U+2066–U+2069 (isolates).
 */
const BIDI_CONTROL = /\p{Bidi_Control}/gu;

const codePoint = (c: string): string => c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');

/** Each bidirectional control shown as a visible, inert `[U+202E]`; all other text unchanged. */
export function neutraliseBidi(text: string): string {
  return text.replace(BIDI_CONTROL, (c) => `[U+${codePoint(c)}]`);
}

/**
 * For a JSON document (a log line): each bidirectional control written as its `\u202e`
 * escape. The same JSON value, inert in a terminal or log viewer. (Raw characters of this
 * kind can only occur inside JSON strings, where the escape is equivalent.)
 */
export function escapeBidiInJson(json: string): string {
  return json.replace(BIDI_CONTROL, (c) => `\\u${codePoint(c).toLowerCase()}`);
}

/**
 * One line for a terminal: control characters (C0, C1, DEL, line and paragraph separators,
 * which could move the cursor or fake output) become spaces, bidirectional controls visible.
 */
export function terminalText(text: string): string {
  return neutraliseBidi(text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' '));
}

/** pino's `hooks` option: every log line written with bidirectional controls escaped. */
export const pinoTextHooks = { streamWrite: escapeBidiInJson };
