// The error of a command given wrong arguments: the CLI prints its message and exits 2.
// Its own module so that light verbs (diff, get, logs) need not load the run machinery.

/** Wrong arguments or a request that cannot be met as asked; `trainyard` exits 2 with the message. */
export class UsageError extends Error {
  override name = 'UsageError';
}
