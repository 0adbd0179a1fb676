import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../pipeline/parse.js';
import { matchesPush } from '../../pipeline/triggers.js';
import type { Pipeline } from '../../pipeline/types.js';

function withOn(on: string): Pipeline {
  const { pipeline, errors } = parsePipeline(
    `name: t\n${on}\nsteps:\n  a: { image: busybox, run: x }\n`,
    '.trainyard/t.yaml',
  );
  expect(errors).toEqual([]);
  return pipeline!;
}

describe('matchesPush', () => {
  const sketch = withOn(
    'on:\n  push: { branches: [main, "exp/**"], paths: ["src/**", "data.dvc", ".trainyard/t.yaml"] }',
  );

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
    const p = withOn(
      'on:\n  push:\n    branches: ["exp/**", "!exp/scratch/**", "exp/scratch/keep"]\n    paths: ["**/*.py", "!tests/**"]',
    );
    expect(matchesPush(p, 'exp/a', ['src/a.py'])).toBe(true);
    expect(matchesPush(p, 'exp/scratch/tmp', ['src/a.py'])).toBe(false);
    expect(matchesPush(p, 'exp/scratch/keep', ['src/a.py'])).toBe(true);
    expect(matchesPush(p, 'exp/a', ['tests/test_a.py'])).toBe(false);
    expect(matchesPush(p, 'exp/a', ['tests/test_a.py', 'train.py'])).toBe(true);
  });

  it('leaves out with branches-ignore and paths-ignore, and runs when any changed path is not ignored', () => {
    const p = withOn('on:\n  push: { branches-ignore: ["gh-pages", "mona/*"], paths-ignore: ["docs/**", "**.md"] }');
    expect(matchesPush(p, 'refs/heads/main', ['src/a.py'])).toBe(true);
    expect(matchesPush(p, 'refs/heads/gh-pages', ['src/a.py'])).toBe(false);
    expect(matchesPush(p, 'refs/heads/mona/octocat', ['src/a.py'])).toBe(false);
    expect(matchesPush(p, 'refs/heads/main', ['docs/index.md', 'README.md'])).toBe(false);
    expect(matchesPush(p, 'refs/heads/main', ['docs/index.md', 'src/a.py'])).toBe(true);
    expect(matchesPush(p, 'refs/heads/main', [])).toBe(false);
    expect(matchesPush(p, 'refs/heads/main', undefined)).toBe(true);
    // Only branch filters: tags never run it.
    expect(matchesPush(p, 'refs/tags/v1', undefined)).toBe(false);
  });

  it('matches tags by tags / tags-ignore, and branch and tag filters each only their own refs', () => {
    const both = withOn(
      'on:\n  push: { branches: [main], tags: ["v[12].[0-9]+.[0-9]+", "!v1.0.0"], paths: ["src/**"] }',
    );
    expect(matchesPush(both, 'refs/tags/v2.10.3', undefined)).toBe(true);
    expect(matchesPush(both, 'refs/tags/v1.0.0', undefined)).toBe(false);
    expect(matchesPush(both, 'refs/tags/v3.0.0', undefined)).toBe(false);
    expect(matchesPush(both, 'refs/tags/main', undefined)).toBe(false);
    expect(matchesPush(both, 'refs/heads/v2.0.0', ['src/a.py'])).toBe(false);
    // Path filters are not evaluated for tag pushes.
    expect(matchesPush(both, 'refs/tags/v2.0.0', ['README.md'])).toBe(true);
    expect(matchesPush(both, 'refs/tags/v2.0.0', [])).toBe(true);
    expect(matchesPush(both, 'refs/heads/main', ['README.md'])).toBe(false);

    const tagsOnly = withOn('on:\n  push: { tags-ignore: ["*-rc*"] }');
    expect(matchesPush(tagsOnly, 'refs/tags/v1', undefined)).toBe(true);
    expect(matchesPush(tagsOnly, 'refs/tags/v1-rc1', undefined)).toBe(false);
    expect(matchesPush(tagsOnly, 'refs/heads/main', undefined)).toBe(false);

    const pathsOnly = withOn('on:\n  push: { paths: ["src/**"] }');
    expect(matchesPush(pathsOnly, 'refs/tags/anything', ['README.md'])).toBe(true);
    expect(matchesPush(pathsOnly, 'refs/heads/any', ['README.md'])).toBe(false);
    expect(matchesPush(withOn('on: { push: true }'), 'refs/tags/v1', undefined)).toBe(true);
    expect(matchesPush(withOn('on: { push: true }'), 'refs/pull/1/head', undefined)).toBe(false);
  });

  it("uses GitHub's + and ? (repeat the preceding character), not shell globbing", () => {
    const p = withOn('on:\n  push: { branches: ["v[12].[0-9]+.[0-9]+"], paths: ["*.jsx?"] }');
    expect(matchesPush(p, 'refs/heads/v1.10.1', ['page.js'])).toBe(true);
    expect(matchesPush(p, 'refs/heads/v1.10.1', ['page.jsx'])).toBe(true);
    expect(matchesPush(p, 'refs/heads/v1.10.1', ['page.jsz'])).toBe(false);
    expect(matchesPush(p, 'refs/heads/v1.x.1', ['page.js'])).toBe(false);
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
