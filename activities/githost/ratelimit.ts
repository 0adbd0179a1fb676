// GitHub's secondary limits for content-creating requests: 80 a minute and 500 an hour
// per account. Live progress updates are optional (the next one carries the newest state),
// so they only spend what is left after a reserve kept for the writes that must happen:
// creating checks, completing them, replies.
export interface WindowLimit {
  windowMs: number;
  max: number;
}

export const GITHUB_CONTENT_LIMITS: WindowLimit[] = [
  { windowMs: 60_000, max: 80 },
  { windowMs: 3_600_000, max: 500 },
];

export class WriteBudget {
  private readonly sent = new Map<string, number[]>();

  constructor(
    private readonly limits: WindowLimit[] = GITHUB_CONTENT_LIMITS,
    /** Share of each window optional writes may use. */
    private readonly optionalShare = 0.6,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a write that must happen (it is counted even when over budget). */
  spend(account: string): void {
    this.times(account).push(this.now());
  }

  /** Takes budget for an optional write; false means skip it. */
  tryOptional(account: string): boolean {
    const times = this.times(account);
    const t = this.now();
    for (const { windowMs, max } of this.limits) {
      const inWindow = times.filter((x) => x > t - windowMs).length;
      if (inWindow >= Math.floor(max * this.optionalShare)) return false;
    }
    times.push(t);
    return true;
  }

  private times(account: string): number[] {
    const longest = Math.max(...this.limits.map((l) => l.windowMs));
    const t = this.now();
    const kept = (this.sent.get(account) ?? []).filter((x) => x > t - longest);
    this.sent.set(account, kept);
    return kept;
  }
}
