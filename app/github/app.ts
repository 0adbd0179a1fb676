// The Probot app. Each handler only checks what it can from the payload and queues the
// work, so Probot's middleware answers the webhook at once; the queued job talks to the
// GitHub API and Temporal.
import type { ApplicationFunction, Context, Probot } from 'probot';
import type { GitHubClients } from '../../activities/githost/github-client.js';
import { parseCommentCommand } from '../intake/command.js';
import type { Intake } from '../intake/context.js';
import type { JobQueue } from '../intake/jobs.js';
import { handleComment, TRAIN_LEVEL } from '../intake/comment.js';
import { atLeast } from '../intake/port.js';
import { handlePush } from '../intake/push.js';
import { cancelFromCheck, rerun, rerunSuite } from '../intake/rerun.js';
import { changedPathsOfPush } from './changes.js';
import { trainyardChecksOfSuite } from './suite.js';
import { GitHubConversation, GitHubRepoPort } from './port.js';

export interface GitHubAppDeps {
  intake: Intake;
  clients: GitHubClients;
  jobs: JobQueue;
  /** Verify and acknowledge only (benchmark baseline). */
  ackOnly: boolean;
}

type Repository = { name: string; owner: { login: string }; clone_url: string; default_branch: string };

function busy(): Error {
  return Object.assign(new Error('intake backlog is full; redeliver later'), { status: 503 });
}

