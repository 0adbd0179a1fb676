// Check-run writes: size limits, annotations in batches of 50 (GitHub's per-request cap),
// find-before-create so a retried write does not leave a second check.
import type { Annotation, Verdict } from '../intake/port.js';
import type { GitHubApi } from './github-client.js';
import { neutraliseBidi } from '../usertext.js';
import { CHECK_TEXT_MAX, truncateUtf8 } from './text.js';

export interface RepoRef {
  owner: string;
  repo: string;
}

export const ANNOTATIONS_PER_REQUEST = 50;
const TITLE_MAX = 255;

export type CheckAction = { label: string; description: string; identifier: 'cancel' | 'rerun' };
export const CANCEL_ACTION: CheckAction = {
  label: 'Cancel',
  description: 'Stop this run (clean-up still runs)',
  identifier: 'cancel',
};
export const RERUN_ACTION: CheckAction = {
  label: 'Re-run',
  description: 'Run again with the same parameters',
  identifier: 'rerun',
};

export interface CheckOutput {
  title: string;
  summary: string;
  text?: string;
  annotations?: Annotation[];
}

type GitHubAnnotation = {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: 'failure' | 'warning' | 'notice';
  message: string;
  title?: string;
};

function toGitHub(a: Annotation): GitHubAnnotation {
  return {
    path: a.path,
    start_line: a.line,
    end_line: a.line,
    // Columns are only allowed when the annotation spans one line, which ours always do.
    ...(a.column ? { start_column: a.column, end_column: a.column } : {}),
    annotation_level: a.level,
    message: truncateUtf8(neutraliseBidi(a.message), 64 * 1024 - 1, '…'),
    ...(a.title ? { title: neutraliseBidi(a.title).slice(0, 255) } : {}),
  };
}

/** Every check-run output passes here: user text in it is neutralised (bidi controls) and cut to GitHub's limits. */
function output(o: CheckOutput, annotations: Annotation[], moreLink?: string) {
  const cut = `\n\n…(cut to fit GitHub's limit${moreLink ? `; the whole report: ${moreLink}` : ''})`;
  return {
    title: neutraliseBidi(o.title).slice(0, TITLE_MAX),
    summary: truncateUtf8(neutraliseBidi(o.summary), CHECK_TEXT_MAX, cut),
    ...(o.text ? { text: truncateUtf8(neutraliseBidi(o.text), CHECK_TEXT_MAX, '\n…') } : {}),
    ...(annotations.length ? { annotations: annotations.map(toGitHub) } : {}),
  };
}

function batches<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface CheckFields {
  status?: 'queued' | 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure' | 'neutral' | 'cancelled' | 'timed_out' | 'action_required' | 'skipped';
  detailsUrl?: string;
  output?: CheckOutput;
  actions?: CheckAction[];
  /** Link to the full report, for a summary cut to size. */
  moreLink?: string;
}

function fields(f: CheckFields, annotations: Annotation[]) {
  return {
    ...(f.status ? { status: f.status } : {}),
    ...(f.conclusion ? { conclusion: f.conclusion, completed_at: new Date().toISOString() } : {}),
    ...(f.detailsUrl ? { details_url: f.detailsUrl } : {}),
    ...(f.output ? { output: output(f.output, annotations, f.moreLink) } : {}),
    ...(f.actions ? { actions: f.actions } : {}),
  };
}

/** Count of write requests the call made, for the rate budget. */
export interface WriteResult {
  id: number;
  htmlUrl: string;
  writes: number;
}

export async function createCheckRun(
  api: GitHubApi,
  repo: RepoRef,
  name: string,
  headSha: string,
  externalId: string,
  f: CheckFields,
): Promise<WriteResult> {
  const [first = [], ...rest] = batches(f.output?.annotations ?? [], ANNOTATIONS_PER_REQUEST);
  const { data } = await api.rest.checks.create({
    ...repo,
    name,
    head_sha: headSha,
    external_id: externalId,
    ...fields(f, first),
  });
  const more = await addAnnotations(api, repo, data.id, f.output, rest);
  return { id: data.id, htmlUrl: data.html_url ?? '', writes: 1 + more };
}

export async function updateCheckRun(
  api: GitHubApi,
  repo: RepoRef,
  checkRunId: number,
  f: CheckFields,
): Promise<WriteResult> {
  const [first = [], ...rest] = batches(f.output?.annotations ?? [], ANNOTATIONS_PER_REQUEST);
  const { data } = await api.rest.checks.update({ ...repo, check_run_id: checkRunId, ...fields(f, first) });
  const more = await addAnnotations(api, repo, checkRunId, f.output, rest);
  return { id: data.id, htmlUrl: data.html_url ?? '', writes: 1 + more };
}

/** Annotations past the first 50 go in further updates of the same output. */
async function addAnnotations(
  api: GitHubApi,
  repo: RepoRef,
  id: number,
  o: CheckOutput | undefined,
  rest: Annotation[][],
): Promise<number> {
  for (const batch of rest) {
    await api.rest.checks.update({
      ...repo,
      check_run_id: id,
      output: output({ title: o!.title, summary: o!.summary }, batch),
    });
  }
  return rest.length;
}

/** The check run of this commit with this name and external id, if one exists. */
export async function findCheckRun(
  api: GitHubApi,
  repo: RepoRef,
  sha: string,
  name: string,
  externalId: string,
): Promise<{ id: number; htmlUrl: string } | undefined> {
  const { data } = await api.rest.checks.listForRef({
    ...repo,
    ref: sha,
    check_name: name,
    filter: 'all',
    per_page: 100,
  });
  const found = data.check_runs.find((c) => c.external_id === externalId);
  return found ? { id: found.id, htmlUrl: found.html_url ?? '' } : undefined;
}

/** A completed check that stands for a decision, not a run; posted once per external id. */
export async function postVerdictCheck(
  api: GitHubApi,
  repo: RepoRef,
  name: string,
  sha: string,
  externalId: string,
  v: Verdict,
  detailsUrl?: string,
): Promise<WriteResult | undefined> {
  if (await findCheckRun(api, repo, sha, name, externalId)) return undefined;
  return createCheckRun(api, repo, name, sha, externalId, {
    status: 'completed',
    conclusion: v.conclusion,
    ...(detailsUrl ? { detailsUrl } : {}),
    output: { title: v.title, summary: v.summary, ...(v.annotations ? { annotations: v.annotations } : {}) },
    ...(v.conclusion === 'success' ? { actions: [RERUN_ACTION] } : {}),
  });
}
