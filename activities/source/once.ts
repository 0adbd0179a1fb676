// Checkouts are unpacked once per commit and shared: concurrent requests for the same
// folder wait for the one extraction in flight.
export class OncePerKey {
  private readonly inFlight = new Map<string, Promise<string>>();

  run(key: string, work: () => Promise<string>): Promise<string> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = work().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }
}

/** A full git commit id (SHA-1 or SHA-256), so it can never be read as a path or option. */
export const COMMIT_ID = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
