// One concurrency group of one repository (`concurrency:` of a pipeline, or the default group
// of a pull request's `/train` runs): the workflow whose id is the group's. Every run of the
// group claims it when it starts (signalWithStart, activities/engine.ts); the group tells the
// run it replaces to stop. Temporal delivers one workflow's signals one at a time and refuses
// to close a workflow that has signals it has not seen, so two runs claiming at once, or a
// claim arriving while the group closes, can never leave two runs of a group going.
import { condition, continueAsNew, getExternalWorkflowHandle, setHandler, workflowInfo } from '@temporalio/workflow';
import { claimSignal, releaseSignal, supersedeSignal, type ConcurrencyClaim } from '../model/contracts.js';

export interface GroupState {
  /** The group's newest run while it runs. */
  current?: ConcurrencyClaim;
  /** Runs already told to stop: a late or repeated claim of theirs changes nothing. */
  superseded: string[];
}

/** Superseded run ids remembered; a claim is repeated only by a retried activity, soon after the first. */
const REMEMBERED = 200;
/** A group whose newest run never said it ended (terminated by hand) closes after this long without a claim. */
const IDLE_CLOSE = '30 days';

export async function concurrencyGroup(state: GroupState = { superseded: [] }): Promise<void> {
  let current = state.current;
  const superseded = [...state.superseded];
  const claims: ConcurrencyClaim[] = [];
  setHandler(claimSignal, (c) => void claims.push(c));
  setHandler(releaseSignal, (workflowId) => {
    if (current?.workflowId === workflowId) current = undefined;
  });

  const supersede = async (old: ConcurrencyClaim, by: ConcurrencyClaim): Promise<void> => {
    superseded.push(old.workflowId);
    if (superseded.length > REMEMBERED) superseded.splice(0, superseded.length - REMEMBERED);
    try {
      await getExternalWorkflowHandle(old.workflowId).signal(supersedeSignal, {
        workflowId: by.workflowId,
        runId: by.runId,
        sha: by.sha,
      });
    } catch {
      // It has ended meanwhile: nothing to stop.
    }
  };

  for (;;) {
    while (claims.length > 0) {
      const c = claims.shift()!;
      if (c.workflowId === current?.workflowId || superseded.includes(c.workflowId)) continue;
      if (current === undefined) current = c;
      else if (c.requestedAt < current.requestedAt) {
        // An older request that reached the group late (a slow start, a retried activity).
        await supersede(c, current);
      } else {
        const old = current;
        current = c;
        await supersede(old, c);
      }
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 5000) {
      await continueAsNew<typeof concurrencyGroup>({ ...(current ? { current } : {}), superseded });
    }
    const woke = await condition(() => claims.length > 0 || current === undefined, IDLE_CLOSE);
    if (claims.length === 0 && (current === undefined || !woke)) return;
  }
}
