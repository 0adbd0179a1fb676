// The activity sets the workers register: control activities (cache, start executions,
// lineage, git-host status) on the control queue, and the runner on each compute host.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import {
  attachSignal,
  claimSignal,
  stepExecWorkflowId,
  type ClaimRequest,
  type ConcurrencyClaim,
  type CachedResult,
  type StepFinished,
  type PrepareRequest,
  type PrepareAnswer,
  type RunStepRequest,
  type RunStepResult,
  type StartRequest,
} from '../model/contracts.js';
import type { LineageEmitRequest, LineageEmitResult } from '../model/openlineage.js';
import type { PublishRequest } from '../model/types.js';
import type { concurrencyGroup } from '../workflows/concurrency.js';
import type { stepExecution } from '../workflows/step.js';
import { lookup, record, type LatestRecord } from './cache.js';
import type { ContainerCliConfig } from './container/types.js';
import { createLineageActivities, type RecordLineageArgs, type RecordedLineage } from './lineage/activity.js';
import { createEmitOpenLineage, type OpenLineageConfig } from './lineage/openlineage.js';
import { createPrepareSteps } from './prepare.js';
import { createRunStep, type RunnerDeps } from './runner/runstep.js';
import type { SourceProvider } from './source/types.js';
import { latestRecordKey } from './store/keys.js';
import type { ArtifactStore } from './store/types.js';

export interface ControlActivities {
  prepareSteps(req: PrepareRequest): Promise<PrepareAnswer[]>;
  startSteps(req: StartRequest): Promise<void>;
  /** Results of executions that closed without telling this run (a safety net for lost signals). */
  probeSteps(req: { keys: string[] }): Promise<StepFinished[]>;
  lookupCache(key: string): Promise<CachedResult | undefined>;
  recordCache(result: CachedResult): Promise<void>;
  recordRunLineage(args: RecordLineageArgs): Promise<RecordedLineage>;
  publishStatus(req: PublishRequest): Promise<void>;
  /** Claims the run's concurrency group, starting the group's workflow if it is not running. */
  claimConcurrency(req: ClaimRequest): Promise<void>;
  /** Sends the run's OpenLineage events when this worker has an endpoint; never throws (activities/lineage/openlineage.ts). */
  emitOpenLineage(req: LineageEmitRequest): Promise<LineageEmitResult>;
}

export interface HostActivities {
  runStep(req: RunStepRequest): Promise<RunStepResult>;
}

export interface ControlDeps {
  store: ArtifactStore;
  sources: SourceProvider;
  client: Client;
  cli?: ContainerCliConfig;
  s3?: S3ClientConfig;
  publishStatus?: (req: PublishRequest) => Promise<void>;
  /** Where OpenLineage events go; absent = nowhere. */
  openLineage?: OpenLineageConfig;
}

export function createControlActivities(deps: ControlDeps): ControlActivities {
  const { store } = deps;
  return {
    prepareSteps: createPrepareSteps(deps),
    async startSteps(req: StartRequest): Promise<void> {
      const ctx = Context.current();
      for (const exec of req.execs) {
        // Starts the execution, or joins the one already running for this key.
        await deps.client.workflow.signalWithStart<typeof stepExecution, [string]>('stepExecution', {
          workflowId: stepExecWorkflowId(exec.key),
          taskQueue: req.controlQueue,
          args: [exec],
          signal: attachSignal,
          signalArgs: [req.runWorkflowId],
        });
        // A local activity (how runs call it now) has no heartbeat.
        if (!ctx.info.isLocal) ctx.heartbeat(exec.spec.step);
      }
    },
    async probeSteps({ keys }): Promise<StepFinished[]> {
      const out: StepFinished[] = [];
      for (const key of keys) {
        const handle = deps.client.workflow.getHandle<typeof stepExecution>(stepExecWorkflowId(key));
        const desc = await handle.describe().catch(() => undefined);
        if (!desc || desc.status.name !== 'COMPLETED') continue;
        out.push({ key, outcome: await handle.result() });
      }
      return out;
    },
    lookupCache: (key) => lookup(store, key),
    async recordCache(result): Promise<void> {
      const source = { ...result.source, finishedAt: result.source.finishedAt || new Date().toISOString() };
      await record(store, { ...result, source });
      const latest: LatestRecord = { key: result.key, parts: result.parts, source };
      await store.putRecord(latestRecordKey(source.pipeline, source.step), latest);
    },
    recordRunLineage: createLineageActivities({ store }).recordRunLineage,
    async claimConcurrency({ groupId, controlQueue, claim }): Promise<void> {
      // Atomic in Temporal: the signal reaches the running group, or a group started for it.
      await deps.client.workflow.signalWithStart<typeof concurrencyGroup, [ConcurrencyClaim]>('concurrencyGroup', {
        workflowId: groupId,
        taskQueue: controlQueue,
        args: [],
        signal: claimSignal,
        signalArgs: [claim],
      });
    },
    emitOpenLineage: createEmitOpenLineage(deps.openLineage),
    publishStatus:
      deps.publishStatus ??
      (async (req: PublishRequest) => {
        if (req.target.kind !== 'none')
          throw new Error(`this worker cannot publish to ${req.target.kind}: no git-host credentials configured`);
      }),
  };
}

export type HostDeps = RunnerDeps;

export function createHostActivities(deps: HostDeps): HostActivities {
  return { runStep: createRunStep(deps) };
}
