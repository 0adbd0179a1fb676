// The OpenLineage facts a pipeline run owes and the control activity that sends them
// (workflows/openlineage.ts works them out; activities/lineage/openlineage.ts builds and sends
// the events). Types only: shared by the workflow bundle and the activities.
import type { ArtifactRef } from './types.js';

/** OpenLineage's run state transitions that Trainyard reports (the spec's `eventType`). */
export type LineageEventType = 'START' | 'COMPLETE' | 'FAIL' | 'ABORT';

/** One event to send: of the run when `step` is absent, else of that step of the run. */
export interface LineageFact {
  eventType: LineageEventType;
  /** ISO 8601, from the workflow's own clock (the step's start or finish time). */
  eventTime: string;
  step?: string;
  /** The step's input artifacts (content-addressed), by input name. */
  inputs?: Record<string, ArtifactRef>;
  /** The step's output artifacts, by output name (on COMPLETE). */
  outputs?: Record<string, ArtifactRef>;
}

/** What the activity needs to name the run's jobs and derive its run ids. */
export interface LineageEmitRequest {
  /** The run's workflow id and Trainyard run id: the OpenLineage run ids are derived from them. */
  workflowId: string;
  runId: string;
  /** `owner/repo` (GitHub, GitLab) or the local repository's path, with the project folder when not the root. */
  repository: string;
  pipeline: string;
  facts: LineageFact[];
}

/** `enabled: false`: this worker has no OpenLineage endpoint; the run sends nothing more. */
export interface LineageEmitResult {
  enabled: boolean;
}
