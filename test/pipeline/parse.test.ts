import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MAX_PIPELINE_BYTES, formatPipelineError, parsePipeline } from '../../pipeline/parse.js';

const here = dirname(fileURLToPath(import.meta.url));
const read = (rel: string) => readFileSync(join(here, rel), 'utf8');

describe('valid pipeline files', () => {
  it('parses the DESIGN.md sketch with defaults applied', () => {
    const text = read('valid/mnist.yaml');
    const { pipeline, errors } = parsePipeline(text, '.trainyard/mnist.yaml');
    expect(errors).toEqual([]);
    expect(pipeline).toBeDefined();
    const p = pipeline!;
    expect(p.name).toBe('mnist');
    expect(p.file).toBe('.trainyard/mnist.yaml');
    expect(p.digest).toBe(`sha256:${createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex')}`);
    expect(p.on).toEqual({
      push: { branches: ['main', 'exp/**'], paths: ['src/**', 'data.dvc', '.trainyard/mnist.yaml'] },
      comment: true,
    });
    expect(p.params).toEqual({
      epochs: { type: 'integer', default: 3, min: 1 },
      lr: { type: 'number', default: 0.001 },
    });
    expect(p.machines).toEqual({
      gpu: { instance: ['g5.xlarge', 'g6.xlarge'], gpus: 1, spot: true, on_demand_fallback: true, disk_gb: 100 },
    });
    expect(p.order).toEqual(['prepare', 'train']);
    expect(p.concurrency).toBeUndefined();
    expect(p.steps.prepare).toEqual({
      name: 'prepare',
      image: 'python:3.12-slim',
      run: 'python src/prepare.py',
      code: ['src/prepare.py'],
      env: {},
      inputs: { raw: { kind: 'uri', uri: 's3://datasets/mnist/raw.tar.gz' } },
      outputs: ['dataset'],
      needs: [],
      timeoutSeconds: 3600,
      retries: 0,
      cache: true,
      line: 11,
    });
    expect(p.steps.train).toMatchObject({
      machine: 'gpu',
      inputs: { dataset: { kind: 'step', step: 'prepare', output: 'dataset' } },
      outputs: ['model'],
      timeoutSeconds: 7200,
      retries: 2,
      line: 17,
    });
    expect(p.steps.train!.code).toBeUndefined();
    expect(p.steps.train!.params).toBeUndefined();
  });

  it('parses every feature of full.yaml', () => {
    const { pipeline: p, errors } = parsePipeline(read('valid/full.yaml'), '.trainyard/full.yaml');
    expect(errors.map(formatPipelineError)).toEqual([]);
    expect(p!.on).toEqual({
      push: { branches: ['main', 'exp/**', '!exp/scratch/**'], paths: ['src/**', 'data.dvc', '.trainyard/full.yaml'] },
      comment: false,
    });
    expect(p!.concurrency).toEqual({ group: '{{ pipeline }}-{{branch}}', cancelInProgress: true });
    expect(p!.params.model_size).toEqual({ type: 'enum', values: ['small', 'base', 'large'], default: 'base' });
    expect(p!.params.seed).toEqual({ type: 'integer' });
    expect(p!.params.lr!.default).toBe(3e-4);
    expect(p!.params.fp16!.default).toBe(true);
    expect(p!.params.notes!.default).toBe('');
    expect(p!.machines.gpu).toMatchObject({
      on_demand_fallback: false,
      disk_gb: 200,
      ami: expect.stringMatching(/^\/aws\/service\//),
    });
    expect(p!.machines.cpu).toEqual({
      instance: ['c7i.2xlarge'],
      gpus: 0,
      spot: false,
      on_demand_fallback: true,
      disk_gb: 50,
    });
    const { prepare, train, evaluate, publish } = p!.steps;
    expect(prepare!.run).toEqual(['python', 'src/prepare.py', '--out', '/outputs/dataset']);
    expect(prepare!.code).toEqual(['src/prepare.py', 'src/common']);
    // Scalars become the text the user wrote, not JS's rendering of the number.
    expect(prepare!.env).toEqual({ PYTHONUNBUFFERED: '1', LOG_LEVEL: 'info', SCALE: '1e-3', STRICT: 'true' });
    expect(prepare!.inputs.labels).toEqual({ kind: 'repo', path: 'data/labels.csv' });
    expect(prepare!.params).toEqual([]);
    expect(prepare!.cacheVersion).toBe('2');
    expect(train!.run).toBe('python src/train.py --epochs "$EPOCHS"\n');
    expect(train!.env).toEqual(prepare!.env);
    expect(train!.timeoutSeconds).toBe(5400);
    // `<<: *train` merges train's keys under evaluate's own.
    expect(evaluate).toMatchObject({
      image: train!.image,
      run: 'python src/evaluate.py',
      machine: 'cpu',
      outputs: ['report'],
      params: ['seed'],
      timeoutSeconds: 900,
      retries: 0,
    });
    expect(evaluate!.env).toEqual(prepare!.env);
    expect(publish).toMatchObject({
      needs: ['evaluate'],
      cache: false,
      inputs: {},
      secrets: ['HF_TOKEN', 'WANDB_API_KEY'],
    });
    expect(train!.secrets).toBeUndefined();
    expect(p!.order).toEqual(['prepare', 'train', 'evaluate', 'publish']);
  });

  it('orders dependencies first, keeping file order otherwise', () => {
    const text = [
      'name: order',
      'steps:',
      '  report: { image: busybox, run: x, needs: [train, lint] }',
      '  lint: { image: busybox, run: x }',
      '  train: { image: busybox, run: x, inputs: { d: steps.prep.outputs.d } }',
      '  prep: { image: busybox, run: x, outputs: [d] }',
    ].join('\n');
    const { pipeline, errors } = parsePipeline(text, '.trainyard/order.yml');
    expect(errors).toEqual([]);
    expect(pipeline!.order).toEqual(['prep', 'train', 'lint', 'report']);
  });

  it('reads `on` as GitHub Actions does: absent = everything, present = only what is listed', () => {
    const steps = 'steps:\n  a: { image: busybox, run: x }\n';
    expect(parsePipeline(`name: t\n${steps}`, 't.yaml').pipeline!.on).toEqual({ push: {}, comment: true });
    expect(parsePipeline(`name: t\non: { comment: true }\n${steps}`, 't.yaml').pipeline!.on).toEqual({
      push: null,
      comment: true,
    });
    expect(parsePipeline(`name: t\non: { push: false, comment: false }\n${steps}`, 't.yaml').pipeline!.on).toEqual({
      push: null,
      comment: false,
    });
    expect(parsePipeline(`name: t\non:\n  push:\n${steps}`, 't.yaml').pipeline!.on).toEqual({
      push: {},
      comment: true,
    });
    expect(parsePipeline(`name: t\non: { push: { branches: main } }\n${steps}`, 't.yaml').pipeline!.on.push).toEqual({
      branches: ['main'],
    });
  });
});

describe('invalid pipeline files', () => {
  const dir = join(here, 'invalid');
  const expected = JSON.parse(read('invalid/expected.json')) as Record<string, string[]>;
  const files = readdirSync(dir)
    .filter((n) => n.endsWith('.yaml'))
    .sort();

  it('has a corpus of at least 30 files, each with its expected messages', () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    expect(Object.keys(expected).sort()).toEqual(files);
  });

  it.each(files)('%s reports exactly its mistakes', (name) => {
    const file = `test/pipeline/invalid/${name}`;
    const { pipeline, errors } = parsePipeline(readFileSync(join(dir, name), 'utf8'), file);
    expect(pipeline).toBeUndefined();
    expect(errors.map(formatPipelineError)).toEqual(expected[name]);
  });
});

