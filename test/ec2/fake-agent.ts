// Stand-in runner agent for host-pool tests: a Temporal worker on the host's task queue
// whose one activity works for a while, heartbeating, like a step container would.
// The end-to-end test runs the real agent (`trainyard agent --queue Q`) instead.
import { ApplicationFailure, Context, heartbeat } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';

const i = process.argv.indexOf('--queue');
const queue = i > 0 ? process.argv[i + 1] : undefined;
if (!queue) throw new Error('usage: fake-agent.ts --queue Q');

async function hostWork(input: { ms: number; fail?: boolean }): Promise<{ queue: string; pid: number }> {
  const end = Date.now() + input.ms;
  while (Date.now() < end) {
    heartbeat();
    await Context.current().sleep(Math.min(200, Math.max(1, end - Date.now())));
  }
  if (input.fail) throw ApplicationFailure.nonRetryable('the step exited with status 1', 'StepFailed');
  return { queue: queue!, pid: process.pid };
}

const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
const worker = await Worker.create({ connection, taskQueue: queue, activities: { hostWork } });
process.once('SIGTERM', () => worker.shutdown());
await worker.run();
await connection.close();
