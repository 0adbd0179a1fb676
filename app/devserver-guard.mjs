// The watchdog between `trainyard run` and its embedded Temporal server: it starts the
// server (argv: binary and arguments) and stops it as soon as its own stdin — a pipe from
// trainyard — reaches end-of-file. The pipe closes when trainyard closes it to stop the
// server, and also when trainyard dies in any way, SIGKILL included, so no server outlives
// the command that started it. It runs in a process group of its own (spawned detached),
// so a terminal's Ctrl-C reaches trainyard, which cancels its run, and not the server.
//
// Plain JavaScript on purpose: it starts with `node` alone in a few tens of milliseconds,
// without the TypeScript loader the rest of the CLI needs. No argument is interpreted by a
// shell; they go to spawn() as an argv array.
import { spawn } from 'node:child_process';

const [binary, ...args] = process.argv.slice(2);
if (!binary) {
  process.stderr.write('usage: node devserver-guard.mjs TEMPORAL_BINARY [ARGS...]\n');
  process.exit(2);
}
const server = spawn(binary, args, { stdio: ['ignore', 'ignore', 'inherit'] });
let killTimer;
let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  if (server.exitCode !== null || server.signalCode !== null) return;
  server.kill('SIGTERM');
  // `temporal server start-dev` stops in well under a second; never wait on it forever.
  killTimer = setTimeout(() => server.kill('SIGKILL'), 5000);
}
server.once('error', (err) => {
  // Said on stderr, which trainyard reads: ENOENT there means "install the temporal CLI".
  process.stderr.write(`trainyard-devserver-guard: cannot start ${binary}: ${err.code ?? ''} ${err.message}\n`);
  process.exit(127);
});
server.once('exit', (code, signal) => {
  clearTimeout(killTimer);
  process.exit(stopping ? 0 : code ?? (signal ? 1 : 0));
});
process.stdin.on('data', () => undefined);
process.stdin.once('end', stop);
process.stdin.once('error', stop);
process.stdin.once('close', stop);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, stop);