describe('refusals before expanding', () => {
  // How fast these refusals are is measured by bench/latency.ts.
  it('refuses a file over 1 MiB with that one error, without reading its YAML', () => {
    // Parsed, this text would also give an unknown key and an unclosed sequence.
    const text = `name: big\nsteps:\n  a: { image: busybox, run: x, bogus: 1 }\n  b: [\n# ${'x'.repeat(MAX_PIPELINE_BYTES)}\n`;
    const { pipeline, errors } = parsePipeline(text, '.trainyard/big.yaml');
    expect(pipeline).toBeUndefined();
    expect(errors.map(formatPipelineError)).toEqual([
      '.trainyard/big.yaml:1:1: the file is 1025 KiB; pipeline files may be at most 1024 KiB',
    ]);
  });

  it('counts bytes, not characters', () => {
    const text = `name: wide\nsteps:\n  a: { image: busybox, run: x }\n# ${'é'.repeat(MAX_PIPELINE_BYTES / 2)}\n`;
    expect(text.length).toBeLessThan(MAX_PIPELINE_BYTES);
    expect(parsePipeline(text, 'wide.yaml').errors[0]!.message).toMatch(/may be at most 1024 KiB/);
  });

  it('refuses a billion-laughs file before expanding it, naming the first alias over the limit', () => {
    const levels = ['a: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i <= 12; i++)
      levels.push(`l${i}: &l${i} [${Array.from({ length: 10 }, () => `*l${i - 1}`).join(',')}]`);
    const text = `name: lol\n${levels.join('\n')}\nsteps:\n  a: { image: busybox, run: x, env: { X: *l12 } }\n`;
    const { pipeline, errors } = parsePipeline(text, 'lol.yaml');
    expect(pipeline).toBeUndefined();
    // The 17th alias is the 7th on the line of l2 (line 4): `l2: &l2 [` is 9 characters, each `*l1,` 4.
    expect(errors.map(formatPipelineError)).toEqual([
      'lol.yaml:4:34: the file uses more than 16 YAML aliases (*name); Trainyard refuses it to guard against alias bombs',
    ]);
  });

  it('accepts up to 16 aliases and follows them where values are read', () => {
    const uses = Array.from({ length: 16 }, (_, i) => `  s${i}: { image: *img, run: x }`).join('\n');
    const { pipeline, errors } = parsePipeline(
      `name: ok\nsteps:\n  first: { image: &img busybox, run: x }\n${uses}\n`,
      'ok.yaml',
    );
    expect(errors).toEqual([]);
    expect(Object.values(pipeline!.steps).map((s) => s.image)).toEqual(Array(17).fill('busybox'));
  });

  it('reports an alias to an anchor that does not exist', () => {
    const { pipeline, errors } = parsePipeline('name: a\nsteps:\n  s: { image: *img, run: x }\n', 'a.yaml');
    expect(pipeline).toBeUndefined();
    expect(errors.map(formatPipelineError)).toEqual([
      'a.yaml:3:15: the alias *img refers to no anchor &img defined before it',
    ]);
  });

  it('refuses nesting deep enough to exhaust the stack, without throwing', () => {
    const text = `name: deep\nsteps: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`;
    const { pipeline, errors } = parsePipeline(text, 'deep.yaml');
    expect(pipeline).toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toBe('the file is nested too deeply to read');
  });

  it('caps a flood of errors with a last line saying so', () => {
    const steps = Array.from({ length: 150 }, (_, i) => `  s${i}: { image: busybox, run: x, bogus: 1 }`).join('\n');
    const { errors } = parsePipeline(`name: flood\nsteps:\n${steps}\n`, 'flood.yaml');
    expect(errors).toHaveLength(101);
    expect(errors[99]!.message).toBe(
      'unknown key "bogus" in step "s99"; the keys allowed here are image, run, code, env, secrets, inputs, outputs, needs, machine, timeout, retries, cache, cache_version, params',
    );
    expect(errors[100]!.message).toBe('too many errors; only the first 100 are shown');
  });

  it('never lets __proto__ through as a name', () => {
    const { errors } = parsePipeline(
      'name: p\nparams:\n  __proto__: { type: integer }\nsteps:\n  a: { image: busybox, run: x }\n',
      'p.yaml',
    );
    expect(errors.map(formatPipelineError)).toEqual([
      'p.yaml:3:3: parameter name "__proto__" is not allowed; names start with a letter or "_" and contain only letters, digits, "_" and "-" (at most 64 characters)',
    ]);
  });
});
