#!/usr/bin/env node
// Compiles the CLI's TypeScript (app/, activities/, workflows/, model/, pipeline/) to JavaScript in
// .build/ (ignored by git), so `trainyard` starts without transpiling at every call; setup.sh
// runs it. bin/trainyard.js uses the build only while .build/stamp.json still matches every
// source file (path, size, mtime) and falls back to the sources through tsx otherwise: a
// fresh clone without a build, or a checkout edited since, runs exactly its sources.
//
// Each file is transformed on its own (esbuild, no bundling), so lazy `import()`s stay lazy.
// `import.meta.url` is replaced by the source file's URL: paths a module finds next to itself
// (templates/, deploy/, workflows/index.ts for the workflow bundler, guard.mjs) are the
// checkout's own.
//   node bin/build.js        build (about a second); prints what it did
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUILD, ROOT, sourceStamp } from './buildstamp.js';

/**
 * Builds `root`/.build from the sources there; returns how many files. Throws when esbuild is
 * missing or a file does not compile (the previous build, if any, is then left as it was).
 */
export async function buildCompiled(root = ROOT) {
  const esbuild = await import('esbuild').catch(() => {
    throw new Error('esbuild is missing (run `npm ci`; tsx brings it)');
  });
  const stamp = sourceStamp(root);
  const dest = join(root, BUILD);
  // Built beside the final folder, then swapped in: a CLI starting meanwhile sees the old build or the new one.
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await Promise.all(
      Object.keys(stamp.files).map(async (rel) => {
        const src = join(root, rel);
        let out = await readFile(src, 'utf8');
        let outRel = rel;
        if (rel.endsWith('.ts')) {
          outRel = rel.replace(/\.ts$/, '.js');
          out = (
            await esbuild.transform(out, {
              loader: 'ts',
              format: 'esm',
              platform: 'node',
              target: 'node20',
              sourcemap: 'inline',
              sourcefile: src,
              // The expression, not its text: a string that mentions it (a banner) stays as it is.
              define: { 'import.meta.url': JSON.stringify(pathToFileURL(src).href) },
            })
          ).code;
        }
        await mkdir(dirname(join(tmp, outRel)), { recursive: true });
        await writeFile(join(tmp, outRel), out);
      }),
    );
    // The stamp last: a build that did not finish is never taken for current.
    await writeFile(join(tmp, 'package.json'), '{ "type": "module", "private": true }\n');
    await writeFile(join(tmp, 'stamp.json'), `${JSON.stringify(stamp)}\n`);
    await rm(dest, { recursive: true, force: true });
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return Object.keys(stamp.files).length;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = performance.now();
  try {
    const n = await buildCompiled();
    process.stdout.write(
      `trainyard build: ${n} files compiled to ${BUILD}/ in ${Math.round(performance.now() - t0)} ms\n`,
    );
  } catch (err) {
    process.stderr.write(`trainyard build: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
