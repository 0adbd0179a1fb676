// The search attributes a run starts with, which `trainyard runs --branch` filters on.
import { describe, expect, it } from 'vitest';
import { runSearchAttributes } from '../../model/searchattributes.js';
import type { RunInput, Trigger } from '../../model/types.js';

const input = (trigger: Trigger): RunInput =>
  ({
    runId: 'r1',
    pipeline: { name: 'flowers' },
    source: {
      kind: 'remote',
      cloneUrl: 'https://github.com/octo-org/models.git',
      commit: 'c'.repeat(40),
      subdir: '',
      host: 'github',
    },
    trigger,
  }) as unknown as RunInput;

describe('runSearchAttributes', () => {
  it.each([
    ['a push', { kind: 'push', ref: 'refs/heads/main', actor: 'alice' }, 'main'],
    ['a tag push', { kind: 'push', ref: 'refs/tags/v1', actor: 'alice' }, undefined],
    ['a /train comment', { kind: 'comment', pr: 7, actor: 'bob', commentId: 1, headRef: 'feature/x' }, 'feature/x'],
    ['a local run on a branch', { kind: 'cli', user: 'carol', branch: 'exp' }, 'exp'],
    ['a local run on a detached HEAD', { kind: 'cli', user: 'carol' }, undefined],
  ] as const)('%s → branch %s', (_, trigger, branch) => {
    const sa = runSearchAttributes(input(trigger as Trigger));
    expect(sa.TrainyardBranch).toEqual(branch === undefined ? undefined : [branch]);
    expect(sa).toMatchObject({
      TrainyardRepository: ['octo-org/models'],
      TrainyardPipeline: ['flowers'],
      TrainyardCommit: ['c'.repeat(40)],
    });
  });
});
