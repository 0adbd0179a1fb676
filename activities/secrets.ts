// Step secrets: the runner fetches their values itself, when an attempt starts, from the secret
// source of the host it runs on. The workflow, its Temporal payloads, the cache key and the
// lineage only ever hold the names (pipeline/types.ts StepSpec.secrets).
import type { SSMClient } from '@aws-sdk/client-ssm';
import { SECRET_NAME, SECRET_NAME_RULE } from '../pipeline/names.js';

/** What a runner can fetch secrets from. */
export interface SecretSource {
  /**
   * The value of each name, or throws SecretsMissing naming every secret not found and where it
   * was looked up. Other errors (SSM unreachable, access denied) are thrown as they are.
   */
  fetch(names: readonly string[]): Promise<Record<string, string>>;
}

/** Some secrets a step needs are in none of the runner's sources. The message names them and the places looked. */
export class SecretsMissing extends Error {
  override name = 'SecretsMissing';
  constructor(
    readonly missing: string[],
    message: string,
  ) {
    super(message);
  }
}

export interface SecretSourceSettings {
  /** Names this runner may hand out from its own environment (TRAINYARD_SECRETS_FROM_ENV). */
  fromEnv: string[];
  /** The environment those names are read from, when the attempt starts. */
  env: Record<string, string | undefined>;
  /** AWS SSM Parameter Store: `<prefix><NAME>`, a SecureString (or String) parameter. */
  ssm?: {
    prefix: string;
    region: string;
    endpoint?: string;
    credentials?: { accessKeyId: string; secretAccessKey: string };
  };
}

/** GetParameters takes at most 10 names per call (AWS SSM API reference). */
const SSM_BATCH = 10;

/**
 * The runner's secret source: first the allow-listed environment variables, then SSM
 * Parameter Store when a prefix is configured. A name in neither is missing; an empty value
 * counts as missing (an unset secret would otherwise reach the step as "" unnoticed).
 */
export function createSecretSource(settings: SecretSourceSettings): SecretSource {
  const allowed = new Set(settings.fromEnv);
  let ssm: SSMClient | undefined;
  const places = (name: string): string => {
    const where = [
      allowed.size > 0
        ? `this runner's environment (TRAINYARD_SECRETS_FROM_ENV allows ${allowed.has(name) ? `${name}, but it is unset or empty` : `only ${[...allowed].join(', ')}`})`
        : "this runner's environment (TRAINYARD_SECRETS_FROM_ENV is not set, so none is passed on)",
    ];
    where.push(
      settings.ssm
        ? `AWS SSM Parameter Store (no parameter ${settings.ssm.prefix}${name} in ${settings.ssm.region})`
        : 'AWS SSM Parameter Store (TRAINYARD_SECRETS_SSM_PREFIX is not set)',
    );
    return where.join(' and ');
  };
  return {
    async fetch(names) {
      const out: Record<string, string> = {};
      const rest: string[] = [];
      for (const name of names) {
        const value = allowed.has(name) ? settings.env[name] : undefined;
        if (value !== undefined && value !== '') out[name] = value;
        else rest.push(name);
      }
      if (rest.length > 0 && settings.ssm) {
        const s = settings.ssm;
        // Loaded on the first secret asked of SSM: every runner imports this module, and the
        // SDK client costs a `trainyard run` a noticeable part of its start-up.
        const { GetParametersCommand, SSMClient } = await import('@aws-sdk/client-ssm');
        ssm ??= new SSMClient({
          region: s.region,
          ...(s.endpoint ? { endpoint: s.endpoint } : {}),
          ...(s.credentials ? { credentials: s.credentials } : {}),
        });
        for (let i = 0; i < rest.length; i += SSM_BATCH) {
          const batch = rest.slice(i, i + SSM_BATCH);
          const r = await ssm.send(
            new GetParametersCommand({ Names: batch.map((n) => `${s.prefix}${n}`), WithDecryption: true }),
          );
          for (const p of r.Parameters ?? []) {
            const name = p.Name?.slice(s.prefix.length);
            if (name !== undefined && batch.includes(name) && p.Value !== undefined && p.Value !== '')
              out[name] = p.Value;
          }
        }
      }
      const missing = names.filter((n) => !Object.hasOwn(out, n));
      if (missing.length > 0) {
        const what = missing.map((n) => `secret ${n} was not found: looked in ${places(n)}`).join('; ');
        throw new SecretsMissing(missing, what);
      }
      return out;
    },
  };
}

/**
 * The runner's secret source from its environment. Throws an Error naming the variable at
 * fault. Settings:
 * - `TRAINYARD_SECRETS_FROM_ENV`: comma-separated names this runner hands out from its own
 *   environment (`HF_TOKEN,WANDB_API_KEY`); no other variable of the runner ever reaches a step.
 * - `TRAINYARD_SECRETS_SSM_PREFIX`: a Parameter Store path (`/trainyard/secrets/`); secret NAME
 *   is the parameter `<prefix>NAME`, read with decryption (SecureString). Region:
 *   `TRAINYARD_SECRETS_SSM_REGION`, else `AWS_REGION`/`AWS_DEFAULT_REGION`; endpoint (moto,
 *   VPC endpoints): `TRAINYARD_SECRETS_SSM_ENDPOINT`. Credentials: the default AWS chain.
 */
export function secretSourceFromEnv(env: Record<string, string | undefined>): SecretSource {
  const fromEnv = (env.TRAINYARD_SECRETS_FROM_ENV ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of fromEnv) {
    if (!SECRET_NAME.test(n))
      throw new Error(`TRAINYARD_SECRETS_FROM_ENV: ${JSON.stringify(n)} is not a secret name; ${SECRET_NAME_RULE}`);
  }
  const rawPrefix = env.TRAINYARD_SECRETS_SSM_PREFIX?.trim();
  let ssm: SecretSourceSettings['ssm'];
  if (rawPrefix) {
    // Parameter Store names: letters, digits and . - _ / ; a path starts with "/".
    if (!/^\/[A-Za-z0-9_.\/-]{0,900}$/.test(rawPrefix)) {
      throw new Error(
        `TRAINYARD_SECRETS_SSM_PREFIX: must be a Parameter Store path such as /trainyard/secrets/, got ${JSON.stringify(rawPrefix)}`,
      );
    }
    const region = env.TRAINYARD_SECRETS_SSM_REGION?.trim() || env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim();
    if (!region)
      throw new Error(
        'TRAINYARD_SECRETS_SSM_REGION: the AWS region of the Parameter Store is needed with TRAINYARD_SECRETS_SSM_PREFIX (or set AWS_REGION)',
      );
    const endpoint = env.TRAINYARD_SECRETS_SSM_ENDPOINT?.trim();
    ssm = { prefix: rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`, region, ...(endpoint ? { endpoint } : {}) };
  }
  return createSecretSource({ fromEnv, env, ...(ssm ? { ssm } : {}) });
}

/** The masked form of a secret in logs and check text, as GitHub Actions writes it. */
export const MASK = '***';

/**
 * A function that replaces every occurrence of the values in a line with `***`. A multi-line
 * value is masked line by line (a log is read a line at a time), longest first, so a value
 * that contains another is masked whole.
 */
export function masker(values: readonly string[]): (line: string) => string {
  const parts = [...new Set(values.flatMap((v) => v.split(/\r?\n/)).filter((v) => v.length > 0))].sort(
    (a, b) => b.length - a.length,
  );
  if (parts.length === 0) return (line) => line;
  return (line) => {
    let out = line;
    for (const p of parts) if (out.includes(p)) out = out.split(p).join(MASK);
    return out;
  };
}
