// Rules the tools enforce, run by `npm test` so CI holds them (issue 9): ESLint
// (eslint.config.js: type-aware no-floating-promises, the layer import rules, workflow
// determinism) and Prettier (.prettierrc.json: 120 columns). Each rule is also shown to fire on a
// probe, so a rule that silently stopped matching fails here.
import { readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
let eslint: ESLint;
let project: ESLint.LintResult[];

beforeAll(async () => {
  eslint = new ESLint({ cwd: ROOT });
  // Type-aware linting of the whole project: about a minute of CPU, so once per file.
  project = await eslint.lintFiles(['.']);
}, 600_000);

/** Errors ESLint gives for `code` as if it were the file at `rel` (an existing file, so the type-aware rules see it in the project). */
async function probe(rel: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, rel) });
  return (result?.messages ?? []).filter((m) => m.severity === 2).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('eslint', () => {
  it('reports no error anywhere in the project', () => {
    const errors = project.flatMap((r) =>
      r.messages
        .filter((m) => m.severity === 2)
        .map((m) => `${r.filePath.slice(ROOT.length + 1)}:${m.line}:${m.column} ${m.ruleId ?? 'parse'}: ${m.message}`),
    );
    expect(project.length).toBeGreaterThan(100);
    expect(errors).toEqual([]);
  });

  it('refuses an import of app/ from activities/ (lower layers never import upper ones)', async () => {
    expect(
      await probe('activities/usertext.ts', "import { main } from '../app/cli.js';\nexport const x = main;\n"),
    ).toEqual([expect.stringContaining('activities/ and workflows/ never import app/')]);
    expect(await probe('activities/usertext.ts', "export const x = () => import('../app/cli.js');\n")).toEqual([
      expect.stringContaining('never import app/'),
    ]);
  });

  it('refuses process.env below app/ (app/ reads the environment and passes typed values down)', async () => {
    const noEnv = expect.stringContaining('no process.env below app/');
    expect(await probe('activities/usertext.ts', 'export const x = process.env.HOME;\n')).toEqual([noEnv]);
    expect(await probe('activities/store/s3config.ts', "export const x = process.env['HOME'];\n")).toEqual([noEnv]);
    expect(await probe('pipeline/types.ts', 'const { env } = process;\nexport const x = env;\n')).toEqual([noEnv]);
    expect(await probe('activities/usertext.ts', 'export const x = process.pid;\n')).toEqual([]);
  });

  it('refuses any other layer in pipeline/', async () => {
    expect(
      await probe('pipeline/types.ts', "import { x } from '../activities/usertext.js';\nexport const y = x;\n"),
    ).toEqual([expect.stringContaining('pipeline/ (the file format) imports no other layer')]);
  });

  it('lets workflows/ name activity types but not load activity code, Node built-ins or non-deterministic globals', async () => {
    const file = 'workflows/openlineage.ts';
    expect(
      await probe(
        file,
        "import type { RunnerDeps } from '../activities/runner/runstep.js';\nexport type X = RunnerDeps;\n",
      ),
    ).toEqual([]);
    expect(
      await probe(
        file,
        "import { createRunStep } from '../activities/runner/runstep.js';\nexport const x = createRunStep;\n",
      ),
    ).toEqual([expect.stringContaining('names activity types only')]);
    expect(await probe(file, "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toEqual([
      expect.stringContaining('no Node built-ins'),
    ]);
    expect(
      await probe(file, "import { Connection } from '@temporalio/client';\nexport const x = Connection;\n"),
    ).toEqual([expect.stringContaining('only @temporalio/workflow and @temporalio/common')]);
    expect(await probe(file, 'export const x = process.env.HOME;\n')).toEqual([expect.stringContaining('no process')]);
  });

  it('keeps model/ a leaf: pipeline/ types only, no other layer, deterministic code', async () => {
    const file = 'model/bounds.ts';
    expect(
      await probe(file, "import type { Pipeline } from '../pipeline/types.js';\nexport type X = Pipeline;\n"),
    ).toEqual([]);
    for (const layer of ['../activities/usertext.js', '../workflows/openlineage.js', '../app/cli.js']) {
      expect(await probe(file, `import type { X } from '${layer}';\nexport type Y = X;\n`)).toEqual([
        expect.stringContaining('model/ (the shared data types) is a leaf'),
      ]);
    }
    expect(
      await probe(file, "import { parsePipeline } from '../pipeline/parse.js';\nexport const x = parsePipeline;\n"),
    ).toEqual([expect.stringContaining('model/ names pipeline/ types only')]);
    expect(await probe(file, "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toEqual([
      expect.stringContaining('no Node built-ins'),
    ]);
    expect(await probe(file, 'export const x = () => setTimeout(() => undefined, 1);\n')).toEqual([
      expect.stringContaining('no setTimeout'),
    ]);
  });

  it('keeps pipeline/ below model/', async () => {
    expect(
      await probe(
        'pipeline/types.ts',
        "import type { RunInput } from '../model/types.js';\nexport type X = RunInput;\n",
      ),
    ).toEqual([expect.stringContaining('pipeline/ (the file format) imports no other layer')]);
  });

  it('refuses a floating promise', async () => {
    const code = 'async function f(): Promise<void> {}\nexport function g(): void {\n  f();\n}\n';
    expect(await probe('activities/usertext.ts', code)).toEqual([expect.stringContaining('no-floating-promises')]);
  });
});

describe('prettier', () => {
  it('every source file is formatted (`npx prettier --write .` fixes it)', async () => {
    const config = await prettier.resolveConfig(join(ROOT, 'package.json'));
    const unformatted: string[] = [];
    for (const { filePath } of project) {
      if ((await prettier.getFileInfo(filePath, { ignorePath: join(ROOT, '.prettierignore') })).ignored) continue;
      const ok = await prettier.check(readFileSync(filePath, 'utf8'), { ...config, filepath: filePath });
      if (!ok) unformatted.push(filePath.slice(ROOT.length + 1));
    }
    expect(unformatted).toEqual([]);
  });
});
