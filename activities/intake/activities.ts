// The intake as an activity: what a verified webhook asks for — reading pipeline files,
// permission and policy checks, verdict checks, starting runs, reactions and replies — done
// for one recorded delivery (workflows/intake.ts) on a control worker. Temporal retries it
// after any crash, so every side effect is idempotent: runs start under deterministic
// workflow ids with reject-duplicate, verdict checks are found by external id before they
// are created, replies carry a marker a retry looks for, the 👀 reaction is one per user.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { GitHubClients } from '../githost/github-client.js';
import { changedPathsOfPush } from '../githost/github-changes.js';
import { GitHubConversation, GitHubRepoPort } from '../githost/github-intake.js';
import { trainyardChecksOfSuite } from '../githost/github-suite.js';
import type { GitLabApi } from '../githost/gitlab-client.js';
import { GitLabConversation, GitLabRepoPort, gitlabChangedPaths } from '../githost/gitlab-intake.js';
import { handleComment, TRAIN_LEVEL } from './comment.js';
import type { Intake } from './context.js';
import type { Delivery, DeliveryOutcome, GitHubRepo, IntakeEvent } from './events.js';
import { atLeast } from './port.js';
import { handlePush } from './push.js';
import { cancelFromCheck, rerun, rerunSuite } from './rerun.js';
import { FailureType } from '../../model/failures.js';

export interface IntakeDeps extends Intake {
  github?: GitHubClients;
  gitlab?: GitLabApi;
}

export interface IntakeActivities {
  /** Acts on one delivery; throws (and is retried) on a git-host or Temporal error. */
  handleDelivery(d: Delivery): Promise<DeliveryOutcome>;
}

/** Failure type of a delivery this worker cannot handle at all (no credentials for its host). */
export const INTAKE_UNCONFIGURED = FailureType.IntakeUnconfigured;

export function createIntakeActivities(deps: IntakeDeps): IntakeActivities {
  return {
    async handleDelivery(d: Delivery): Promise<DeliveryOutcome> {
      // The control worker heartbeats for it (activities/liveness.ts): a killed worker is noticed in seconds.
      const { attempt } = Context.current().info;
      const log = deps.log.child({ delivery: d.deliveryId, event: d.event.kind, attempt });
      const outcome = await handle(deps, { ...deps, log }, d.event, d.deliveryId);
      log.info({ ...outcome }, 'delivery handled');
      return outcome;
    },
  };
}

function githubApi(deps: IntakeDeps, installationId: number) {
  if (!deps.github) {
    throw ApplicationFailure.create({
      type: INTAKE_UNCONFIGURED,
      nonRetryable: true,
      message: 'this worker has no GitHub App configured (GITHUB_APP_ID, GITHUB_PRIVATE_KEY, GITHUB_WEBHOOK_SECRET)',
    });
  }
  return deps.github.installation(installationId);
}

function gitlabApi(deps: IntakeDeps): GitLabApi {
  if (!deps.gitlab) {
    throw ApplicationFailure.create({
      type: INTAKE_UNCONFIGURED,
      nonRetryable: true,
      message: 'this worker has no GitLab configured (GITLAB_URL, GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET)',
    });
  }
  return deps.gitlab;
}

const repoPort = (deps: IntakeDeps, r: GitHubRepo) =>
  new GitHubRepoPort(githubApi(deps, r.installationId), {
    installationId: r.installationId,
    owner: r.owner,
    repo: r.repo,
    cloneUrl: r.cloneUrl,
  });

