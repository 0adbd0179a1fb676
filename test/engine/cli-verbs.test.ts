// The verbs of `trainyard` as a user types them: --help, --version, usage errors, shell
// completion, and runs / status / cancel / logs / get against the real Temporal server of
// the test run and podman.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { removeContainers } from '../../activities/container/run.js';
import { ensureTestImages } from '../fixtures/images/images.js';
import { temporalAddress } from '../setup/services.js';
import { BUSYBOX_IMAGE, GitRepo } from './harness.js';
import { REPO_ROOT, startTrainyard, waitUntil, type TrainyardProcess } from './processes.js';

const root = mkdtempSync(join(process.env.TRAINYARD_TEST_SCRATCH ?? tmpdir(), 'cli-verbs-'));
const home = join(root, 'home');
const salt = randomBytes(3).toString('hex');
const BIN = join(REPO_ROOT, 'bin', 'trainyard.js');
const VERBS = [
  'run',
  'validate',
  'explain',
  'lineage',
  'init',
  'runs',
  'status',
  'cancel',
  'logs',
  'get',
  'worker',
  'agent',
  'serve',
  'completion',
];
const commands: TrainyardProcess[] = [];
const pipelines: string[] = [];

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    TEMPORAL_ADDRESS: temporalAddress(),
    TRAINYARD_HOME: home,
    TRAINYARD_STORE: join(home, 'store'),
    ...extra,
  };
}

