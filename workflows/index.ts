// The workflow bundle: everything here runs in Temporal's deterministic sandbox.
export { pipelineRun } from './pipeline.js';
export { stepExecution } from './step.js';
export { reapOrphans } from './reaper.js';
export { intakeDelivery } from './intake.js';
export { concurrencyGroup } from './concurrency.js';
