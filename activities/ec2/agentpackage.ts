// The runner agent package: what an EC2 host (or any host without a checkout) installs to
// run `trainyard agent`. Nobody publishes Trainyard to npm, so the package is built from
// this installation's own code, kept in the artifact store by its SHA-256 like any other
// blob, and fetched by the host with its own credentials (templates/cloud-init/install-agent.sh
// verifies the digest). A control worker publishes its package on start when EC2 is on.
//
// Layout of the .tar.gz (one top folder, `trainyard-agent/`):
//   bin/trainyard             sh wrapper: node lib/trainyard.mjs "$@"
//   bin/trainyard-pod-agent   sh wrapper: node lib/trainyard-pod-agent.mjs "$@"
//   lib/trainyard.mjs         the CLI (app/cli.ts) bundled with esbuild; no workflow bundler
//   lib/trainyard-pod-agent.mjs   the Kubernetes pod agent (app/podagent.ts)
//   lib/workflow-worker-thread.js the Temporal worker's workflow thread (for `trainyard worker`)
//   lib/mappings.wasm         source-map's decoder, read next to the bundle
//   lib/releases/<target>/index.node  the Temporal Core bridge for linux x64 and arm64
//   package.json              name, version
// It needs Node.js >= 20 on the host and nothing from a package registry. The bytes are
// reproducible: the same sources and dependencies give the same digest (sorted names,
// fixed times and owners, gzip without a timestamp), so every worker of one version
// publishes the same blob once.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ArtifactStore } from '../store/types.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** The Core bridge builds a Linux host may need (the EC2 AMIs are x86_64 or arm64). */
export const BRIDGE_TARGETS = ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu'] as const;

/** Record key of the package published for a version: `agent/package/<version>.json`. */
export const packageRecordKey = (version: string): string => `agent/package/${version}.json`;

/** Where a host finds its agent package: an s3:// (or https://) URL and the SHA-256 (64 hex) it must have. */
export interface AgentPackageRef {
  uri: string;
  sha256: string;
  version: string;
}

export class AgentPackageError extends Error {
  override name = 'AgentPackageError';
}

/** The version in this checkout's package.json. */
export async function trainyardVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version?: string };
  if (!pkg.version) throw new AgentPackageError(`${join(REPO, 'package.json')} has no version`);
  return pkg.version;
}

const WRAPPER = (entry: string): string => `#!/bin/sh
# Runs ${entry} with the node on PATH (Node.js >= 20); works through a symbolic link.
here=$(dirname "$(dirname "$(readlink -f "$0")")")
exec node "$here/lib/${entry}" "$@"
`;

// The bundled CLI has no webpack: \`trainyard worker\` needs the workflow bundle built
// ahead (TRAINYARD_WORKFLOW_BUNDLE, see the container image), the agent never bundles.
const BUNDLER_STUB = `
const no = () => { throw new Error('this build of trainyard cannot bundle workflows: set TRAINYARD_WORKFLOW_BUNDLE to a prebuilt bundle (the container image does)'); };
exports.bundleWorkflowCode = no;
exports.WorkflowCodeBundler = class { constructor() { no(); } };
exports.moduleMatches = () => false;
exports.defaultWorkflowInterceptorModules = [];
exports.allowedBuiltinModules = [];
exports.disallowedBuiltinModules = [];
exports.disallowedModules = [];
`;

// ESM output with the CommonJS names bundled CJS modules use (the Core bridge finds its
// index.node next to __dirname).
const BANNER = [
  'import { createRequire as __tyRequire } from "node:module";',
  'import { fileURLToPath as __tyPath } from "node:url";',
  'import { dirname as __tyDir } from "node:path";',
  'const require = __tyRequire(import.meta.url);',
  'const __filename = __tyPath(import.meta.url);',
  'const __dirname = __tyDir(__filename);',
].join(' ');

/**
 * Builds the agent package of this checkout into `outFile` (a .tar.gz) and returns its
 * SHA-256 (hex). Needs esbuild (installed with tsx) and GNU tar and gzip on PATH; throws
 * AgentPackageError naming what is missing or what failed.
 */
