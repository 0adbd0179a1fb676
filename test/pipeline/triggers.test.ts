import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../pipeline/parse.js';
import { matchesPush } from '../../pipeline/triggers.js';
import type { Pipeline } from '../../pipeline/types.js';

function withOn(on: string): Pipeline {
  const { pipeline, errors } = parsePipeline(`name: t\n${on}\nsteps:\n  a: { image: busybox, run: x }\n`, '.trainyard/t.yaml');
  expect(errors).toEqual([]);
  return pipeline!;
}

describe('matchesPush', () => {
  const sketch = withOn('on:\n  push: { branches: [main, "exp/**"], paths: ["src/**", "data.dvc", ".trainyard/t.yaml"] }');

  it('matches branches like GitHub Actions: * stays in one segment, ** crosses them', () => {
    expect(matchesPush(sketch, 'main', undefined)).toBe(true);
    expect(matchesPush(sketch, 'refs/heads/main', undefined)).toBe(true);
    expect(matchesPush(sketch, 'exp/lr-sweep', undefined)).toBe(true);
    expect(matchesPush(sketch, 'exp/alice/deep', undefined)).toBe(true);
    expect(matchesPush(sketch, 'feature/x', undefined)).toBe(false);
    expect(matchesPush(sketch, 'mainline', undefined)).toBe(false);
    const single = withOn('on:\n  push: { branches: ["release/*"] }');
    expect(matchesPush(single, 'release/1.0', undefined)).toBe(true);
    expect(matchesPush(single, 'release/1.0/hotfix', undefined)).toBe(false);
  });

  it('needs at least one changed path to match when paths are given', () => {
    expect(matchesPush(sketch, 'main', ['README.md', 'src/model/net.py'])).toBe(true);
    expect(matchesPush(sketch, 'main', ['data.dvc'])).toBe(true);
    expect(matchesPush(sketch, 'main', ['.trainyard/t.yaml'])).toBe(true);
    expect(matchesPush(sketch, 'main', ['README.md', 'docs/src/x.md'])).toBe(false);
    expect(matchesPush(sketch, 'main', [])).toBe(false);
    expect(matchesPush(sketch, 'feature/x', ['src/a.py'])).toBe(false);
  });

  it('treats unknown changed paths as a possible match', () => {
    expect(matchesPush(sketch, 'main', undefined)).toBe(true);
  });

  it('lets a later !pattern exclude and a still later pattern include again', () => {
    const p = withOn('on:\n  push:\n    branches: ["exp/**", "!exp/scratch/**", "exp/scratch/keep"]\n    paths: ["**/*.py", "!tests/**"]');
    expect(matchesPush(p, 'exp/a', ['src/a.py'])).toBe(true);
    expect(matchesPush(p, 'exp/scratch/tmp', ['src/a.py'])).toBe(false);
    expect(matchesPush(p, 'exp/scratch/keep', ['src/a.py'])).toBe(true);
    expect(matchesPush(p, 'exp/a', ['tests/test_a.py'])).toBe(false);
    expect(matchesPush(p, 'exp/a', ['tests/test_a.py', 'train.py'])).toBe(true);
  });

  it('with only exclusions, includes everything else', () => {
    const p = withOn('on:\n  push: { branches: ["!gh-pages"], paths: ["!docs/**"] }');
    expect(matchesPush(p, 'main', ['src/a.py'])).toBe(true);
    expect(matchesPush(p, 'gh-pages', ['src/a.py'])).toBe(false);
    expect(matchesPush(p, 'main', ['docs/index.md'])).toBe(false);
  });

  it('matches dot files with **', () => {
    const p = withOn('on:\n  push: { paths: ["**"] }');
    expect(matchesPush(p, 'main', ['.github/workflows/ci.yml'])).toBe(true);
  });

  it('follows the on/push switches', () => {
    expect(matchesPush(withOn(''), 'any/branch', ['x'])).toBe(true);
    expect(matchesPush(withOn('on: { push: false }'), 'main', undefined)).toBe(false);
    expect(matchesPush(withOn('on: { comment: true }'), 'main', undefined)).toBe(false);
    expect(matchesPush(withOn('on: { push: true }'), 'main', [])).toBe(true);
  });
});
