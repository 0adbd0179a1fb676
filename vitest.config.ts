import { defineConfig } from 'vitest/config';

const CLUSTER_TESTS = 'test/k8s/cluster/**/*.test.ts';

export default defineConfig({
  test: {
    globalSetup: ['test/setup/global.ts'],
    // One Temporal dev server and one moto server serve the whole run (see global.ts);
    // two cores, so at most two test files at once.
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: [CLUSTER_TESTS] } },
      // A project of its own so its global setup (a real local Kubernetes, test/setup/k8s.ts)
      // runs only when a test file that needs it is part of the run.
      { extends: true, test: { name: 'k8s', include: [CLUSTER_TESTS], globalSetup: ['test/setup/k8s.ts'] } },
    ],
  },
});
