// `/train` and `/ok-to-train` on a pull / merge request. Order matters: acknowledge at
// once, authorize before reading anything from the PR, check fork trust against the exact
// head commit, then validate pipeline, parameters and policy; only then start. Runs as an
// activity that Temporal retries, so every reply is idempotent (ConversationPort.reply).
import { formatPipelineError } from '../../pipeline/parse.js';
import { resolveParams } from '../../pipeline/params.js';
import type { Pipeline } from '../../pipeline/types.js';
import { FORK_SECRETS_WITHHELD, type Intake, type IntakePolicy } from './context.js';
import type { CommentCommand } from './events.js';
import { commentWorkflowId } from './ids.js';
import { listPipelines, pipelinesAt } from './pipelines.js';
import { atLeast, type AccessLevel, type ConversationPort, type RepoPort } from './port.js';
import { startRun } from './startrun.js';
import { forkVerdict, policyVerdict } from './verdicts.js';

export interface CommentEvent {
  commentId: number;
  author: string;
  /** The command on the comment's first line, parsed where the webhook was received. */
  command: CommentCommand;
  commentUrl?: string;
}

/** Who may ask for a run, and who may vouch for a fork's commit. */
export const TRAIN_LEVEL: AccessLevel = 'write';
export const TRUST_LEVEL: AccessLevel = 'maintain';

export const USAGE = 'Usage: `/train [pipeline] [key=value ...]` — values may be quoted, like `note="two words"`.';

export type CommentOutcome =
  { kind: 'refused' | 'invalid' | 'trusted' } | { kind: 'started'; workflowId: string; fresh: boolean };

const code = (s: string) => `\`${s.replace(/`/g, "'").slice(0, 200)}\``;

export async function handleComment(
  repo: RepoPort,
  convo: ConversationPort,
  intake: Intake,
  ev: CommentEvent,
): Promise<CommentOutcome> {
  const cmd = ev.command;
  await convo.acknowledge();
  const level = await convo.accessLevel(ev.author);
  const who = `@${ev.author}`;
  // Asked only when the repository permission falls short: most commenters cost no extra call.
  const team = (needed: AccessLevel) =>
    atLeast(level, needed) ? Promise.resolve(undefined) : trustedTeamOf(repo, convo, intake.policy, ev.author);

  if (cmd.kind === 'ok-to-train') {
    const via = await team(TRUST_LEVEL);
    if (!atLeast(level, TRUST_LEVEL) && via === undefined) {
      await convo.reply(
        `${who}: only maintainers or members of a trusted team can approve a fork's commits for \`/train\` (your access: ${level}).`,
      );
      return { kind: 'refused' };
    }
    const pr = await convo.pullRequest();
    await intake.records.trust(repo.host, repo.repoKey, pr.number, pr.headSha, ev.author);
    await convo.reply(
      `${who} approved commit \`${pr.headSha.slice(0, 12)}\` for \`/train\`. The approval covers this commit only; ` +
        'a new push needs a new `/ok-to-train`.',
    );
    return { kind: 'trusted' };
  }
  if (!atLeast(level, TRAIN_LEVEL) && (await team(TRAIN_LEVEL)) === undefined) {
    await convo.reply(
      `${who}: \`/train\` needs write access to this repository or membership of a team this server trusts (your access: ${level}). Nothing ran.`,
    );
    return { kind: 'refused' };
  }
  if (cmd.kind === 'invalid') {
    await convo.reply(`${who}: I could not read that command: ${cmd.message}\n\n${USAGE}`);
    return { kind: 'invalid' };
  }

  const pr = await convo.pullRequest();
  if (pr.fromFork && !(await intake.records.trusted(repo.host, repo.repoKey, pr.number, pr.headSha))) {
    await repo.postVerdict('approval', pr.headSha, `fork:${pr.headSha}`, forkVerdict(pr.number, pr.headSha), pr.number);
    await convo.reply(
      `${who}: this pull request comes from a fork, and its head commit \`${pr.headSha.slice(0, 12)}\` has not been ` +
        'approved. A maintainer must review it and comment `/ok-to-train`; then comment `/train` again. Nothing ran.',
    );
    return { kind: 'refused' };
  }

  const { pipelines, invalid, texts } = await pipelinesAt(repo, pr.headSha);
  const pick = choosePipeline(pipelines, cmd.pipeline, invalid);
  if (typeof pick === 'string') {
    await convo.reply(`${who}: ${pick}`);
    return { kind: 'invalid' };
  }
  const params = resolveParams(pick, cmd.params);
  if (params.errors.length > 0) {
    await convo.reply(
      `${who}: nothing ran; the parameters do not fit \`${pick.name}\`:\n\n${params.errors.map((e) => `- ${e}`).join('\n')}`,
    );
    return { kind: 'invalid' };
  }
  const violations = intake.policy.violations(repo.repoPath, pick, texts.get(pick.file));
  if (violations.length > 0) {
    await repo.postVerdict(
      pick.name,
      pr.headSha,
      `policy:${ev.commentId}:${pick.name}`,
      policyVerdict(pick, violations),
      pr.number,
    );
    await convo.reply(
      `${who}: this server's policy refuses \`${pick.name}\`; nothing ran.\n\n${violations.map((v) => `- ${v.message}`).join('\n')}`,
    );
    return { kind: 'refused' };
  }

  const workflowId = commentWorkflowId(repo.host, repo.repoKey, ev.commentId, pick.name);
  const started = await startRun(repo, intake, {
    pipeline: pick,
    params: params.values,
    given: cmd.params,
    sha: pr.headSha,
    workflowId,
    pr: pr.number,
    ...(pr.fromFork && !intake.policy.forkSecrets ? { secretsWithheld: FORK_SECRETS_WITHHELD } : {}),
    // A fork's branch names are not this repository's: `{{branch}}` has no value there.
    ...(!pr.fromFork && pr.headRef ? { branch: pr.headRef } : {}),
    trigger: {
      kind: 'comment',
      pr: pr.number,
      actor: ev.author,
      commentId: ev.commentId,
      ...(ev.commentUrl ? { commentUrl: ev.commentUrl } : {}),
      ...(pr.baseRef ? { baseRef: pr.baseRef } : {}),
      ...(pr.mergeBaseSha ? { baseSha: pr.mergeBaseSha } : {}),
      ...(pr.headRef ? { headRef: pr.headRef } : {}),
    },
  });
  const shown = Object.entries(params.values)
    .map(([k, v]) => code(`${k}=${String(v)}`))
    .join(' ');
  const link = await convo.statusLink(workflowId, pr.headSha);
  await convo.announceRun(
    pick.name,
    workflowId,
    `${who} started \`${pick.name}\` on \`${pr.headSha.slice(0, 12)}\`${shown ? ` with ${shown}` : ''}.` +
      `${link ? ` Progress and the lineage report: ${link}` : ''}`,
  );
  return { kind: 'started', workflowId, fresh: started.fresh };
}