async function handle(deps: IntakeDeps, intake: Intake, ev: IntakeEvent, deliveryId: string): Promise<DeliveryOutcome> {
  switch (ev.kind) {
    case 'github-push': {
      const api = githubApi(deps, ev.repo.installationId);
      const port = repoPort(deps, ev.repo);
      const o = await handlePush(port, intake, {
        ref: ev.ref,
        sha: ev.sha,
        deleted: false,
        actor: ev.actor,
        deliveryId,
        changedPaths: () =>
          changedPathsOfPush(
            api,
            { owner: ev.repo.owner, repo: ev.repo.repo },
            {
              before: ev.before,
              after: ev.after,
              created: ev.created,
              paths: ev.paths,
              ...(ev.repo.defaultBranch ? { defaultBranch: ev.repo.defaultBranch } : {}),
            },
          ),
      });
      return { kind: ev.kind, runs: o.runs, summary: pushSummary(o) };
    }
    case 'github-comment': {
      const api = githubApi(deps, ev.repo.installationId);
      const convo = new GitHubConversation(
        api,
        { owner: ev.repo.owner, repo: ev.repo.repo },
        ev.issue,
        ev.commentId,
        ev.issueUrl,
        deps.records,
      );
      const o = await handleComment(repoPort(deps, ev.repo), convo, intake, {
        commentId: ev.commentId,
        author: ev.author,
        command: ev.command,
        ...(ev.commentUrl ? { commentUrl: ev.commentUrl } : {}),
      });
      return { kind: ev.kind, runs: o.kind === 'started' ? [o.workflowId] : [], summary: o.kind };
    }
    case 'github-check-run': {
      const api = githubApi(deps, ev.repo.installationId);
      // GitHub shows these buttons to people with write access; the check is repeated here
      // because the server, not the UI, is the authority.
      const level = await new GitHubConversation(
        api,
        { owner: ev.repo.owner, repo: ev.repo.repo },
        0,
        0,
        '',
        deps.records,
      ).accessLevel(ev.actor);
      if (!atLeast(level, TRAIN_LEVEL))
        return {
          kind: ev.kind,
          runs: [],
          summary: `${ev.action} refused: ${ev.actor} has ${level} access, needs write`,
        };
      if (ev.action === 'cancel') {
        const cancelled = await cancelFromCheck(intake, ev.externalId);
        return {
          kind: ev.kind,
          runs: [],
          summary: cancelled ? `cancel requested for ${ev.externalId}` : 'nothing to cancel',
        };
      }
      const r = await rerun(repoPort(deps, ev.repo), intake, {
        previousId: ev.externalId,
        checkName: ev.checkName,
        sha: ev.headSha,
        actor: ev.actor,
        checkRunId: ev.checkRunId,
        deliveryId,
      });
      return { kind: ev.kind, runs: r.workflowId ? [r.workflowId] : [], summary: r.message ?? 're-run started' };
    }
    case 'github-check-suite': {
      const api = githubApi(deps, ev.repo.installationId);
      const ref = { owner: ev.repo.owner, repo: ev.repo.repo };
      const level = await new GitHubConversation(api, ref, 0, 0, '', deps.records).accessLevel(ev.actor);
      if (!atLeast(level, TRAIN_LEVEL))
        return {
          kind: ev.kind,
          runs: [],
          summary: `suite re-run refused: ${ev.actor} has ${level} access, needs write`,
        };
      const checks = await trainyardChecksOfSuite(api, ref, ev.suiteId);
      const results = await rerunSuite(repoPort(deps, ev.repo), intake, {
        checks,
        sha: ev.headSha,
        actor: ev.actor,
        deliveryId,
      });
      return {
        kind: ev.kind,
        runs: results.flatMap((r) => (r.workflowId ? [r.workflowId] : [])),
        summary:
          results.map((r) => `${r.checkName}: ${r.message ?? 're-run started'}`).join('; ') ||
          'no Trainyard checks in the suite',
      };
    }
    case 'gitlab-push': {
      const api = gitlabApi(deps);
      const port = new GitLabRepoPort(api, ev.project, deps.records, (id) => deps.runUrl(id));
      const o = await handlePush(port, intake, {
        ref: ev.ref,
        sha: ev.sha,
        deleted: false,
        actor: ev.actor,
        deliveryId,
        changedPaths: () =>
          gitlabChangedPaths(api, ev.project.projectId, {
            before: ev.before,
            after: ev.after,
            paths: ev.paths,
            ...(ev.project.defaultBranch ? { defaultBranch: ev.project.defaultBranch } : {}),
          }),
      });
      return { kind: ev.kind, runs: o.runs, summary: pushSummary(o) };
    }
    case 'gitlab-note': {
      const api = gitlabApi(deps);
      const port = new GitLabRepoPort(api, ev.project, deps.records, (id) => deps.runUrl(id));
      const convo = new GitLabConversation(api, deps.records, ev.project, ev.mrIid, ev.noteId, ev.userId, (id) =>
        deps.runUrl(id),
      );
      const o = await handleComment(port, convo, intake, {
        commentId: ev.noteId,
        author: ev.author,
        command: ev.command,
        ...(ev.noteUrl ? { commentUrl: ev.noteUrl } : {}),
      });
      return { kind: ev.kind, runs: o.kind === 'started' ? [o.workflowId] : [], summary: o.kind };
    }
  }
}

function pushSummary(o: {
  started: string[];
  runs: string[];
  resultsStand: string[];
  invalid: string[];
  refused: string[];
}): string {
  const parts = [
    o.started.length ? `started ${o.started.join(', ')}` : '',
    o.runs.length > o.started.length ? `${o.runs.length - o.started.length} already started` : '',
    o.resultsStand.length ? `results stand: ${o.resultsStand.join(', ')}` : '',
    o.invalid.length ? `invalid: ${o.invalid.join(', ')}` : '',
    o.refused.length ? `refused: ${o.refused.join(', ')}` : '',
  ].filter(Boolean);
  return parts.join('; ') || 'no pipeline for this branch';
}