export async function buildAgentPackage(
  outFile: string,
): Promise<{ file: string; sha256: string; version: string; bytes: number }> {
  const version = await trainyardVersion();
  const work = await mkdtemp(join(tmpdir(), 'trainyard-agent-pkg-'));
  try {
    const top = join(work, 'trainyard-agent');
    await mkdir(join(top, 'bin'), { recursive: true });
    await mkdir(join(top, 'lib'), { recursive: true });
    const esbuild = await import('esbuild').catch(() => {
      throw new AgentPackageError('esbuild is missing: run `npm ci` (tsx brings it)');
    });
    const stubBundler = {
      name: 'no-workflow-bundler',
      setup(b: import('esbuild').PluginBuild) {
        b.onResolve({ filter: /\/workflow\/bundler$/ }, (a) =>
          a.importer.includes('/@temporalio/worker/')
            ? { path: 'bundler-stub', namespace: 'trainyard-stub' }
            : undefined,
        );
        b.onLoad({ filter: /.*/, namespace: 'trainyard-stub' }, () => ({ contents: BUNDLER_STUB, loader: 'js' }));
      },
    };
    await esbuild.build({
      entryPoints: { trainyard: join(REPO, 'app/cli.ts'), 'trainyard-pod-agent': join(REPO, 'app/podagent.ts') },
      outdir: join(top, 'lib'),
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      banner: { js: BANNER },
      plugins: [stubBundler],
      logLevel: 'error',
      legalComments: 'none',
    });
    // The Temporal worker starts its workflow threads from a file next to the CLI
    // (require.resolve('./workflow-worker-thread')): bundled on its own, as CommonJS.
    const workerLib = dirname(createRequire(join(REPO, 'package.json')).resolve('@temporalio/worker'));
    await esbuild.build({
      entryPoints: [join(workerLib, 'workflow', 'workflow-worker-thread.js')],
      outfile: join(top, 'lib', 'workflow-worker-thread.js'),
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      logLevel: 'error',
      legalComments: 'none',
    });
    // source-map (the worker's stack traces) reads its wasm next to __dirname.
    const sourceMap = dirname(createRequire(join(workerLib, 'index.js')).resolve('source-map/package.json'));
    await copyFile(join(sourceMap, 'lib', 'mappings.wasm'), join(top, 'lib', 'mappings.wasm'));
    const bridge = dirname(createRequire(join(workerLib, 'index.js')).resolve('@temporalio/core-bridge/package.json'));
    for (const target of BRIDGE_TARGETS) {
      await mkdir(join(top, 'lib', 'releases', target), { recursive: true });
      await copyFile(
        join(bridge, 'releases', target, 'index.node'),
        join(top, 'lib', 'releases', target, 'index.node'),
      ).catch((e: Error) => {
        throw new AgentPackageError(`the Temporal Core bridge for ${target} is missing (${e.message}): run \`npm ci\``);
      });
    }
    for (const name of ['trainyard', 'trainyard-pod-agent']) {
      await writeFile(join(top, 'bin', name), WRAPPER(`${name}.mjs`));
      await chmod(join(top, 'bin', name), 0o755);
    }
    await writeFile(
      join(top, 'package.json'),
      `${JSON.stringify({ name: 'trainyard-agent', version, engines: { node: '>=20' } }, null, 2)}\n`,
    );
    const out = resolve(outFile);
    await mkdir(dirname(out), { recursive: true });
    try {
      await run(
        'tar',
        [
          '--sort=name',
          '--mtime=@0',
          '--owner=0',
          '--group=0',
          '--numeric-owner',
          '--mode=go-w,a+rX',
          '--format=gnu',
          '--use-compress-program=gzip -n',
          '-C',
          work,
          '-cf',
          out,
          'trainyard-agent',
        ],
        { maxBuffer: 1 << 20 },
      );
    } catch (e) {
      throw new AgentPackageError(`tar failed (GNU tar and gzip are needed): ${(e as Error).message}`);
    }
    const { sha256, bytes } = await digestFile(out);
    return { file: out, sha256, version, bytes };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function digestFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/**
 * Puts the package into `store` (a no-op when a blob with its digest is there already) and
 * records it under packageRecordKey(version). `file` is a package built ahead (the
 * container image has one, TRAINYARD_AGENT_PACKAGE_FILE); without it the package is built
 * from this checkout first. Throws AgentPackageError, or the store's error.
 */
export async function publishAgentPackage(
  store: ArtifactStore,
  opts: { file?: string } = {},
): Promise<AgentPackageRef> {
  let file = opts.file;
  let scratch: string | undefined;
  try {
    if (!file) {
      scratch = await mkdtemp(join(tmpdir(), 'trainyard-agent-out-'));
      file = (await buildAgentPackage(join(scratch, 'trainyard-agent.tar.gz'))).file;
    }
    const { sha256 } = await digestFile(file).catch((e: Error) => {
      throw new AgentPackageError(`TRAINYARD_AGENT_PACKAGE_FILE: cannot read ${file}: ${e.message}`);
    });
    const ref = await store.putPath(file);
    if (ref.digest !== `sha256:${sha256}`)
      throw new AgentPackageError(`the store recorded ${ref.digest} for a package whose SHA-256 is ${sha256}`);
    const version = opts.file ? await versionInside(file) : await trainyardVersion();
    const published: AgentPackageRef = { uri: store.uriOf(ref.digest), sha256, version };
    await store.putRecord(packageRecordKey(version), { ...published, publishedAt: new Date().toISOString() });
    return published;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** The version in a package's package.json (read with tar, without unpacking the rest). */
async function versionInside(file: string): Promise<string> {
  try {
    const { stdout } = await run('tar', ['-xzOf', file, 'trainyard-agent/package.json'], { maxBuffer: 1 << 20 });
    const v = (JSON.parse(stdout) as { version?: unknown }).version;
    if (typeof v === 'string' && v) return v;
  } catch {
    // fall through
  }
  throw new AgentPackageError(
    `TRAINYARD_AGENT_PACKAGE_FILE: ${file} is not a trainyard agent package (no trainyard-agent/package.json with a version)`,
  );
}
