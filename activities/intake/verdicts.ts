// The wording of checks that end without a run. Shared by GitHub and GitLab.
import type { Pipeline, PipelineError } from '../../pipeline/types.js';
import type { Annotation, Verdict } from './port.js';

export function policyVerdict(pipeline: Pipeline, violations: PipelineError[]): Verdict {
  return {
    conclusion: 'failure',
    title: 'Refused by server policy',
    summary:
      `Nothing ran: \`${pipeline.name}\` asks for more than this Trainyard server allows. ` +
      'The limits are set by the server operator, not by the repository.\n\n' +
      violations.map((v) => `- ${v.file}:${v.line}:${v.column}: ${v.message}`).join('\n'),
    annotations: violations.map((v) => ({
      path: v.file,
      line: Math.max(1, v.line),
      column: Math.max(1, v.column),
      level: 'failure',
      title: 'Refused by server policy',
      message: v.message,
    })),
  };
}

export function paramsVerdict(pipeline: Pipeline, errors: string[]): Verdict {
  return {
    conclusion: 'failure',
    title: 'Parameters are missing or invalid',
    summary: `Nothing ran:\n\n${errors.map((e) => `- ${e}`).join('\n')}`,
    annotations: [fileAnnotation(pipeline, 'Parameters', errors.join('\n'))],
  };
}

export function forkVerdict(pr: number, sha: string): Verdict {
  return {
    conclusion: 'action_required',
    title: 'Waiting for a maintainer to approve this commit',
    summary:
      `Pull request #${pr} comes from a fork, so its code does not run until a maintainer ` +
      `reviews it and comments \`/ok-to-train\`. That approval covers commit \`${sha.slice(0, 12)}\` only: ` +
      'every new push needs a new approval.',
  };
}

function fileAnnotation(pipeline: Pipeline, title: string, message: string): Annotation {
  return { path: pipeline.file, line: 1, level: 'failure', title, message };
}
