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
      // retry: 1 is a stopgap: on a loaded 2-core CI machine the upload sidecar of a step pod
      // has twice been SIGKILLed at the end of its grace time (exit 137) before storing a
      // finished step's outputs, cause not yet found (see issue 12's note). A behaviour that is
      // broken still fails both attempts.
      { extends: true, test: { name: 'k8s', include: [CLUSTER_TESTS], globalSetup: ['test/setup/k8s.ts'], retry: 1 } },
    ],
  },
});
