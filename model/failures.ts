// Temporal failure types (ApplicationFailure.type) that Trainyard throws and that workflows
// read or list in `nonRetryableErrorTypes`. One name each, used on both sides, so a renamed
// type cannot silently become retryable. The strings are in recorded histories: never change
// one (test/replay/ would fail); add a new name instead.

/** Failure types of steps and hosts, by name (the values are what Temporal records). */
export const FailureType = {
  /** The step's container ran and failed (exit code ≠ 0, an output refused). */
  StepFailed: 'StepFailed',
  /** The step ran past its `timeout:`; its container was killed. */
  StepTimedOut: 'StepTimedOut',
  /** The step cannot run as specified (image missing, bad input, unschedulable): no retry helps. */
  StepInvalid: 'StepInvalid',
  /** The machine under the step went away (EC2 host lost, pod evicted or deleted). */
  StepHostLost: 'StepHostLost',
  /** No credentials for a delivery's git host on this worker. */
  IntakeUnconfigured: 'IntakeUnconfigured',
  Ec2CapacityExhausted: 'Ec2CapacityExhausted',
  Ec2ConfigError: 'Ec2ConfigError',
  Ec2InstanceLimit: 'Ec2InstanceLimit',
  Ec2HostNotReady: 'Ec2HostNotReady',
  Ec2HostLost: 'Ec2HostLost',
} as const;

/** One of the FailureType values. */
export type FailureType = (typeof FailureType)[keyof typeof FailureType];
