// What an input string of a step refers to: another step's output, an object in S3, or a
// path in the repository. Anything else is refused with the list of supported forms.
import type { InputSource } from './types.js';
import { NAME } from './names.js';

export const INPUT_FORMS = 'steps.<step>.outputs.<output>, s3://bucket/key, or a path in the repository';

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

export type InputParse = { ok: true; source: InputSource } | { ok: false; problem: string };

/**
 * A repository path made canonical (`./data/` → `data`), or the reason it is refused.
 * Leading `/`, `..` segments, backslashes and leading `-` are refused: the path is later
 * joined under a checkout and handed to git as an argument.
 */
export function repoPath(text: string): { ok: true; path: string } | { ok: false; problem: string } {
  if (text.includes('\0')) return { ok: false, problem: 'contains a NUL character' };
  if (text.includes('\\')) return { ok: false, problem: 'contains "\\"; use "/" between folders' };
  if (text.startsWith('/')) return { ok: false, problem: 'starts with "/"; paths are relative to the project root' };
  const parts = text.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { ok: false, problem: 'contains "..", which would leave the repository' };
  if (parts.length === 0) return { ok: false, problem: 'names no file or folder' };
  if (parts[0]!.startsWith('-') || parts[0]!.startsWith(':'))
    return { ok: false, problem: `starts with "${parts[0]![0]}"` };
  return { ok: true, path: parts.join('/') };
}

export function parseInput(text: string): InputParse {
  const t = text.trim();
  // `steps.py` is a file; `steps.prep.outputs.x` and near-misses like `steps.prep.x` are references.
  if (t.startsWith('steps.') && !t.includes('/') && t.split('.').length >= 3) {
    const parts = t.split('.');
    if (parts.length !== 4 || parts[2] !== 'outputs' || !NAME.test(parts[1]!) || !NAME.test(parts[3]!)) {
      return { ok: false, problem: 'looks like a step reference but is not of the form steps.<step>.outputs.<output>' };
    }
    return { ok: true, source: { kind: 'step', step: parts[1]!, output: parts[3]! } };
  }
  const scheme = SCHEME.exec(t);
  if (scheme !== null) {
    if (scheme[1] !== 's3')
      return { ok: false, problem: `uses "${scheme[1]}://", which is not supported; an input is ${INPUT_FORMS}` };
    const rest = t.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (!S3_BUCKET.test(bucket) || bucket.includes('..'))
      return { ok: false, problem: `names the S3 bucket "${bucket}", which is not a valid bucket name` };
    if (key === '' || key.includes('\0')) return { ok: false, problem: 'names no object; write s3://bucket/key' };
    return { ok: true, source: { kind: 'uri', uri: t } };
  }
  const path = repoPath(t);
  if (!path.ok) return { ok: false, problem: `is not a usable repository path: it ${path.problem}` };
  return { ok: true, source: { kind: 'repo', path: path.path } };
}
