import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPipelineTexts, loadPipelines } from '../../pipeline/load.js';
import { formatPipelineError } from '../../pipeline/parse.js';

const here = dirname(fileURLToPath(import.meta.url));
const step = 'steps:\n  a: { image: busybox, run: x }\n';

describe('loadPipelines', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'pipelines-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const write = (name: string, text: string) => {
    mkdirSync(join(root, '.trainyard'), { recursive: true });
    writeFileSync(join(root, '.trainyard', name), text);
  };

  it('finds nothing in a project without .trainyard', async () => {
    expect(await loadPipelines(root)).toEqual({ pipelines: [], errors: [] });
  });

  it('reads .yaml and .yml files in name order and ignores the rest', async () => {
    write('mnist.yaml', readFileSync(join(here, 'valid/mnist.yaml'), 'utf8'));
    write('b.yml', `name: b\n${step}`);
    write('README.md', '# not a pipeline');
    mkdirSync(join(root, '.trainyard', 'sub.yaml'));
    const { pipelines, errors } = await loadPipelines(root);
    expect(errors).toEqual([]);
    expect(pipelines.map((p) => [p.name, p.file])).toEqual([
      ['b', '.trainyard/b.yml'],
      ['mnist', '.trainyard/mnist.yaml'],
    ]);
  });

  it('keeps good pipelines and reports every broken file', async () => {
    write('good.yaml', `name: good\n${step}`);
    write('bad.yaml', `name: bad\nsteps:\n  a: { imgae: busybox, run: x }\n`);
    write('worse.yaml', `name: worse\n`);
    const { pipelines, errors } = await loadPipelines(root);
    expect(pipelines.map((p) => p.name)).toEqual(['good']);
    expect(errors.map(formatPipelineError)).toEqual([
      '.trainyard/bad.yaml:3:3: step "a" is missing the required key "image"',
      '.trainyard/bad.yaml:3:8: unknown key "imgae" in step "a"; did you mean "image"?',
      '.trainyard/worse.yaml:1:1: the pipeline is missing the required key "steps"',
    ]);
  });

  it('reports two files that declare the same pipeline', async () => {
    write('twin.yaml', `name: twin\n${step}`);
    write('twin.yml', `name: twin\n${step}`);
    const { pipelines, errors } = await loadPipelines(root);
    expect(pipelines.map((p) => p.file)).toEqual(['.trainyard/twin.yaml']);
    expect(errors.map(formatPipelineError)).toEqual([
      '.trainyard/twin.yml:1:1: pipeline "twin" is already defined in .trainyard/twin.yaml; each pipeline name may be used once',
    ]);
  });

  it('refuses a huge file without reading it all, and text that is not UTF-8', async () => {
    write('huge.yaml', `name: huge\n${step}#${'x'.repeat(10 * 1024 * 1024)}\n`);
    write('latin1.yaml', Buffer.from('name: latin1\n# caf\xe9\n' + step, 'latin1') as unknown as string);
    const { errors } = await loadPipelines(root);
    expect(errors.map(formatPipelineError)).toEqual([
      '.trainyard/huge.yaml:1:1: the file is larger than 1024 KiB, the limit for a pipeline file',
      '.trainyard/latin1.yaml:1:1: the file is not valid UTF-8 text',
    ]);
  });

  it('digests the exact bytes, byte-order mark included', async () => {
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`name: bom\n${step}`)]);
    write('bom.yaml', bytes as unknown as string);
    const { pipelines, errors } = await loadPipelines(root);
    expect(errors).toEqual([]);
    const { createHash } = await import('node:crypto');
    expect(pipelines[0]!.digest).toBe(`sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  });

  it('follows links inside the project but not out of it, and skips FIFOs', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'outside-'));
    try {
      writeFileSync(join(outside, 'secret.yaml'), `name: secret\n${step}`);
      writeFileSync(join(root, 'shared.yaml'), `name: inside\n${step}`);
      mkdirSync(join(root, '.trainyard'));
      symlinkSync(join(outside, 'secret.yaml'), join(root, '.trainyard', 'secret.yaml'));
      symlinkSync('../shared.yaml', join(root, '.trainyard', 'inside.yaml'));
      execFileSync('mkfifo', [join(root, '.trainyard', 'pipe.yaml')]);
      const { pipelines, errors } = await loadPipelines(root);
      expect(pipelines.map((p) => p.name)).toEqual(['inside']);
      expect(errors.map(formatPipelineError)).toEqual([
        '.trainyard/pipe.yaml:1:1: this is not a regular file',
        '.trainyard/secret.yaml:1:1: the file is a link to somewhere outside the project; pipeline files must live in the project',
      ]);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('loadPipelineTexts', () => {
  it('parses fetched contents in file order and checks names across files', () => {
    const { pipelines, errors } = loadPipelineTexts([
      { file: '.trainyard/z.yaml', text: `name: z\n${step}` },
      { file: '.trainyard/a.yaml', text: `name: a\n${step}` },
      { file: '.trainyard/b.yaml', text: `name: c\n${step}` },
    ]);
    expect(pipelines.map((p) => p.name)).toEqual(['a', 'z']);
    expect(errors.map(formatPipelineError)).toEqual([
      '.trainyard/b.yaml:1:7: pipeline name "c" does not match its file name "b.yaml"; the name must be the file name without .yaml',
    ]);
  });
});
