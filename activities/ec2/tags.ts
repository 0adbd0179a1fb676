// Tag keys Trainyard puts on everything it launches. The reaper and the run's own
// clean-up find instances by these, so they are the contract between launch and reap.

export const TAG = {
  /** Always 'true'; IAM conditions key on it (only managed instances may be terminated). */
  managed: 'trainyard:managed',
  /** Installation name, so two Trainyard deployments (or two test files) in one account never reap each other's hosts. */
  deployment: 'trainyard:deployment',
  runId: 'trainyard:run-id',
  workflowId: 'trainyard:workflow-id',
  step: 'trainyard:step',
  attempt: 'trainyard:attempt',
  machineClass: 'trainyard:machine-class',
  /** Task queue of the runner agent on the host. */
  queue: 'trainyard:queue',
  /** Same value on every launch candidate of one provisioning call: finds an instance a lost response launched. */
  launchToken: 'trainyard:launch-token',
  /** ISO time after which the reaper may terminate the host whatever its run's state. */
  leaseUntil: 'trainyard:lease-until',
  /** Written by the host itself when EC2 announces a spot interruption. */
  interruption: 'trainyard:interruption',
} as const;

/** EC2 tag values: at most 256 characters. */
export function tagValue(v: string): string {
  return v.length <= 256 ? v : v.slice(0, 256);
}

export function tagsToRecord(tags: { Key?: string; Value?: string }[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? '';
  return out;
}
