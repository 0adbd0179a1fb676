// Baseline for bench/engine.ts: a bare Temporal workflow of the same DAG shape whose
// activities run the container command directly — no parsing, hashing, cache or lineage.
import { proxyActivities, ActivityCancellationType } from '@temporalio/workflow';

const { runBare } = proxyActivities<{ runBare(step: string): Promise<void> }>({
  startToCloseTimeout: '5 minutes',
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

export async function bareDag(deps: Record<string, string[]>, parallelism: number): Promise<number> {
  const done = new Set<string>();
  const running = new Map<string, Promise<void>>();
  const names = Object.keys(deps);
  while (done.size < names.length) {
    for (const n of names) {
      if (running.size >= parallelism) break;
      if (done.has(n) || running.has(n) || !deps[n]!.every((d) => done.has(d))) continue;
      running.set(
        n,
        runBare(n).then(() => {
          done.add(n);
          running.delete(n);
        }),
      );
    }
    await Promise.race(running.values());
  }
  return done.size;
}
