// The watchdog of a `trainyard run`: what the command started must not outlive it, even
// when it is killed with SIGKILL and can clean nothing up itself. It lives in a process group
// of its own (spawned detached), so a terminal's Ctrl-C reaches trainyard, which cancels its
// run, and not the watchdog or what it guards.
//
//   node guard.mjs [TEMPORAL_BINARY ARGS...]
//
// With arguments it starts the embedded Temporal server. On its stdin — a pipe from
// trainyard — come lines naming the step containers trainyard starts and removes:
//   started <TAB> <container CLI> <TAB> <container name>
//   removed <TAB> <container name>
// When the pipe reaches end-of-file — trainyard closed it, or died in any way — or on
// SIGTERM, it kills and removes the containers still listed, stops the server and exits.
//
// Plain JavaScript on purpose: it starts with `node` alone in a few tens of milliseconds,
// without the TypeScript loader the rest of the CLI needs. Nothing goes through a shell:
// every command is an argv array, and names are checked against the container name rule.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const containers = new Map(); // name → container CLI
let server;
let serverExited = Promise.resolve();
let stopping = false;

const [binary, ...args] = process.argv.slice(2);
if (binary) {
  server = spawn(binary, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  server.once('error', (err) => {
    // Said on stderr, which trainyard reads: ENOENT there means "install the temporal CLI".
    process.stderr.write(`trainyard-guard: cannot start ${binary}: ${err.code ?? ''} ${err.message}\n`);
    process.exit(127);
  });
  serverExited = new Promise((resolve) => server.once('exit', resolve));
  // A server that stops on its own ends the watchdog with its status; trainyard notices.
  server.once('exit', (code, signal) => { if (!stopping) void stop(code ?? (signal ? 1 : 0)); });
}

function run(cli, argv) {
  return new Promise((resolve) => {
    const p = spawn(cli, argv, { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('error', () => { clearTimeout(t); resolve(); });
    p.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  // SIGKILL first: `rm -f` alone would wait for the container's stop timeout.
  const removals = [...containers].map(async ([name, cli]) => {
    await run(cli, ['kill', name]);
    await run(cli, ['rm', '-f', name]);
  });
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    // `temporal server start-dev` stops in well under a second; never wait on it forever.
    setTimeout(() => server.kill('SIGKILL'), 5000).unref();
  }
  await Promise.all([...removals, serverExited]);
  process.exit(code);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [verb, a, b] = line.split('\t');
  if (verb === 'started' && a && b && NAME.test(b)) containers.set(b, a);
  else if (verb === 'removed' && a) containers.delete(a);
});
process.stdin.once('end', () => void stop());
process.stdin.once('error', () => void stop());
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => void stop());
