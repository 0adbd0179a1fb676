// Background work after a webhook was verified and acknowledged. The webhook answer never
// waits for git-host API reads or a workflow start; a job that fails is logged, and the
// delivery can be redelivered safely because workflow ids are deterministic.
import type { Logger } from 'pino';

export class JobQueue {
  private running = 0;
  private readonly waiting: { name: string; run: () => Promise<void> }[] = [];
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly log: Logger,
    private readonly concurrency: number,
    /** Beyond this many waiting jobs new ones are refused (the webhook answers 503). */
    private readonly maxWaiting = 10_000,
  ) {}

  /** false when the backlog is full. */
  enqueue(name: string, run: () => Promise<void>): boolean {
    if (this.waiting.length >= this.maxWaiting) return false;
    this.waiting.push({ name, run });
    this.pump();
    return true;
  }

  get size(): number {
    return this.running + this.waiting.length;
  }

  /** Resolves once nothing is running or waiting (shutdown, tests). */
  async idle(): Promise<void> {
    if (this.size === 0) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running++;
      void job
        .run()
        .catch((err: unknown) => this.log.error({ err, job: job.name }, 'intake job failed'))
        .finally(() => {
          this.running--;
          this.pump();
          if (this.size === 0) for (const r of this.idleWaiters.splice(0)) r();
        });
    }
  }
}
