// A test runner stand-in for test/service/guard.test.ts: starts part of the service topology
// with the harness (cluster.ts) — a Temporal server on a db file and a runner agent, each a
// process of its own — prints `ready <temporal pid> <agent pid>` and waits to be killed.
//
//   node --import tsx test/service/harness-child.ts SCRATCH_DIR
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { TemporalServer, trainyard } from './cluster.js';

const scratch = process.argv[2];
if (!scratch) throw new Error('usage: harness-child.ts SCRATCH_DIR');
const env = process.env as Record<string, string>;
const temporal = await TemporalServer.create(join(scratch, 'temporal.db'), env, scratch);
await temporal.start();
const agent = trainyard(
  'agent',
  ['agent'],
  {
    ...env,
    TEMPORAL_ADDRESS: temporal.address,
    TRAINYARD_STORE: join(scratch, 'store'),
    TRAINYARD_WORK_DIR: join(scratch, 'agent'),
    TRAINYARD_LOCAL_QUEUE: `guard-${randomUUID().slice(0, 8)}`,
    TRAINYARD_CONTROL_QUEUE: `guard-${randomUUID().slice(0, 8)}`,
  },
  scratch,
);
agent.start();
await agent.ready(/runner agent ready/);
process.stdout.write(`ready ${temporal.proc.pid} ${agent.pid}\n`);
// Waits for SIGKILL; the test never lets this end on its own.
setInterval(() => undefined, 60_000);
