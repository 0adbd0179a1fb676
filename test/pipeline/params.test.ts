import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../pipeline/parse.js';
import { parseParamArgs, resolveParams } from '../../pipeline/params.js';
import type { Pipeline } from '../../pipeline/types.js';

function pipeline(params: string): Pipeline {
  const { pipeline: p, errors } = parsePipeline(
    `name: p\nparams:\n${params}\nsteps:\n  a: { image: busybox, run: x }\n`,
    'p.yaml',
  );
  expect(errors).toEqual([]);
  return p!;
}

const p = pipeline(
  [
    '  epochs: { type: integer, default: 3, min: 1, max: 100 }',
    '  lr: { type: number, default: 0.001, min: 0 }',
    '  size: { type: enum, values: [small, large], default: small }',
    '  fp16: { type: boolean, default: false }',
    '  tag: { type: string, default: baseline }',
    '  seed: { type: integer }',
  ].join('\n'),
);

describe('resolveParams', () => {
  it('applies defaults and parses given values by type', () => {
    const { values, errors } = resolveParams(p, {
      epochs: '20',
      lr: '3e-4',
      size: 'large',
      fp16: 'true',
      tag: ' spaced value ',
      seed: '-7',
    });
    expect(errors).toEqual([]);
    expect(values).toEqual({ epochs: 20, lr: 3e-4, size: 'large', fp16: true, tag: ' spaced value ', seed: -7 });
  });

  it('uses defaults for what is not given, and reports a missing required parameter', () => {
    const { values, errors } = resolveParams(p, {});
    expect(values).toEqual({ epochs: 3, lr: 0.001, size: 'small', fp16: false, tag: 'baseline' });
    expect(errors).toEqual(['parameter "seed" (an integer) has no default and must be given, like seed=<value>']);
  });

  it.each([
    ['epochs', 'abc', 'parameter "epochs" must be an integer between 1 and 100, got "abc"'],
    ['epochs', '2.5', 'parameter "epochs" must be an integer between 1 and 100, got "2.5"'],
    ['epochs', '0', 'parameter "epochs" must be an integer between 1 and 100, got "0"'],
    ['epochs', '101', 'parameter "epochs" must be an integer between 1 and 100, got "101"'],
    ['epochs', '', 'parameter "epochs" must be an integer between 1 and 100, got ""'],
    ['epochs', '0x10', 'parameter "epochs" must be an integer between 1 and 100, got "0x10"'],
    ['seed', '99999999999999999999', 'parameter "seed" must be an integer, got "99999999999999999999"'],
    ['lr', '-1', 'parameter "lr" must be a number of at least 0, got "-1"'],
    ['lr', 'Infinity', 'parameter "lr" must be a number of at least 0, got "Infinity"'],
    ['lr', '1e999', 'parameter "lr" must be a number of at least 0, got "1e999"'],
    ['fp16', 'yes', 'parameter "fp16" must be true or false, got "yes"'],
    ['size', 'medium', 'parameter "size" must be one of small, large, got "medium"'],
    ['tag', 'a\0b', 'parameter "tag" must be a string, got "a\\u0000b"'],
  ])('refuses %s=%j', (name, text, message) => {
    const { values, errors } = resolveParams(p, { seed: '1', [name]: text });
    expect(errors).toEqual([message]);
    expect(Object.hasOwn(values, name) && name !== 'seed').toBe(false);
  });

  it('accepts TRUE/False and surrounding spaces for typed values', () => {
    expect(resolveParams(p, { seed: ' 5 ', fp16: 'TRUE', lr: ' .5 ' }).values).toMatchObject({
      seed: 5,
      fp16: true,
      lr: 0.5,
    });
  });

  it('reports unknown parameters with a suggestion, or the list of declared ones', () => {
    expect(resolveParams(p, { seed: '1', epoch: '3' }).errors).toEqual([
      'unknown parameter "epoch" for pipeline "p"; did you mean "epochs"?',
    ]);
    expect(resolveParams(p, { seed: '1', zzzzzz: '3' }).errors).toEqual([
      'unknown parameter "zzzzzz" for pipeline "p"; its parameters are epochs, lr, size, fp16, tag, seed',
    ]);
    expect(resolveParams(p, { seed: '1', constructor: '3' }).errors).toHaveLength(1);
  });

  it('refuses absurdly long values', () => {
    expect(resolveParams(p, { seed: '1', tag: 'x'.repeat(5000) }).errors).toEqual([
      'parameter "tag" is 5000 characters long; values may be at most 4096',
    ]);
  });
});

describe('parseParamArgs', () => {
  it('splits at the first "=" and keeps the rest verbatim', () => {
    expect(parseParamArgs(['epochs=20', 'lr=3e-4', 'expr=a=b', 'empty='])).toEqual({
      given: { epochs: '20', lr: '3e-4', expr: 'a=b', empty: '' },
      errors: [],
    });
  });

  it('reports what is not an assignment and what is given twice', () => {
    const { given, errors } = parseParamArgs(['epochs', '=3', 'lr=1', 'lr=2']);
    expect(given).toEqual({ lr: '1' });
    expect(errors).toEqual([
      '"epochs" is not a parameter assignment; write name=value',
      '"=3" is not a parameter assignment; write name=value',
      'parameter "lr" is given twice',
    ]);
  });

  it('refuses __proto__ as the pipeline file does, without a prototype change', () => {
    const { given, errors } = parseParamArgs(['__proto__=x']);
    expect(Object.getPrototypeOf(given)).toBe(Object.prototype);
    expect(given).toEqual({});
    expect(errors).toEqual([
      '"__proto__" is not a parameter name; names start with a letter or "_" and contain only letters, digits, "_" and "-" (at most 64 characters)',
    ]);
  });
});
