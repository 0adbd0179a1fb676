// Renders the least-privilege IAM policies in deploy/iam/ for one installation.
// Run: npx tsx app/compute/iam.ts orchestrator|instance KEY=VALUE...
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type PolicyName = 'orchestrator' | 'instance' | 'instance-trust';

export interface IamVars {
  AWS_REGION: string;
  ACCOUNT_ID: string;
  DEPLOYMENT: string;
  STORE_BUCKET: string;
  /** Key prefix of the store inside the bucket, without slashes at either end. */
  STORE_PREFIX: string;
  INSTANCE_ROLE_NAME: string;
  /** SSM parameter holding a Temporal API key; empty = no such statement. */
  TEMPORAL_API_KEY_PARAMETER?: string;
  /** TRAINYARD_SECRETS_SSM_PREFIX (`/trainyard/secrets/`): the hosts' agents read step secrets under it; empty = no such statement. */
  SECRETS_SSM_PREFIX?: string;
}

interface PolicyDoc {
  Version: string;
  Statement: { Sid?: string; [k: string]: unknown }[];
}

const CHECKS: Record<keyof IamVars, RegExp> = {
  AWS_REGION: /^[a-z]{2}(-[a-z]+)+-\d$/,
  ACCOUNT_ID: /^\d{12}$/,
  DEPLOYMENT: /^[A-Za-z0-9_.-]{1,64}$/,
  STORE_BUCKET: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
  // Path segments, none of them `.` or `..`.
  STORE_PREFIX: /^(?!\.{1,2}(\/|$))[A-Za-z0-9._-]+(\/(?!\.{1,2}(\/|$))[A-Za-z0-9._-]+)*$/,
  INSTANCE_ROLE_NAME: /^[\w+=,.@-]{1,64}$/,
  TEMPORAL_API_KEY_PARAMETER: /^(\/[A-Za-z0-9_.-]+)+$/,
  SECRETS_SSM_PREFIX: /^(\/[A-Za-z0-9_.-]+)+\/$/,
};

/** Variables whose statement is left out when they are not given. */
const OPTIONAL: Partial<Record<keyof IamVars, string>> = {
  TEMPORAL_API_KEY_PARAMETER: 'ReadTemporalApiKey',
  SECRETS_SSM_PREFIX: 'ReadStepSecrets',
};

export function renderIamPolicy(name: PolicyName, vars: IamVars): PolicyDoc {
  for (const [k, re] of Object.entries(CHECKS) as [keyof IamVars, RegExp][]) {
    const v = vars[k];
    if (v === undefined || v === '') {
      if (OPTIONAL[k]) continue;
      throw new Error(`${k} is required`);
    }
    if (!re.test(v)) throw new Error(`${k}: ${JSON.stringify(v)} is not valid`);
  }
  const text = readFileSync(fileURLToPath(new URL(`../../deploy/iam/${name}-policy.json`, import.meta.url)), 'utf8');
  const doc = JSON.parse(text) as PolicyDoc;
  for (const [k, sid] of Object.entries(OPTIONAL) as [keyof IamVars, string][]) {
    if (!vars[k]) doc.Statement = doc.Statement.filter((s) => s.Sid !== sid);
  }
  // Our placeholders are upper-case; IAM's own policy variables (${aws:…}) are left alone.
  const rendered = JSON.stringify(doc).replace(/\$\{([A-Z_]+)\}/g, (_, k: string) => {
    const v = vars[k as keyof IamVars];
    if (v === undefined) throw new Error(`${k} is required by deploy/iam/${name}-policy.json`);
    return v;
  });
  return JSON.parse(rendered) as PolicyDoc;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [name, ...pairs] = process.argv.slice(2);
  if (name !== 'orchestrator' && name !== 'instance' && name !== 'instance-trust') {
    process.stderr.write(
      'usage: npx tsx app/compute/iam.ts orchestrator|instance|instance-trust AWS_REGION=… ACCOUNT_ID=… DEPLOYMENT=… STORE_BUCKET=… STORE_PREFIX=… INSTANCE_ROLE_NAME=… [TEMPORAL_API_KEY_PARAMETER=/…] [SECRETS_SSM_PREFIX=/…/]\n',
    );
    process.exit(2);
  }
  const vars = Object.fromEntries(
    pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]),
  ) as unknown as IamVars;
  try {
    process.stdout.write(`${JSON.stringify(renderIamPolicy(name, vars), null, 2)}\n`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(1);
  }
}
