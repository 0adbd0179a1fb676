#!/usr/bin/env node
// Runs the compiled CLI in .build/ when it was built from exactly the sources there are now
// (bin/build.js, which setup.sh runs), else the TypeScript sources directly through tsx: a
// checkout needs no build step, and an edited one never runs stale code.
// TRAINYARD_NO_BUILD=1 always runs the sources.
import { buildIsCurrent } from './buildstamp.js';

if (process.env.TRAINYARD_NO_BUILD !== '1' && buildIsCurrent()) {
  await import('../.build/app/cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../app/cli.ts');
}
