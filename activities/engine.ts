// The activity sets the workers register: control activities (cache, start executions,
// lineage, git-host status) on the control queue, and the runner on each compute host.
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import {
  attachSignal, stepExecWorkflowId, type CachedResult, type StepFinished, type PrepareRequest, type Prepared,
  type RunStepRequest, type RunStepResult, type StartRequest,
} from '../workflows/contracts.js';
import type { PublishRequest, StepOutcome } from '../workflows/types.js';
import { latestRecordKey, lookup, record, type LatestRecord } from './cache.js';
import type { ContainerCliConfig } from './container/types.js';
import { createLineageActivities, type RecordLineageArgs, type RecordedLineage } from './lineage/activity.js';
import { createPrepareSteps } from './prepare.js';
import { createRunStep, type RunnerDeps } from './step.js';
import type { SourceProvider } from './source/types.js';
import type { ArtifactStore } from './store/types.js';

export interface ControlActivities {
  prepareSteps(req: PrepareRequest): Promise<Prepared[]>;
  startSteps(req: StartRequest): Promise<void>;
  /** Results of executions that closed without telling this run (a safety net for lost signals). */
  probeSteps(req: { keys: string[] }): Promise<StepFinished[]>;
  lookupCache(key: string): Promise<CachedResult | undefined>;
  /** `codeFilesRef`: digest of the step's code-file listing, kept in the latest record for the next miss. */
  recordCache(result: CachedResult & { codeFilesRef?: string }): Promise<void>;
  recordRunLineage(args: RecordLineageArgs): Promise<RecordedLineage>;
  publishStatus(req: PublishRequest): Promise<void>;
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
}

export function createControlActivities(deps: ControlDeps): ControlActivities {
  const { store } = deps;
  return {
    prepareSteps: createPrepareSteps(deps),
    async startSteps(req: StartRequest): Promise<void> {
      for (const exec of req.execs) {
        // Starts the execution, or joins the one already running for this key.
        await deps.client.workflow.signalWithStart('stepExecution', {
          workflowId: stepExecWorkflowId(exec.key),
          taskQueue: req.controlQueue,
          args: [exec],
          signal: attachSignal,
          signalArgs: [req.runWorkflowId],
        });
        Context.current().heartbeat(exec.spec.step);
      }
    },
    async probeSteps({ keys }): Promise<StepFinished[]> {
      const out: StepFinished[] = [];
      for (const key of keys) {
        const handle = deps.client.workflow.getHandle(stepExecWorkflowId(key));
        const desc = await handle.describe().catch(() => undefined);
        if (!desc || desc.status.name !== 'COMPLETED') continue;
        out.push({ key, outcome: (await handle.result()) as StepOutcome });
      }
      return out;
    },
    lookupCache: (key) => lookup(store, key),
    async recordCache(result): Promise<void> {
      const { codeFilesRef, ...cached } = result;
      const source = { ...cached.source, finishedAt: cached.source.finishedAt || new Date().toISOString() };
      await record(store, { ...cached, source });
      const codeFiles = codeFilesRef ? (JSON.parse((await store.getBytes(codeFilesRef)).toString('utf8')) as Record<string, string>) : {};
      const latest: LatestRecord = { key: cached.key, parts: cached.parts, codeFiles, source };
      await store.putRecord(latestRecordKey(source.pipeline, source.step), latest);
    },
    recordRunLineage: createLineageActivities({ store }).recordRunLineage,
    publishStatus: deps.publishStatus ?? (async (req: PublishRequest) => {
      if (req.target.kind !== 'none') throw new Error(`this worker cannot publish to ${req.target.kind}: no git-host credentials configured`);
    }),
  };
}

export type HostDeps = RunnerDeps;

export function createHostActivities(deps: HostDeps): HostActivities {
  return { runStep: createRunStep(deps) };
}
