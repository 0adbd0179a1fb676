import { describe, expect, it } from 'vitest';
import { parseCommentCommand } from '../../app/intake/command.js';

describe('/train comment grammar', () => {
  it('reads a pipeline and key=value parameters', () => {
    expect(parseCommentCommand('/train mnist epochs=20 lr=3e-4')).toEqual({ kind: 'train', pipeline: 'mnist', params: { epochs: '20', lr: '3e-4' } });
  });

  it('allows no pipeline, and parameters only', () => {
    expect(parseCommentCommand('/train')).toEqual({ kind: 'train', params: {} });
    expect(parseCommentCommand('/train epochs=2')).toEqual({ kind: 'train', params: { epochs: '2' } });
  });

  it('takes double- and single-quoted values with spaces and escapes', () => {
    expect(parseCommentCommand(`/train m note="two words" q='a "b"' e="x\\"y\\\\z" empty=""`)).toEqual({
      kind: 'train', pipeline: 'm', params: { note: 'two words', q: 'a "b"', e: 'x"y\\z', empty: '' },
    });
  });

  it('only looks at the first line; later lines are free text', () => {
    expect(parseCommentCommand('/train m a=1\r\nthanks!\n/train other')).toEqual({ kind: 'train', pipeline: 'm', params: { a: '1' } });
    expect(parseCommentCommand('please\n/train m')).toBeNull();
    expect(parseCommentCommand('> /train m')).toBeNull();
    expect(parseCommentCommand('/trainer m')).toBeNull();
    expect(parseCommentCommand('the /train command')).toBeNull();
  });

  it('refuses malformed commands with a sentence', () => {
    const bad = [
      ['/train m epochs', 'is not key=value'],
      ['/train m a=1 a=2', 'given twice'],
      ['/train m 1x=2', 'is not a parameter name'],
      ['/train m a="open', 'never closed'],
      ['/train m a="x"y', 'after the closing quote'],
      ['/train m "a"=1', 'only a value'],
      ['/train m a="\\n"', 'unknown escape'],
      ['/train -rf', 'is not a pipeline name'],
    ] as const;
    for (const [text, fragment] of bad) {
      const r = parseCommentCommand(text);
      expect(r?.kind, text).toBe('invalid');
      expect(r && r.kind === 'invalid' ? r.message : '', text).toContain(fragment);
    }
  });

  it('does not let a parameter named __proto__ reach the prototype', () => {
    const r = parseCommentCommand('/train m __proto__=x');
    expect(r).toEqual({ kind: 'train', pipeline: 'm', params: { ['__proto__']: 'x' } });
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('reads /ok-to-train, without arguments', () => {
    expect(parseCommentCommand('/ok-to-train')).toEqual({ kind: 'ok-to-train' });
    expect(parseCommentCommand('  /ok-to-train  \nlooks fine')).toEqual({ kind: 'ok-to-train' });
    expect(parseCommentCommand('/ok-to-train now')?.kind).toBe('invalid');
  });
});