function trainyard(args: string[], extra: Record<string, string> = {}, nodeArgs: string[] = []) {
  const r = spawnSync(process.execPath, [...nodeArgs, BIN, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: env(extra),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Like trainyard(), without blocking this process (the event loop keeps serving the started runs' output). */
function trainyardAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function project(steps: string): { repo: GitRepo; name: string } {
  const name = `verbs-${salt}-${pipelines.length}`;
  pipelines.push(name);
  const repo = new GitRepo(root).write({ [`.trainyard/${name}.yaml`]: `name: ${name}\nsteps:\n${steps}` });
  repo.commit();
  return { repo, name };
}

beforeAll(async () => {
  await ensureTestImages();
});
afterAll(async () => {
  for (const c of commands) c.child.kill('SIGKILL');
  const cli = await resolveContainerCli(process.env);
  for (const name of pipelines) await removeContainers(cli, { 'trainyard.pipeline': name });
  rmSync(root, { recursive: true, force: true });
});

describe('help, version, usage errors and completion', () => {
  it('--help lists every verb and loads neither Temporal, the AWS SDK nor Probot', () => {
    const trace = join(root, 'help-imports.txt');
    const r = trainyard(['--help'], { TRAINYARD_IMPORT_TRACE: trace }, [
      '--import',
      join(REPO_ROOT, 'test', 'fixtures', 'import-trace.mjs'),
    ]);
    expect(r.code).toBe(0);
    for (const v of VERBS) expect(r.stdout).toMatch(new RegExp(`^  ${v}\\b`, 'm'));
    const loaded = readFileSync(trace, 'utf8');
    expect(loaded).toContain('commander');
    expect(loaded).not.toMatch(/@temporalio|@aws-sdk|probot|@octokit/);
    // The same trace sees them where a verb needs them: the check above can fail.
    const runsTrace = join(root, 'runs-imports.txt');
    expect(
      trainyard(['runs'], { TRAINYARD_IMPORT_TRACE: runsTrace, TEMPORAL_ADDRESS: '' }, [
        '--import',
        join(REPO_ROOT, 'test', 'fixtures', 'import-trace.mjs'),
      ]).code,
    ).toBe(0);
    expect(readFileSync(runsTrace, 'utf8')).toMatch(/@temporalio/);
  });

  it('every verb answers --help with its usage and exit 0; --version prints the package version', () => {
    for (const v of VERBS) {
      const r = trainyard([v, '--help']);
      expect(r.code, v).toBe(0);
      expect(r.stdout, v).toContain(`Usage: trainyard ${v}`);
    }
    expect(trainyard(['logs', '--help']).stdout).toContain('-f, --follow');
    expect(trainyard(['get', '--help']).stdout).toContain('-o, --output <path>');
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(trainyard(['--version']).stdout.trim()).toBe(version);
  });

  it('an unknown verb, an unknown option or a missing argument is a usage error: exit 2, said on stderr', () => {
    const verb = trainyard(['trian']);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toContain("trainyard: unknown command 'trian'");
    const opt = trainyard(['runs', '--colour']);
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain("unknown option '--colour'");
    const arg = trainyard(['status']);
    expect(arg.code).toBe(2);
    expect(arg.stderr).toContain("missing required argument 'run'");
    const bad = trainyard(['runs', '--limit', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--limit must be a positive whole number, got lots');
    const none = trainyard([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Usage: trainyard');
  });

  it("completion bash is a valid script that completes verbs and each verb's options", () => {
    const script = trainyard(['completion', 'bash']).stdout;
    const complete = (line: string) =>
      execFileSync(
        'bash',
        [
          '-c',
          `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _trainyard; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n');
    expect(complete('trainyard ru')).toEqual(expect.arrayContaining(['run', 'runs']));
    expect(complete("trainyard logs run-1 train '-'")).toEqual(expect.arrayContaining(['--follow', '-f', '--help']));
    expect(complete('trainyard run --no-'), 'run --no-').toEqual(['--no-cache']);
    const zsh = trainyard(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toContain('bashcompinit');
    expect(trainyard(['completion', 'fish']).code).toBe(2);
  });
});

describe('runs, status, cancel, logs and get on real runs', () => {
  it('runs lists a running run, status shows its step, cancel stops it; a second cancel says it already ended', async () => {
    const { repo, name } = project(`  work:\n    image: ${BUSYBOX_IMAGE}\n    run: "echo started; sleep 600"\n`);
    const p = startTrainyard(['run', '-C', repo.path], {
      TEMPORAL_ADDRESS: temporalAddress(),
      TRAINYARD_HOME: home,
      TRAINYARD_STORE: join(home, 'store'),
    });
    commands.push(p);
    const runId = (await p.waitFor(/run (run-\S+): pipeline/))[1]!;
    const listed = await waitUntil(
      'the run in `trainyard runs`',
      async () => {
        const r = await trainyardAsync(['runs', '--json', '--pipeline', name]);
        expect(r.code, r.stderr).toBe(0);
        return (JSON.parse(r.stdout) as { runId: string; status: string; pipeline: string }[]).find(
          (x) => x.runId === runId,
        );
      },
      60_000,
    );
    expect(listed).toMatchObject({ pipeline: name, status: 'RUNNING' });
    const text = await trainyardAsync(['runs', '--pipeline', name]);
    expect(text.stdout).toMatch(new RegExp(`${runId}\\s+${name}\\s+RUNNING`));

    await waitUntil(
      'the step running in `trainyard status`',
      async () => {
        const s = await trainyardAsync(['status', runId, '--json']);
        return (
          s.code === 0 &&
          (JSON.parse(s.stdout) as { steps: { name: string; state: string }[] }).steps.some(
            (x) => x.name === 'work' && x.state === 'running',
          )
        );
      },
      180_000,
    );
    const table = await trainyardAsync(['status', runId]);
    expect(table.stdout).toMatch(/work\s+▶ running/);

    const c = await trainyardAsync(['cancel', runId]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain(`cancel requested for run ${runId}`);
    expect((await p.exited).code).toBe(130);
    const again = await trainyardAsync(['cancel', runId]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('already ended');
    const after = await waitUntil(
      'the cancelled run listed as closed',
      async () => {
        const r = await trainyardAsync(['runs', '--json', '--pipeline', name]);
        const row = (JSON.parse(r.stdout) as { runId: string; status: string; conclusion: string | null }[]).find(
          (x) => x.runId === runId,
        );
        return row && row.status !== 'RUNNING' ? row : undefined;
      },
      60_000,
    );
    expect(after.conclusion).toBe('cancelled');
    expect((await trainyardAsync(['cancel', 'run-nope'])).code).toBe(2);
  });

  it("run --json prints the finished run as one JSON object; logs (--json too) prints a step's output; get downloads an output by run/step/name and by digest, checked, never over an existing path", async () => {
    const { repo, name } = project(
      `  make:\n    image: ${BUSYBOX_IMAGE}\n    run: "echo making-${salt}; echo warning-${salt} >&2; printf 'weights-${salt}' > /outputs/model"\n    outputs: [model]\n`,
    );
    const r = await trainyardAsync(['run', '-C', repo.path, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const runId = /lineage: trainyard lineage (\S+)/.exec(r.stderr)![1]!;
    const digest = `sha256:${createHash('sha256').update(`weights-${salt}`).digest('hex')}`;
    // stdout is the JSON alone (no report); progress went to stderr.
    const ran = JSON.parse(r.stdout) as {
      steps: { durationMs: number | null; finishedAt: string }[];
      reportFile: string;
    };
    expect(ran).toMatchObject({
      runId,
      workflowId: `cli:${name}:${runId}`,
      pipeline: name,
      state: 'succeeded',
      conclusion: 'succeeded',
      costUsd: null,
      lineageKey: `runs/${runId}/lineage`,
      totals: { steps: 1, ran: 1, cached: 0 },
      steps: [{ name: 'make', state: 'succeeded', cached: false, outputs: { model: digest } }],
    });
    expect(ran.steps[0]!.durationMs).toBeGreaterThan(0);
    expect(readFileSync(ran.reportFile, 'utf8')).toContain(runId);
    expect(r.stderr).toMatch(/make\s+✅ succeeded|make: succeeded/);
    // status --json has the same shape for the same run.
    const st = await trainyardAsync(['status', runId, '--json']);
    expect(JSON.parse(st.stdout)).toMatchObject({
      runId,
      state: 'succeeded',
      steps: [{ name: 'make', cached: false, outputs: { model: digest } }],
    });

    const logs = await trainyardAsync(['logs', runId, 'make']);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toContain(`making-${salt}`);
    expect((await trainyardAsync(['logs', runId, 'nosuch'])).stderr).toContain('has no step "nosuch"; its steps: make');
    const nd = await trainyardAsync(['logs', runId, '--json']);
    expect(nd.code, nd.stderr).toBe(0);
    expect(
      nd.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      { step: 'make', attempt: 1, stream: 'stdout', line: `making-${salt}` },
      { step: 'make', attempt: 1, stream: 'stderr', line: `warning-${salt}` },
    ]);

    const dest = join(root, `model-${salt}`);
    const got = await trainyardAsync(['get', runId, 'make', 'model', '-o', dest, '--json']);
    expect(got.code, got.stderr).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe(`weights-${salt}`);
    expect(JSON.parse(got.stdout)).toMatchObject({ digest, kind: 'file', path: dest });

    writeFileSync(dest, 'mine');
    const over = await trainyardAsync(['get', runId, 'make', 'model', '-o', dest]);
    expect(over.code).toBe(2);
    expect(over.stderr).toContain('exists');
    expect(readFileSync(dest, 'utf8')).toBe('mine');

    const byDigest = join(root, `by-digest-${salt}`);
    expect((await trainyardAsync(['get', digest.slice(0, 7 + 16), '-o', byDigest])).code).toBe(0);
    expect(readFileSync(byDigest, 'utf8')).toBe(`weights-${salt}`);

    // A damaged blob in the store: an error, and nothing written.
    const hex = digest.slice(7);
    const blob = join(home, 'store', 'blobs', 'sha256', hex.slice(0, 2), hex);
    expect(existsSync(blob)).toBe(true);
    execFileSync('chmod', ['u+w', blob]);
    writeFileSync(blob, `weights-${salt}-tampered`);
    const damaged = join(root, `damaged-${salt}`);
    const bad = await trainyardAsync(['get', digest, '-o', damaged]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/sha256|digest/i);
    expect(existsSync(damaged)).toBe(false);
    expect(readdirSync(root).filter((f) => f.startsWith(`damaged-${salt}`))).toEqual([]);
  });

  it(
    "diff: this checkout's last run against the default branch's, params that differ above the metrics; named runs too",
    { timeout: 400_000 },
    async () => {
      const name = `verbs-${salt}-diff`;
      pipelines.push(name);
      const repo = new GitRepo(root).write({
        [`.trainyard/${name}.yaml`]: `name: ${name}\nparams:\n  lr: { type: number, default: 0.5 }\nsteps:\n  fit:\n    image: ${BUSYBOX_IMAGE}\n    run: 'echo "{\\"loss\\": $PARAM_LR, \\"acc\\": 0.9}"'\n`,
      });
      repo.commit();
      const onMain = await trainyardAsync(['run', '-C', repo.path, '-q']);
      expect(onMain.code, onMain.stderr).toBe(0);
      const baseRun = /lineage: trainyard lineage (\S+)/.exec(onMain.stderr)![1]!;
      const none = await trainyardAsync(['diff', '-C', repo.path]);
      expect(none.code).toBe(2);
      expect(none.stderr).toContain(`no earlier successful run of ${name} on main`);

      repo.git('switch', '-q', '-c', 'tune');
      const tuned = await trainyardAsync(['run', '-C', repo.path, '-q', '--param', 'lr=0.25']);
      expect(tuned.code, tuned.stderr).toBe(0);
      const headRun = /lineage: trainyard lineage (\S+)/.exec(tuned.stderr)![1]!;
      const d = await trainyardAsync(['diff', '-C', repo.path]);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toContain(`${headRun} (`);
      expect(d.stdout).toContain(`vs base ${baseRun}`);
      expect(d.stdout).toContain('params that differ:\n  lr: 0.5 -> 0.25');
      expect(d.stdout).toMatch(/^fit\.loss\s+0\.25\s+0\.5\s+-0\.25 \(-50\.0%\)$/m);
      expect(d.stdout).toMatch(/^fit\.acc\s+0\.9\s+0\.9\s+0$/m);
      const named = await trainyardAsync(['diff', baseRun, headRun, '--json']);
      expect(named.code, named.stderr).toBe(0);
      expect(JSON.parse(named.stdout)).toMatchObject({
        head: { runId: baseRun },
        base: { runId: headRun },
        params: [{ name: 'lr', head: 0.5, base: 0.25 }],
      });
      expect((await trainyardAsync(['diff', 'run-nope', headRun])).stderr).toContain('no run "run-nope"');
    },
  );

  it(
    "logs -f prints a running step's output while it runs and ends when the step ends",
    { timeout: 400_000 },
    async () => {
      const { repo } = project(
        `  work:\n    image: ${BUSYBOX_IMAGE}\n    run: "echo tick-1-${salt}; sleep 25; echo tick-2-${salt}"\n`,
      );
      const p = startTrainyard(['run', '-C', repo.path], {
        TEMPORAL_ADDRESS: temporalAddress(),
        TRAINYARD_HOME: home,
        TRAINYARD_STORE: join(home, 'store'),
      });
      commands.push(p);
      const id = (await p.waitFor(/run (run-\S+): pipeline/))[1]!;
      const follow = startTrainyard(['logs', id, 'work', '-f'], {
        TEMPORAL_ADDRESS: temporalAddress(),
        TRAINYARD_HOME: home,
        TRAINYARD_STORE: join(home, 'store'),
      });
      const followJson = startTrainyard(['logs', id, 'work', '-f', '--json'], {
        TEMPORAL_ADDRESS: temporalAddress(),
        TRAINYARD_HOME: home,
        TRAINYARD_STORE: join(home, 'store'),
      });
      commands.push(follow, followJson);
      await follow.waitFor(new RegExp(`tick-1-${salt}`), 180_000);
      await followJson.waitFor(new RegExp(`tick-1-${salt}`), 180_000);
      let runEnded = false;
      void p.exited.then(() => (runEnded = true));
      expect(runEnded).toBe(false);
      expect(follow.output()).not.toContain(`tick-2-${salt}`);
      expect((await follow.exited).code).toBe(0);
      expect(follow.output()).toContain(`tick-2-${salt}`);
      expect((await followJson.exited).code).toBe(0);
      const records = followJson
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as unknown);
      expect(records).toEqual([
        { step: 'work', attempt: 1, stream: 'stdout', line: `tick-1-${salt}` },
        { step: 'work', attempt: 1, stream: 'stdout', line: `tick-2-${salt}` },
      ]);
      expect((await p.exited).code).toBe(0);
    },
  );
});
