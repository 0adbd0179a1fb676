import type { SourceRef } from '../../model/types.js';

/**
 * Gives the project's files at a commit as a local read-only directory.
 * Implementations: local git (`git archive`), GitHub/GitLab archives (remote).
 * Checkouts are cached per commit under a cache root and shared by steps.
 */
export interface SourceProvider {
  /** Absolute path of a directory holding the project root's files at source.commit. */
  checkout(source: SourceRef): Promise<string>;
}
