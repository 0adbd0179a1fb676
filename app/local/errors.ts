// Errors of the local commands, in a module of their own: the CLI checks for them without
// loading what the commands need (Temporal, the workers).

/** A command line that cannot be run as given; the CLI prints its message and exits 2. */
export class UsageError extends Error {}
