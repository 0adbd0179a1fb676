// The runner's secret settings and masking, without a container: bad settings stop the
// runner at start naming the variable; masking covers every line of a multi-line value.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadPolicy } from '../../app/intake/config.js';
import { intakePolicy } from '../../app/intake/policy.js';
import { masker, secretSourceFromEnv, SecretsMissing } from '../../activities/secrets.js';

describe('secret settings', () => {
  it('refuses an allow-list entry that is not a secret name, and an SSM prefix without a region, naming the variable', () => {
    expect(() => secretSourceFromEnv({ TRAINYARD_SECRETS_FROM_ENV: 'HF_TOKEN, TRAINYARD_X' })).toThrow(
      /^TRAINYARD_SECRETS_FROM_ENV: "TRAINYARD_X" is not a secret name/,
    );
    expect(() => secretSourceFromEnv({ TRAINYARD_SECRETS_SSM_PREFIX: 'no-slash' })).toThrow(
      /^TRAINYARD_SECRETS_SSM_PREFIX: must be a Parameter Store path/,
    );
    expect(() => secretSourceFromEnv({ TRAINYARD_SECRETS_SSM_PREFIX: '/t/' })).toThrow(
      /^TRAINYARD_SECRETS_SSM_REGION: /,
    );
  });

  it('passes on only allow-listed, non-empty variables, and says where it looked for the others', async () => {
    const source = secretSourceFromEnv({
      TRAINYARD_SECRETS_FROM_ENV: 'A,EMPTY',
      A: 'a-value',
      B: 'b-value',
      EMPTY: '',
    });
    expect(await source.fetch(['A'])).toEqual({ A: 'a-value' });
    const err = await source.fetch(['A', 'B', 'EMPTY']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretsMissing);
    expect((err as SecretsMissing).missing).toEqual(['B', 'EMPTY']);
    expect((err as Error).message).toBe(
      "secret B was not found: looked in this runner's environment (TRAINYARD_SECRETS_FROM_ENV allows only A, EMPTY) and AWS SSM Parameter Store (TRAINYARD_SECRETS_SSM_PREFIX is not set); " +
        "secret EMPTY was not found: looked in this runner's environment (TRAINYARD_SECRETS_FROM_ENV allows EMPTY, but it is unset or empty) and AWS SSM Parameter Store (TRAINYARD_SECRETS_SSM_PREFIX is not set)",
    );
  });

  it('masks every occurrence and every line of a multi-line value, the longest value first', () => {
    const mask = masker(['s3cr3t', 'line-one\nline-two', 's3cr3t-longer']);
    expect(mask('a s3cr3t-longer and s3cr3t')).toBe('a *** and ***');
    expect(mask('key: line-two')).toBe('key: ***');
    expect(mask('nothing here')).toBe('nothing here');
  });

  it('gives forks secrets only with TRAINYARD_FORK_SECRETS=allow', () => {
    expect(intakePolicy(loadPolicy({})).forkSecrets).toBe(false);
    expect(intakePolicy(loadPolicy({ TRAINYARD_FORK_SECRETS: 'allow' })).forkSecrets).toBe(true);
    expect(() => loadPolicy({ TRAINYARD_FORK_SECRETS: 'yes' })).toThrow(ConfigError);
    expect(() => loadPolicy({ TRAINYARD_FORK_SECRETS: 'yes' })).toThrow(
      /^TRAINYARD_FORK_SECRETS: must be one of allow, deny, got "yes"/,
    );
  });
});
