// Errors of the local commands, in a module of their own: the CLI checks for them without
// loading what the commands need (Temporal, the workers).

/** Wrong arguments or a request that cannot be met as asked; `trainyard` prints its message and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
