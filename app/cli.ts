// The `trainyard` command: verbs, options and help on commander (a well-kept argument
// library: --help on every verb, --version, usage errors). Startup stays cheap: this module
// imports commander and Node built-ins only, and each verb loads its own modules inside its
// action, so `trainyard --help` loads neither Temporal nor the AWS SDK nor Probot.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Argument, Command, CommanderError, Option } from 'commander';
import { completionScript } from './local/completion.js';
import { UsageError } from './local/errors.js';

const ENVIRONMENT_HELP = `
Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TRAINYARD_STORE (path or s3://bucket/prefix),
TRAINYARD_CONTAINER_CLI (docker|podman), TRAINYARD_PARALLELISM, TRAINYARD_WORK_DIR, TRAINYARD_LOG_LEVEL,
TRAINYARD_CONTROL_QUEUE (trainyard), TRAINYARD_LOCAL_QUEUE (trainyard-local),
TRAINYARD_HEALTH_PORT (worker and agent answer GET /healthz and GET /metrics there),
TRAINYARD_TEMPORAL_METRICS_PORT (the Temporal SDK's Prometheus metrics). Every setting: docs/ and trainyard doctor.
Exit codes: 0 success, 1 failure (a failed run, invalid pipelines), 2 usage or setup error, 130 cancelled.`;

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function positiveInt(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, got ${v}`);
    return n;
  };
}

const jsonOption = (): Option => new Option('--json', 'print JSON instead of text');

/**
 * The command tree. `setCode` receives each action's exit code. Exported so that shell
 * completion and the tests see exactly the verbs and options the CLI has.
 */
export function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('trainyard')
    .description(
      'GitOps ML pipelines: .trainyard/*.yaml run as durable Temporal workflows of containers, cached by content digest',
    )
    .version(VERSION, '-V, --version', 'print the version')
    .helpCommand('help [command]', 'help for a command')
    .addHelpText('after', ENVIRONMENT_HELP)
    .showHelpAfterError('(trainyard --help lists every verb; trainyard VERB --help its options)')
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(str.startsWith('error: ') ? `trainyard: ${str.slice('error: '.length)}` : str),
    });

  program
    .command('run')
    .description(
      'Run a pipeline of this checkout (HEAD, plus uncommitted changes to tracked files) on this machine and print its lineage report. Exit 0 success, 1 failure, 130 cancelled.',
    )
    .option('-C, --dir <dir>', 'project folder (or a folder inside it)', '.')
    .option('-p, --pipeline <name>', 'the pipeline to run when there are several')
    .option('--param <k=v>', 'a parameter value (repeatable)', collect, [])
    .option('--no-cache', 'run every step again (results are still recorded)')
    .option('--parallelism <n>', 'most steps running at once', positiveInt('--parallelism'))
    .option('--report <file>', 'also write the report here')
    .option('-q, --quiet', 'no live table, no report on stdout')
    .addOption(
      new Option(
        '--json',
        "at the end, print the run (status --json's shape, with conclusion, cost and report file) as JSON on stdout instead of the report; progress stays on stderr",
      ),
    )
    .action(
      async (o: {
        dir: string;
        pipeline?: string;
        param: string[];
        cache: boolean;
        parallelism?: number;
        report?: string;
        quiet?: boolean;
        json?: boolean;
      }) => {
        // The embedded Temporal server starts first: it gets ready while the rest loads (app/local/embedded.ts).
        const earlyServer = (await import('./local/embedded.js')).startEarlyServer();
        const { runCommand } = await import('./local/run.js');
        setCode(
          await runCommand({
            ...(earlyServer ? { earlyServer } : {}),
            dir: o.dir,
            params: o.param,
            noCache: !o.cache,
            quiet: !!o.quiet,
            json: !!o.json,
            ...(o.pipeline ? { pipeline: o.pipeline } : {}),
            ...(o.parallelism ? { parallelism: o.parallelism } : {}),
            ...(o.report ? { reportFile: resolve(o.report) } : {}),
          }),
        );
      },
    );

  program
    .command('validate')
    .description('Check every .trainyard/*.yaml; print each error as file:line:column. Exit 1 when one is invalid.')
    .option('-C, --dir <dir>', 'project folder', '.')
    .addOption(jsonOption())
    .action(async (o: { dir: string; json?: boolean }) => {
      setCode(await (await import('./local/validate.js')).validateCommand(o.dir, { json: !!o.json }));
    });

  program
    .command('explain')
    .description(
      "What goes into STEP's cache key at the commit `run` would use, and what changed since its last execution.",
    )
    .argument('<step>', 'step name')
    .option('-C, --dir <dir>', 'project folder', '.')
    .option('-p, --pipeline <name>', 'the pipeline when there are several')
    .option('--param <k=v>', 'a parameter value (repeatable)', collect, [])
    .addOption(jsonOption())
    .action(async (step: string, o: { dir: string; pipeline?: string; param: string[]; json?: boolean }) => {
      const argv = [
        step,
        '-C',
        o.dir,
        ...(o.pipeline ? ['--pipeline', o.pipeline] : []),
        ...o.param.flatMap((p) => ['--param', p]),
        ...(o.json ? ['--json'] : []),
      ];
      setCode(await (await import('./local/explain.js')).explainCommand(argv));
    });

  program
    .command('lineage')
    .description(
      "Which runs produced / consumed an artifact (sha256:digest or a 12+ hex prefix), or a run's summary (run id).",
    )
    .argument('<digest-or-run>', 'sha256:digest, digest prefix or run id')
    .addOption(jsonOption())
    .action(async (query: string, o: { json?: boolean }) => {
      const [{ lineageOf }, { formatLineageAnswer }, { openStore }, { loadEngineConfig }] = await Promise.all([
        import('../activities/lineage/query.js'),
        import('../activities/lineage/text.js'),
        import('./store.js'),
        import('./config.js'),
      ]);
      const answer = await lineageOf(openStore(loadEngineConfig()), query);
      process.stdout.write(o.json ? `${JSON.stringify(answer, null, 2)}\n` : `${formatLineageAnswer(answer)}\n`);
      setCode(answer.kind === 'not_found' || answer.kind === 'ambiguous' ? 1 : 0);
    });

  program
    .command('init')
    .description(
      'Create .trainyard/NAME.yaml (a starter that runs as it is, with the scripts it runs when they are missing) or copy an example; never overwrites a file.',
    )
    .option('-C, --dir <dir>', 'project folder', '.')
    .option('--name <name>', 'pipeline name (default: the folder name)')
    .option('--from <example>', 'copy an example instead (flowers)')
    .addOption(jsonOption())
    .action(async (o: { dir: string; name?: string; from?: string; json?: boolean }) => {
      const { initProject, initSummary } = await import('./local/init.js');
      const result = await initProject({
        dir: o.dir,
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.from !== undefined ? { from: o.from } : {}),
      });
      process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : initSummary(result));
      setCode(0);
    });

  program
    .command('runs')
    .description(
      'Recent pipeline runs, newest first: from Temporal visibility with TEMPORAL_ADDRESS, else the finished runs recorded in the store. --repo, --commit, --branch and --status filter by the run search attributes (trainyard setup-temporal).',
    )
    .option('-p, --pipeline <name>', 'only this pipeline')
    .option('--repo <repo>', 'only runs of this repository (owner/repo, or the local repository path)')
    .option('--commit <sha>', 'only runs of this commit (full SHA)')
    .option('--branch <branch>', 'only runs of this branch')
    .option('--status <status>', 'running, succeeded, failed or cancelled')
    .option('-n, --limit <n>', 'most runs shown', positiveInt('--limit'), 20)
    .addOption(jsonOption())
    .action(
      async (o: {
        pipeline?: string;
        repo?: string;
        commit?: string;
        branch?: string;
        status?: string;
        limit: number;
        json?: boolean;
      }) => {
        if (o.repo !== undefined || o.commit !== undefined || o.branch !== undefined || o.status !== undefined) {
          // By the search attributes (app/visibility.ts).
          const argv = [
            ...(o.repo !== undefined ? ['--repo', o.repo] : []),
            ...(o.commit !== undefined ? ['--commit', o.commit] : []),
            ...(o.branch !== undefined ? ['--branch', o.branch] : []),
            ...(o.status !== undefined ? ['--status', o.status] : []),
            ...(o.pipeline !== undefined ? ['--pipeline', o.pipeline] : []),
            '--limit',
            String(o.limit),
            ...(o.json ? ['--json'] : []),
          ];
          setCode(await (await import('./visibility.js')).runsCommand(argv));
          return;
        }
        setCode(
          await (
            await import('./local/runcmds.js')
          ).runsCommand({ limit: o.limit, json: !!o.json, ...(o.pipeline ? { pipeline: o.pipeline } : {}) }),
        );
      },
    );

  program
    .command('status')
    .description("A run's step table (run id or workflow id), running or finished.")
    .argument('<run>', 'run id (run-…) or workflow id')
    .addOption(jsonOption())
    .action(async (run: string, o: { json?: boolean }) => {
      setCode(await (await import('./local/runcmds.js')).statusCommand(run, { json: !!o.json }));
    });

  program
    .command('cancel')
    .description(
      'Cancel a running run: its containers are removed and its report written (needs TEMPORAL_ADDRESS). Exit 1 when it already ended.',
    )
    .argument('<run>', 'run id (run-…) or workflow id')
    .addOption(jsonOption())
    .action(async (run: string, o: { json?: boolean }) => {
      setCode(await (await import('./local/runcmds.js')).cancelCommand(run, { json: !!o.json }));
    });

  program
    .command('logs')
    .description("A step's stdout and stderr (every step's without STEP); -f follows a running step.")
    .argument('<run>', 'run id (run-…) or workflow id')
    .argument('[step]', 'step name')
    .option('-f, --follow', 'keep printing while the step runs, until it ends')
    .addOption(new Option('--json', 'one JSON object per line (NDJSON): step, attempt, stream, line'))
    .action(async (run: string, step: string | undefined, o: { follow?: boolean; json?: boolean }) => {
      setCode(await (await import('./local/logs.js')).logsCommand(run, step, { follow: !!o.follow, json: !!o.json }));
    });

  program
    .command('get')
    .description(
      'Download an artifact from the store, checked against its SHA-256: by digest, or as RUN STEP OUTPUT. Writes only to -o PATH, which must not exist.',
    )
    .argument('<digest-or-run>', 'sha256:digest, a 12+ hex prefix, or a run id')
    .argument('[step]', 'step name (with a run id)')
    .argument('[output]', 'output name (with a run id)')
    .option(
      '-o, --output <path>',
      "where to write it (default: the output name or the digest's first 12 hex digits, here)",
    )
    .addOption(jsonOption())
    .action(
      async (
        first: string,
        step: string | undefined,
        output: string | undefined,
        o: { output?: string; json?: boolean },
      ) => {
        if ((step === undefined) !== (output === undefined))
          throw new UsageError('usage: trainyard get DIGEST | trainyard get RUN STEP OUTPUT [-o PATH]');
        const { getArtifact, getSummary } = await import('./local/get.js');
        const r = await getArtifact(
          step === undefined ? [first] : [first, step, output!],
          o.output !== undefined ? { output: o.output } : {},
        );
        process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : getSummary(r));
        setCode(0);
      },
    );

  program
    .command('diff')
    .description(
      "Metrics and differing parameters of RUN_A against RUN_B. Defaults: RUN_A's base run; without runs, this checkout's newest run against the default branch's (or, on it, the previous one).",
    )
    .argument('[run-a]', 'this run')
    .argument('[run-b]', 'the base run')
    .option('-C, --dir <dir>', 'project folder (without runs)', '.')
    .option('-p, --pipeline <name>', 'the pipeline when there are several (without runs)')
    .addOption(jsonOption())
    .action(
      async (a: string | undefined, b: string | undefined, o: { dir: string; pipeline?: string; json?: boolean }) => {
        const runs = [a, b].filter((x): x is string => x !== undefined);
        setCode(
          await (
            await import('./local/diff.js')
          ).diffCommand(runs, { dir: o.dir, json: !!o.json, ...(o.pipeline ? { pipeline: o.pipeline } : {}) }),
        );
      },
    );

  program
    .command('worker')
    .description(
      'Control worker (workflows, webhook intake, git-host status) and, unless --no-host, a runner on the local queue (needs TEMPORAL_ADDRESS).',
    )
    .option('--no-host', 'no runner on the local queue')
    .option('--control-queue <q>', 'control task queue (TRAINYARD_CONTROL_QUEUE)')
    .option('--queue <q>', 'runner queue (TRAINYARD_LOCAL_QUEUE)')
    .action(async (o: { host: boolean; controlQueue?: string; queue?: string }) => {
      setCode(
        await (
          await import('./workercmd.js')
        ).workerCommand('worker', {
          noHost: !o.host,
          ...(o.queue !== undefined ? { queue: o.queue } : {}),
          ...(o.controlQueue !== undefined ? { controlQueue: o.controlQueue } : {}),
        }),
      );
    });

  program
    .command('agent')
    .description(
      'Runner agent: runs the steps routed to Q, by default the shared local queue TRAINYARD_LOCAL_QUEUE (needs TEMPORAL_ADDRESS).',
    )
    .option('--queue <q>', 'runner queue (TRAINYARD_LOCAL_QUEUE)')
    .action(async (o: { queue?: string }) => {
      setCode(
        await (
          await import('./workercmd.js')
        ).workerCommand('agent', { noHost: false, ...(o.queue !== undefined ? { queue: o.queue } : {}) }),
      );
    });

  program
    .command('serve')
    .description('Webhook server for GitHub and GitLab (see docs/githost.md).')
    .option('--port <port>', 'listen port (TRAINYARD_PORT)')
    .action(async (o: { port?: string }) => {
      await (await import('./serve.js')).serveCommand(o.port !== undefined ? ['--port', o.port] : []);
      setCode(0);
    });

  program
    .command('doctor')
    .description(
      'Check the settings, Temporal, the store, the git hosts, AWS and Kubernetes, and say in plain words what is wrong (exit 1 when a check fails).',
    )
    .addOption(new Option('--json', 'print the checks as JSON: {ok, checks: [{name, status, ok, message}]}'))
    .action(async (o: { json?: boolean }) => {
      setCode(await (await import('./doctor.js')).doctorCommand(process.env, process.stdout, { json: !!o.json }));
    });

  program
    .command('gc')
    .description('Delete from the store what no kept run, cache record or open run uses (a dry run unless --apply).')
    .option('--older-than <age>', 'runs finished longer ago than this expire (90d, 12h)', '90d')
    .option('--keep-last <n>', 'but keep the newest N runs of each pipeline', '5')
    .option('--grace <age>', 'never delete a blob written or reused within this (at least 1h)', '24h')
    .option('--apply', 'delete (without it: say what would be deleted)')
    .addOption(jsonOption())
    .action(async (o: { olderThan: string; keepLast: string; grace: string; apply?: boolean; json?: boolean }) => {
      const argv = [
        '--older-than',
        o.olderThan,
        '--keep-last',
        o.keepLast,
        '--grace',
        o.grace,
        ...(o.apply ? ['--apply'] : []),
        ...(o.json ? ['--json'] : []),
      ];
      setCode(await (await import('./gc.js')).gcCommand(argv));
    });

  program
    .command('setup-temporal')
    .description(
      'Register the run search attributes (repository, commit, branch, pipeline, trigger, requester, conclusion) in TEMPORAL_NAMESPACE.',
    )
    .action(async () => {
      setCode(await (await import('./visibility.js')).setupTemporalCommand([]));
    });

  program
    .command('completion')
    .description('Print a shell completion script: eval "$(trainyard completion bash)" (bash), or in ~/.zshrc for zsh.')
    .addArgument(new Argument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      process.stdout.write(completionScript(program, shell));
      setCode(0);
    });

  return program;
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  if (argv.length === 0) {
    // As before commander: the overview on stdout, and exit 2 (a verb is required).
    process.stdout.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were printed already.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return code;
}

// A closed stdout or stderr (`trainyard run | head -1`) must not crash a command midway:
// Node reports EPIPE as an 'error' event on the stream, which unhandled kills the process
// and orphans what it started. The output is lost; the run, its report file and the exit
// code are not.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`trainyard: ${msg}\n`);
    // Known errors (usage, setup, configuration) say all there is; anything else has a stack.
    if (process.env.TRAINYARD_DEBUG && !(err instanceof UsageError)) console.error(err);
    process.exit(2);
  },
);
