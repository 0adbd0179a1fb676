// The comment commands a PR / MR conversation understands. Only the first line of a
// comment is a command, so quoting (`> /train`) or mentioning one in prose does nothing.
//
//   /train [pipeline] [key=value ...]      values bare, "double quoted" (\" \\ escapes) or 'single quoted'
//   /ok-to-train                           a maintainer trusts the PR's current head commit
//
// Pipeline and parameter names follow pipeline/names.ts, the grammar the pipeline file, the
// CLI and every git host share: a name a pipeline can declare is a name a comment can give.
import { NAME_RULE, PIPELINE_NAME_RULE, isName, isPipelineName } from '../../pipeline/names.js';

export type CommentCommand =
  | { kind: 'train'; pipeline?: string; params: Record<string, string> }
  | { kind: 'ok-to-train' }
  | { kind: 'invalid'; message: string };

const MAX_LINE = 2000;
const MAX_PARAMS = 64;
/** 1-based column in the comment line of index 0 of the text after `/train`. */
const COL = '/train'.length + 1;

/** The command on the comment's first line, or null when the comment is not a command. */
export function parseCommentCommand(body: string): CommentCommand | null {
  const firstLine = body.replace(/^\s+/, '').split(/\r?\n/, 1)[0] ?? '';
  const head = /^\/(train|ok-to-train)(?=$|[ \t])/.exec(firstLine);
  if (!head) return null;
  const rest = firstLine.slice(head[0].length).trimEnd();
  if (head[1] === 'ok-to-train') {
    return rest.trim() === '' ? { kind: 'ok-to-train' } : invalid('`/ok-to-train` takes no arguments.');
  }
  if (firstLine.length > MAX_LINE) return invalid(`the command is longer than ${MAX_LINE} characters.`);
  const tokens = tokenize(rest);
  if (typeof tokens === 'string') return invalid(tokens);
  return buildTrain(tokens);
}

function invalid(message: string): CommentCommand {
  return { kind: 'invalid', message };
}

interface Token {
  text: string;
  /** Index of `=` in text for key=value tokens whose key part was unquoted, else -1. */
  eq: number;
  column: number;
}

/** Splits on blanks, honouring quotes; returns an error sentence on malformed input. */
function tokenize(line: string): Token[] | string {
  const tokens: Token[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ' || line[i] === '\t') {
      i++;
      continue;
    }
    const column = i + COL;
    let text = '';
    let eq = -1;
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      const c = line[i]!;
      if (c === '"' || c === "'") {
        if (eq < 0) return `unexpected quote at column ${i + COL}: only a value (after \`=\`) may be quoted.`;
        const end = readQuoted(line, i);
        if (typeof end === 'string') return end;
        text += end.value;
        i = end.next;
        if (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
          return `unexpected text after the closing quote at column ${i + COL}.`;
        }
        continue;
      }
      if (c === '=' && eq < 0) eq = text.length;
      text += c;
      i++;
    }
    tokens.push({ text, eq, column });
  }
  return tokens;
}

function readQuoted(line: string, start: number): { value: string; next: number } | string {
  const quote = line[start];
  let value = '';
  let i = start + 1;
  while (i < line.length) {
    const c = line[i]!;
    if (c === quote) return { value, next: i + 1 };
    if (quote === '"' && c === '\\') {
      const n = line[i + 1];
      if (n !== '"' && n !== '\\')
        return `unknown escape \\${n ?? ''} at column ${i + COL}: only \\" and \\\\ are allowed.`;
      value += n;
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  return `the quote opened at column ${start + COL} is never closed.`;
}

function buildTrain(tokens: Token[]): CommentCommand {
  let pipeline: string | undefined;
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [index, t] of tokens.entries()) {
    if (t.eq < 0) {
      if (index !== 0) {
        return invalid(`\`${clip(t.text)}\` (column ${t.column}) is not key=value; the pipeline name goes first.`);
      }
      if (!isPipelineName(t.text)) return invalid(`\`${clip(t.text)}\` is not a pipeline name; ${PIPELINE_NAME_RULE}.`);
      pipeline = t.text;
      continue;
    }
    const key = t.text.slice(0, t.eq);
    const value = t.text.slice(t.eq + 1);
    if (!isName(key)) {
      return invalid(`\`${clip(key)}\` (column ${t.column}) is not a parameter name; ${NAME_RULE}.`);
    }
    if (Object.prototype.hasOwnProperty.call(params, key)) return invalid(`parameter \`${key}\` is given twice.`);
    params[key] = value;
    if (Object.keys(params).length > MAX_PARAMS) return invalid(`more than ${MAX_PARAMS} parameters.`);
  }
  return { kind: 'train', ...(pipeline ? { pipeline } : {}), params: { ...params } };
}

function clip(s: string): string {
  const plain = s.replace(/[`\r\n]/g, '');
  return plain.length > 40 ? `${plain.slice(0, 40)}…` : plain;
}
