// The settings for stopping and for Temporal outages, checked at start like every other:
// a wrong value is refused with the variable's name and what it expects.
import { describe, expect, it } from 'vitest';
import { EnvError, loadEngineConfig } from '../../app/config.js';
import { ConfigError, loadServeConfig } from '../../app/intake/config.js';

const serveEnv = { GITLAB_TOKEN: 't', GITLAB_WEBHOOK_SECRET: 's' };

describe('TRAINYARD_SHUTDOWN_GRACE_SECONDS', () => {
  it('defaults to 20 s and takes 0 to 3600 s, for the commands that run workers and for serve', () => {
    expect(loadEngineConfig({}).shutdownGraceMs).toBe(20_000);
    expect(loadEngineConfig({ TRAINYARD_SHUTDOWN_GRACE_SECONDS: '0' }).shutdownGraceMs).toBe(0);
    expect(loadEngineConfig({ TRAINYARD_SHUTDOWN_GRACE_SECONDS: '3600' }).shutdownGraceMs).toBe(3_600_000);
    expect(loadServeConfig(serveEnv).shutdownGraceMs).toBe(20_000);
    expect(loadServeConfig({ ...serveEnv, TRAINYARD_SHUTDOWN_GRACE_SECONDS: '45' }).shutdownGraceMs).toBe(45_000);
  });

  it.each(['-1', '3601', '1.5', 'soon'])('refuses %j, naming the variable', (value) => {
    expect(() => loadEngineConfig({ TRAINYARD_SHUTDOWN_GRACE_SECONDS: value })).toThrow(EnvError);
    expect(() => loadEngineConfig({ TRAINYARD_SHUTDOWN_GRACE_SECONDS: value })).toThrow(
      /^TRAINYARD_SHUTDOWN_GRACE_SECONDS: must be/,
    );
    expect(() => loadServeConfig({ ...serveEnv, TRAINYARD_SHUTDOWN_GRACE_SECONDS: value })).toThrow(ConfigError);
    expect(() => loadServeConfig({ ...serveEnv, TRAINYARD_SHUTDOWN_GRACE_SECONDS: value })).toThrow(
      /^TRAINYARD_SHUTDOWN_GRACE_SECONDS: must be/,
    );
  });
});

describe('TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS', () => {
  it('defaults to 600 s', () => {
    expect(loadEngineConfig({}).temporalUnreachableMs).toBe(600_000);
    expect(loadEngineConfig({ TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS: '5' }).temporalUnreachableMs).toBe(5_000);
  });

  it.each(['0', 'forever', '-3'])('refuses %j, naming the variable', (value) => {
    expect(() => loadEngineConfig({ TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS: value })).toThrow(
      /^TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS: must be/,
    );
  });
});
