import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { PIPELINE_KEYS, PARAM_TYPES, parsePipeline } from '../../pipeline/parse.js';

const here = dirname(fileURLToPath(import.meta.url));
const schema = JSON.parse(readFileSync(join(here, '../../schema/pipeline.schema.json'), 'utf8')) as Record<
  string,
  unknown
>;
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validate = ajv.compile(schema);
// Merge keys (`<<: *x`) resolved as editors resolve them; the examples hold few aliases.
const load = (rel: string) => parse(readFileSync(join(here, rel), 'utf8'), { merge: true }) as unknown;

type SchemaNode = {
  properties?: Record<string, SchemaNode & { description?: string }>;
  $defs?: Record<string, SchemaNode>;
  description?: string;
  additionalProperties?: unknown;
};

describe('schema/pipeline.schema.json', () => {
  const valid = readdirSync(join(here, 'valid')).filter((n) => /\.ya?ml$/.test(n));

  it.each(valid)('accepts valid/%s', (name) => {
    const ok = validate(load(`valid/${name}`));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
    // And the parser agrees.
    expect(parsePipeline(readFileSync(join(here, 'valid', name), 'utf8'), name).errors).toEqual([]);
  });

  it.each([
    ['unknown-key-step.yaml', '/steps/train'],
    ['missing-name.yaml', ''],
    ['param-bad-type.yaml', '/params/epochs/type'],
    ['enum-without-values.yaml', '/params/optimizer'],
    ['wrong-types.yaml', '/steps/train/image'],
    ['machine-errors.yaml', '/machines/big'],
    ['kubernetes-machine-errors.yaml', '/machines/both'],
    ['kubernetes-machine-errors.yaml', '/machines/ec2keys'],
    ['invalid-names.yaml', '/steps'],
    ['bad-duration.yaml', '/steps/a/timeout'],
    ['push-filter-conflicts.yaml', '/on/push'],
    ['name-collisions.yaml', '/steps/train/env'],
    ['secrets.yaml', '/steps/train/secrets'],
    ['secrets.yaml', '/steps/train/secrets/3'],
    ['concurrency.yaml', '/concurrency'],
    ['concurrency.yaml', '/concurrency/group'],
    ['concurrency-group.yaml', '/concurrency/group'],
  ])('flags invalid/%s at %s', (name, path) => {
    expect(validate(load(`invalid/${name}`))).toBe(false);
    expect(validate.errors!.map((e) => e.instancePath)).toContain(path);
  });

  it('describes the same keys the parser allows, each with a description', () => {
    const s = schema as SchemaNode;
    const defs = s.$defs!;
    const on = s.properties!.on!;
    const push = (on.properties!.push as { oneOf: SchemaNode[] }).oneOf.find((o) => o.properties)!;
    const levels: [string, SchemaNode, readonly string[]][] = [
      ['top', s, PIPELINE_KEYS.top],
      ['on', on, PIPELINE_KEYS.on],
      ['on.push', push, PIPELINE_KEYS.push],
      ['concurrency', s.properties!.concurrency!, PIPELINE_KEYS.concurrency],
      ['param', defs.param!, PIPELINE_KEYS.param],
      ['machine', defs.machine!, PIPELINE_KEYS.machine],
      ['step', defs.step!, PIPELINE_KEYS.step],
    ];
    for (const [level, node, keys] of levels) {
      expect(Object.keys(node.properties!).sort(), level).toEqual([...keys].sort());
      expect(node.additionalProperties, level).toBe(false);
      for (const [key, prop] of Object.entries(node.properties!))
        expect(prop.description, `${level}.${key}`).toMatch(/\w/);
    }
    expect((defs.param!.properties!.type as { enum: string[] }).enum).toEqual([...PARAM_TYPES]);
  });
});