/** The trusted team (`org/team`) of this repository's organisation that the user actively belongs to. */
async function trustedTeamOf(
  repo: RepoPort,
  convo: ConversationPort,
  policy: IntakePolicy,
  user: string,
): Promise<string | undefined> {
  if (repo.host !== 'github' || !convo.teamMember) return undefined;
  for (const t of policy.trustedTeams(repo.repoPath)) {
    if (await convo.teamMember(t.org, t.team, user)) return `${t.org}/${t.team}`;
  }
  return undefined;
}

function choosePipeline(
  pipelines: Pipeline[],
  name: string | undefined,
  invalid: Map<string, { line: number; column: number; message: string; file: string }[]>,
): Pipeline | string {
  const commentable = pipelines.filter((p) => p.on.comment);
  const broken = [...invalid.values()].flat();
  const brokenNote =
    broken.length > 0
      ? `\n\nThese pipeline files are invalid at this commit:\n${broken
          .slice(0, 20)
          .map((e) => `- \`${formatPipelineError(e).replace(/`/g, "'")}\``)
          .join('\n')}`
      : '';
  if (name === undefined) {
    if (commentable.length === 1) return commentable[0]!;
    return commentable.length === 0
      ? `no pipeline at this commit accepts \`/train\` (a pipeline needs \`on: { comment: true }\`).${brokenNote}`
      : `this repository has several pipelines; name one: ${listPipelines(commentable)}. ${USAGE}`;
  }
  const found = pipelines.find((p) => p.name === name);
  if (!found) {
    return `there is no pipeline ${code(name)} at this commit. Pipelines that accept \`/train\`: ${listPipelines(commentable)}.${brokenNote}`;
  }
  if (!found.on.comment) {
    return `pipeline \`${found.name}\` does not accept \`/train\` (its file \`${found.file}\` needs \`on: { comment: true }\`).`;
  }
  return found;
}
