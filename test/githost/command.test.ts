import { describe, expect, it } from 'vitest';
import { parseCommentCommand } from '../../app/intake/command.js';
import { parseParamArgs } from '../../pipeline/params.js';
import { parsePipeline } from '../../pipeline/parse.js';

describe('/train comment grammar', () => {
  it('reads a pipeline and key=value parameters', () => {
    expect(parseCommentCommand('/train mnist epochs=20 lr=3e-4')).toEqual({
      kind: 'train',
      pipeline: 'mnist',
      params: { epochs: '20', lr: '3e-4' },
    });
  });

  it('allows no pipeline, and parameters only', () => {
    expect(parseCommentCommand('/train')).toEqual({ kind: 'train', params: {} });
    expect(parseCommentCommand('/train epochs=2')).toEqual({ kind: 'train', params: { epochs: '2' } });
  });

  it('takes double- and single-quoted values with spaces and escapes', () => {
    expect(parseCommentCommand(`/train m note="two words" q='a "b"' e="x\\"y\\\\z" empty=""`)).toEqual({
      kind: 'train',
      pipeline: 'm',
      params: { note: 'two words', q: 'a "b"', e: 'x"y\\z', empty: '' },
    });
  });

  it('only looks at the first line; later lines are free text', () => {
    expect(parseCommentCommand('/train m a=1\r\nthanks!\n/train other')).toEqual({
      kind: 'train',
      pipeline: 'm',
      params: { a: '1' },
    });
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

  it('refuses a parameter named __proto__, as the pipeline file does, without touching the prototype', () => {
    const r = parseCommentCommand('/train m __proto__=x');
    expect(r?.kind).toBe('invalid');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('accepts exactly the names a pipeline file can declare and `--param` accepts', () => {
    // Every surface reads names with pipeline/names.ts: the pipeline file, `trainyard run --param`,
    // a GitHub comment and a GitLab note (both parsed here).
    const names = [
      'learning-rate',
      'learning_rate',
      'lr',
      'LR',
      '_x',
      'a-',
      'x'.repeat(64),
      'x'.repeat(65),
      '1x',
      '-a',
      'a.b',
      'a b',
      'é',
      '__proto__',
      'constructor',
    ];
    for (const name of names) {
      const declared =
        parsePipeline(
          `name: p\nparams:\n  ${JSON.stringify(name)}: { type: string, default: d }\nsteps:\n  a: { image: busybox, run: x }\n`,
          'p.yaml',
        ).errors.length === 0;
      const cli = parseParamArgs([`${name}=1`]).errors.length === 0;
      const comment = parseCommentCommand(`/train p ${name}=1`);
      expect({ name, cli, comment: comment?.kind === 'train' }).toEqual({ name, cli: declared, comment: declared });
    }
    expect(parseCommentCommand('/train flowers learning-rate=0.1')).toEqual({
      kind: 'train',
      pipeline: 'flowers',
      params: { 'learning-rate': '0.1' },
    });
  });

  it('accepts exactly the pipeline names a pipeline file can have', () => {
    for (const name of ['flowers', 'f-1_2', '2024', 'Flowers', 'a.b', '_x', 'x'.repeat(63), 'x'.repeat(64)]) {
      const file =
        parsePipeline(
          `name: ${JSON.stringify(name)}\nsteps:\n  a: { image: busybox, run: x }\n`,
          `.trainyard/${name}.yaml`,
        ).errors.length === 0;
      expect({ name, comment: parseCommentCommand(`/train ${name}`)?.kind === 'train' }).toEqual({
        name,
        comment: file,
      });
    }
  });

  it('reads /ok-to-train, without arguments', () => {
    expect(parseCommentCommand('/ok-to-train')).toEqual({ kind: 'ok-to-train' });
    expect(parseCommentCommand('  /ok-to-train  \nlooks fine')).toEqual({ kind: 'ok-to-train' });
    expect(parseCommentCommand('/ok-to-train now')?.kind).toBe('invalid');
  });
});
