// `npx vitest run -c test/replay/record.config.ts`: records the replay histories (see
// test/replay/record.ts) on the same services the tests use (a private Temporal dev server
// and moto, test/setup/global.ts). Not part of `npm test`: the histories are committed.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/setup/global.ts'],
    include: ['test/replay/record.ts'],
    pool: 'forks',
    testTimeout: 600_000,
    hookTimeout: 180_000,
  },
});