export function githubApp(deps: GitHubAppDeps): ApplicationFunction {
  const { intake, clients, jobs } = deps;
  const repoPort = (installationId: number, r: Repository) =>
    new GitHubRepoPort(clients.installation(installationId), { installationId, owner: r.owner.login, repo: r.name, cloneUrl: r.clone_url });
  const queue = (name: string, run: () => Promise<unknown>) => {
    if (deps.ackOnly) return;
    if (!jobs.enqueue(name, async () => void (await run()))) throw busy();
  };
  const installationOf = (ctx: { payload: { installation?: { id: number } } }): number | undefined => ctx.payload.installation?.id;

  return (app: Probot) => {
    app.on('push', async (ctx: Context<'push'>) => {
      const p = ctx.payload;
      const installationId = installationOf(ctx);
      if (installationId === undefined || p.deleted || !(p.ref.startsWith('refs/heads/') || p.ref.startsWith('refs/tags/'))) return;
      // A tag's `after` is the tag object when the tag is annotated; `head_commit` is the
      // commit it points at (always sent on tag pushes since GitHub's 2021-10-01 change).
      const sha = p.ref.startsWith('refs/tags/') ? p.head_commit?.id : p.after;
      if (sha === undefined) {
        intake.log.warn({ delivery: ctx.id, repo: p.repository.full_name, ref: p.ref }, 'tag push without head_commit; ignored');
        return;
      }
      const repository = p.repository as unknown as Repository;
      queue(`push ${p.repository.full_name}@${sha}`, async () => {
        const port = repoPort(installationId, repository);
        const outcome = await handlePush(port, intake, {
          ref: p.ref, sha, deleted: p.deleted, actor: p.sender?.login ?? p.pusher.name, deliveryId: ctx.id,
          changedPaths: () => changedPathsOfPush(clients.installation(installationId), port, p),
        });
        intake.log.info({ delivery: ctx.id, repo: port.repoPath, ref: p.ref, sha, ...outcome }, 'push handled');
      });
    });

    app.on('issue_comment.created', async (ctx: Context<'issue_comment.created'>) => {
      const p = ctx.payload;
      const installationId = installationOf(ctx);
      if (installationId === undefined || !p.issue.pull_request || p.comment.user?.type === 'Bot') return;
      if (parseCommentCommand(p.comment.body) === null) return;
      const repository = p.repository as unknown as Repository;
      queue(`comment ${p.repository.full_name}#${p.issue.number}/${p.comment.id}`, async () => {
        const api = clients.installation(installationId);
        const ref = { owner: repository.owner.login, repo: repository.name };
        const convo = new GitHubConversation(api, ref, p.issue.number, p.comment.id, p.issue.html_url, intake.records);
        const outcome = await handleComment(repoPort(installationId, repository), convo, intake, {
          commentId: p.comment.id, author: p.comment.user?.login ?? 'ghost', body: p.comment.body, commentUrl: p.comment.html_url,
        });
        intake.log.info({ delivery: ctx.id, repo: p.repository.full_name, pr: p.issue.number, outcome }, 'comment handled');
      });
    });

    const onCheckRun = async (ctx: Context<'check_run.rerequested' | 'check_run.requested_action'>, action: 'rerun' | 'cancel') => {
      const p = ctx.payload;
      const installationId = installationOf(ctx);
      if (installationId === undefined || !p.check_run.name.startsWith('trainyard/')) return;
      const repository = p.repository as unknown as Repository;
      queue(`${action} ${p.repository.full_name} check ${p.check_run.id}`, async () => {
        const api = clients.installation(installationId);
        const ref = { owner: repository.owner.login, repo: repository.name };
        // GitHub shows these buttons to people with write access; the check is repeated here
        // because the server, not the UI, is the authority.
        const convo = new GitHubConversation(api, ref, 0, 0, '', intake.records);
        const level = await convo.accessLevel(p.sender.login);
        if (!atLeast(level, TRAIN_LEVEL)) {
          intake.log.warn({ delivery: ctx.id, user: p.sender.login, level }, `${action} refused: needs write access`);
          return;
        }
        const workflowId = p.check_run.external_id ?? '';
        if (action === 'cancel') {
          const cancelled = await cancelFromCheck(intake, workflowId);
          intake.log.info({ delivery: ctx.id, workflowId, cancelled }, 'cancel requested from check run');
          return;
        }
        const result = await rerun(repoPort(installationId, repository), intake, {
          previousId: workflowId, checkName: p.check_run.name, sha: p.check_run.head_sha, actor: p.sender.login,
          checkRunId: p.check_run.id, deliveryId: ctx.id,
        });
        intake.log.info({ delivery: ctx.id, previous: workflowId, ...result }, 're-run requested from check run');
      });
    };
    app.on('check_run.rerequested', (ctx) => onCheckRun(ctx, 'rerun'));

    // "Re-run all checks" (or "Re-run failed checks", which GitHub sends the same way for
    // the suite): every Trainyard check on the suite's head commit runs again.
    app.on('check_suite.rerequested', async (ctx: Context<'check_suite.rerequested'>) => {
      const p = ctx.payload;
      const installationId = installationOf(ctx);
      if (installationId === undefined) return;
      const repository = p.repository as unknown as Repository;
      queue(`rerun suite ${p.repository.full_name} ${p.check_suite.id}`, async () => {
        const api = clients.installation(installationId);
        const ref = { owner: repository.owner.login, repo: repository.name };
        const level = await new GitHubConversation(api, ref, 0, 0, '', intake.records).accessLevel(p.sender.login);
        if (!atLeast(level, TRAIN_LEVEL)) {
          intake.log.warn({ delivery: ctx.id, user: p.sender.login, level }, 'suite re-run refused: needs write access');
          return;
        }
        const checks = await trainyardChecksOfSuite(api, ref, p.check_suite.id);
        const results = await rerunSuite(repoPort(installationId, repository), intake, {
          checks, sha: p.check_suite.head_sha, actor: p.sender.login, deliveryId: ctx.id,
        });
        intake.log.info({ delivery: ctx.id, suite: p.check_suite.id, results }, 're-run requested for the check suite');
      });
    });
    app.on('check_run.requested_action', (ctx) => {
      const id = ctx.payload.requested_action?.identifier;
      return id === 'cancel' || id === 'rerun' ? onCheckRun(ctx, id) : Promise.resolve();
    });
  };
}
