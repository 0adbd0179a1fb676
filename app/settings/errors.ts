// The one error type of the configuration: every loader (run, worker, agent, serve, doctor)
// throws it, and its message starts with the setting at fault.

/**
 * A setting is missing, malformed or contradicts another. `variable` is the environment
 * variable to fix (for a conflict, the one named first); the message is
 * `VARIABLE: what it expects, got what`. `problems` lists every problem when a loader
 * reports several at once (the compute configuration); otherwise it holds the message alone.
 */
export class SettingError extends Error {
  readonly problems: string[];
  constructor(
    readonly variable: string,
    message: string,
    problems?: string[],
  ) {
    super(`${variable}: ${message}`);
    this.name = 'SettingError';
    this.problems = problems ?? [`${variable}: ${message}`];
  }
}
