// Which runs supersede each other: the group of a run, from the pipeline's `concurrency` and
// what the run is for (pipeline/concurrency.ts).
import { describe, expect, it } from 'vitest';
import { expandGroup, supersedingGroup } from '../../pipeline/concurrency.js';

describe('supersedingGroup', () => {
  it('without `concurrency`: `/train` and Re-run runs of a pull request supersede each other per pipeline; pushes never do', () => {
    expect(supersedingGroup(undefined, { pipeline: 'mnist', pr: 12, branch: 'feature' })).toBe('mnist-pr-12');
    expect(supersedingGroup(undefined, { pipeline: 'mnist', branch: 'main' })).toBeUndefined();
    expect(supersedingGroup(undefined, { pipeline: 'mnist', branch: 'feature' })).toBeUndefined();
  });

  it('with `cancel-in-progress: true`, the group as written; a run lacking one of its names is in no group', () => {
    const c = { group: '{{pipeline}}-{{ branch }}', cancelInProgress: true };
    expect(supersedingGroup(c, { pipeline: 'mnist', branch: 'exp/a' })).toBe('mnist-exp/a');
    expect(supersedingGroup(c, { pipeline: 'mnist', pr: 3, branch: 'exp/a' })).toBe('mnist-exp/a');
    // A tag push, or a fork's pull request, has no branch here.
    expect(supersedingGroup(c, { pipeline: 'mnist', pr: 3 })).toBeUndefined();
    expect(
      supersedingGroup({ group: 'pr-{{pr}}', cancelInProgress: true }, { pipeline: 'mnist', branch: 'main' }),
    ).toBeUndefined();
  });

  it('with `cancel-in-progress: false`, no run supersedes another, not even `/train` runs', () => {
    expect(
      supersedingGroup({ group: '{{pipeline}}', cancelInProgress: false }, { pipeline: 'mnist', pr: 12 }),
    ).toBeUndefined();
  });

  it('fills in every name, and leaves text around them as written', () => {
    expect(expandGroup('a {{pr}} b {{pr}} {{pipeline}}', { pipeline: 'p', pr: 7 })).toBe('a 7 b 7 p');
  });
});
