// The watchdog of a `trainyard run`: what the command started must not outlive it, even
// when it is killed with SIGKILL and can clean nothing up itself. It lives in a process group
// of its own (spawned detached), so a terminal's Ctrl-C reaches trainyard, which cancels its
// run, and not the watchdog or what it guards.
//
//   node guard.mjs [TEMPORAL_BINARY ARGS...]
//
// With arguments it starts the embedded Temporal server. On its stdin — a pipe from
// trainyard — come lines naming the step containers trainyard starts and removes, and the
// process groups of other processes it started (the test harness of the service topology,
// test/service/cluster.ts, runs every process it starts in a group of its own):
//   started <TAB> <container CLI> <TAB> <container name>
//   removed <TAB> <container name>
//   group <TAB> <process group id> [<TAB> <grace ms>]
//   ungroup <TAB> <process group id>
// When the pipe reaches end-of-file — trainyard closed it, or died in any way — or on
// SIGTERM, it kills and removes the containers still listed, sends SIGTERM to every group
// still listed and SIGKILL to those still there after their grace time (default 15 s), stops
// the server and exits once all of them are gone. The server gets SIGTERM, or SIGKILL when
// TRAINYARD_GUARD_SERVER_STOP=SIGKILL (app/guard.ts: a server that keeps nothing, whose
// graceful shutdown would only cost time).
//
// Plain JavaScript on purpose: it starts with `node` alone in a few tens of milliseconds,
// without the TypeScript loader the rest of the CLI needs. Nothing goes through a shell:
// every command is an argv array, and names are checked against the container name rule.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const containers = new Map(); // name → container CLI
const groups = new Map(); // process group id → grace ms between SIGTERM and SIGKILL
const DEFAULT_GROUP_GRACE_MS = 15_000;
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
  server.once('exit', (code, signal) => {
    if (!stopping) void stop(code ?? (signal ? 1 : 0));
  });
}

function run(cli, argv) {
  return new Promise((resolve) => {
    const p = spawn(cli, argv, { stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('error', () => {
      clearTimeout(t);
      resolve();
    });
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Whether any process of group `pgid` is still there (EPERM: one is, but not ours to signal). */
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone */
  }
}

/** SIGTERM, so that a process can remove what it started; SIGKILL after the grace time. */
async function endGroup(pgid, graceMs) {
  signalGroup(pgid, 'SIGTERM');
  const killAt = Date.now() + graceMs;
  let killed = false;
  // Past SIGKILL, a member left can only be a zombie its new parent has not reaped yet.
  const giveUpAt = killAt + 5000;
  while (groupAlive(pgid) && Date.now() < giveUpAt) {
    if (!killed && Date.now() >= killAt) {
      signalGroup(pgid, 'SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
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
    server.kill(process.env.TRAINYARD_GUARD_SERVER_STOP === 'SIGKILL' ? 'SIGKILL' : 'SIGTERM');
    // `temporal server start-dev` stops in well under a second; never wait on it forever.
    setTimeout(() => server.kill('SIGKILL'), 5000).unref();
  }
  const ended = [...groups].map(([pgid, graceMs]) => endGroup(pgid, graceMs));
  await Promise.all([...removals, ...ended, serverExited]);
  process.exit(code);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [verb, a, b] = line.split('\t');
  if (verb === 'started' && a && b && NAME.test(b)) containers.set(b, a);
  else if (verb === 'removed' && a) containers.delete(a);
  // A group id is a pid; 0 and 1 would signal this watchdog's own group or every process.
  else if (verb === 'group' && /^\d+$/.test(a ?? '') && Number(a) > 1 && Number(a) !== process.pid)
    groups.set(Number(a), /^\d+$/.test(b ?? '') ? Number(b) : DEFAULT_GROUP_GRACE_MS);
  else if (verb === 'ungroup' && a) groups.delete(Number(a));
});
process.stdin.once('end', () => void stop());
process.stdin.once('error', () => void stop());
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => void stop());
