// Step secrets end to end: real Temporal dev server, real podman containers, AWS SSM
// Parameter Store on moto. The runner fetches the values itself; what a user could read
// afterwards (the stored log, the check text, the lineage, the report, Temporal's history)
// holds `***` or nothing, and the cache key holds the names only.
import { DeleteParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSecretSource } from '../../activities/secrets.js';
import { stepExecWorkflowId } from '../../model/contracts.js';
import type { RunStatus } from '../../model/types.js';
import { s3Endpoint } from '../setup/services.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine } from './harness.js';

const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };
const prefix = `/trainyard-test/${randomBytes(4).toString('hex')}/`;
const ssm = new SSMClient({ region: REGION, endpoint: s3Endpoint(), credentials: CREDENTIALS });
// Values no step prints by chance; the SSM one is changed by a test below.
const hfToken = `hf_${randomBytes(12).toString('hex')}`;
let wandbKey = `wandb-${randomBytes(12).toString('hex')}`;
const runnerEnv: Record<string, string | undefined> = { HF_TOKEN: hfToken, UNLISTED: 'not-allow-listed' };

const putWandb = (value: string) =>
  ssm.send(
    new PutParameterCommand({ Name: `${prefix}WANDB_API_KEY`, Value: value, Type: 'SecureString', Overwrite: true }),
  );

let engine: Engine;
beforeAll(async () => {
  await putWandb(wandbKey);
  engine = await startEngine({
    workers: {
      secrets: createSecretSource({
        fromEnv: ['HF_TOKEN'],
        env: runnerEnv,
        ssm: { prefix, region: REGION, endpoint: s3Endpoint(), credentials: CREDENTIALS },
      }),
    },
  });
}, 300_000);
afterAll(async () => {
  await engine?.stop();
  await ssm.send(new DeleteParametersCommand({ Names: [`${prefix}WANDB_API_KEY`] })).catch(() => undefined);
  ssm.destroy();
});

/** Every text in a workflow's history: strings, and payload bytes as UTF-8 (gunzipped where the codec gzipped them). */
async function historyText(workflowId: string): Promise<string> {
  const history = await engine.client.workflow.getHandle(workflowId).fetchHistory();
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (v instanceof Uint8Array) {
      const bytes = v[0] === 0x1f && v[1] === 0x8b ? gunzipSync(v) : v;
      out.push(Buffer.from(bytes).toString('utf8'));
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(history);
  return out.join('\n');
}

async function run(
  text: string,
  opts: { secretsWithheld?: string } = {},
): Promise<{ status: RunStatus; workflowId: string }> {
  const repo = engine.repo().write({ '.trainyard/vault.yaml': text });
  repo.commit();
  const { workflowId } = await engine.start(repo, '.trainyard/vault.yaml', opts);
  return { status: await engine.result(workflowId), workflowId };
}

describe('a step with secrets', () => {
  let status: RunStatus;
  let workflowId: string;
  beforeAll(async () => {
    ({ status, workflowId } = await run(`name: vault
steps:
  train:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${engine.salt}" }
    secrets: [HF_TOKEN, WANDB_API_KEY]
    run: |
      echo "token is $HF_TOKEN and key is $WANDB_API_KEY"
      echo "{\\"key\\": \\"$WANDB_API_KEY\\", \\"loss\\": 0.5}"
      echo "unlisted=[$UNLISTED]"
      printf '%s|%s' "$HF_TOKEN" "$WANDB_API_KEY" > /outputs/seen
    outputs: [seen]
  leak:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${engine.salt}" }
    secrets: [HF_TOKEN]
    run: 'echo "about to fail"; echo "$HF_TOKEN" >&2; exit 3'
`));
  }, 300_000);

  it('receives the values as environment variables, from the allow-listed environment and from SSM (SecureString)', async () => {
    const train = stepOf(status, 'train');
    expect([train.state, train.message ?? '']).toEqual(['succeeded', '']);
    const seen = (await engine.store.getBytes(train.outcome!.outputs.seen!.digest)).toString('utf8');
    expect(seen).toBe(`${hfToken}|${wandbKey}`);
  });

  it("shows *** in the stored log, the metrics and the failed step's check text, never the value", async () => {
    const log = (await engine.store.getBytes(stepOf(status, 'train').outcome!.logDigest!)).toString('utf8');
    expect(log).toContain('O token is *** and key is ***');
    // Only allow-listed variables of the runner reach a step.
    expect(log).toContain('O unlisted=[]');
    expect(log).not.toContain(hfToken);
    expect(log).not.toContain(wandbKey);
    expect(stepOf(status, 'train').outcome!.metrics!.last).toEqual({ key: '***', loss: 0.5 });
    const leak = stepOf(status, 'leak');
    expect(leak.state).toBe('failed');
    expect(leak.message).toBe('exited with code 3: ***');
    const leakLog = (await engine.store.getBytes(leak.outcome!.logDigest!)).toString('utf8');
    expect(leakLog).toBe('O about to fail\nE ***\n');
  });

  it('keeps the values out of the lineage document, the report and every Temporal history of the run', async () => {
    const lineage = JSON.stringify(await engine.store.getRecord(status.lineageKey!));
    const report = JSON.stringify(await engine.store.getRecord(status.reportKey!));
    expect(lineage).toContain('HF_TOKEN');
    const histories = [await historyText(workflowId)];
    for (const name of ['train', 'leak'])
      histories.push(await historyText(stepExecWorkflowId(stepOf(status, name).cache!.key)));
    // The histories did carry the run (names included), so their absence of values means something.
    expect(histories.every((h) => h.includes('HF_TOKEN'))).toBe(true);
    for (const text of [lineage, report, ...histories]) {
      expect(text).not.toContain(hfToken);
      expect(text).not.toContain(wandbKey);
    }
  });
});

describe('the cache key of a step with secrets', () => {
  const pipeline = (secrets: string) => `name: vault
steps:
  keyed:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${engine.salt}-key" }
    secrets: [${secrets}]
    run: 'test -n "$HF_TOKEN"'
`;

  it('holds the names: a changed value reuses the result, a changed list of names runs again', async () => {
    const first = stepOf((await run(pipeline('HF_TOKEN, WANDB_API_KEY'))).status, 'keyed');
    expect(first.state).toBe('succeeded');
    // Rotated in both sources.
    runnerEnv.HF_TOKEN = `${hfToken}-rotated`;
    wandbKey = `${wandbKey}-rotated`;
    await putWandb(wandbKey);
    const rotated = stepOf((await run(pipeline('HF_TOKEN, WANDB_API_KEY'))).status, 'keyed');
    expect([rotated.state, rotated.cache?.key]).toEqual(['cached', first.cache?.key]);
    const fewer = stepOf((await run(pipeline('HF_TOKEN'))).status, 'keyed');
    expect(fewer.state).toBe('succeeded');
    expect(fewer.cache?.key).not.toBe(first.cache?.key);
    expect(fewer.cache?.reason).toBe('ran: secret names changed (HF_TOKEN, WANDB_API_KEY → HF_TOKEN)');
    runnerEnv.HF_TOKEN = hfToken;
  }, 300_000);
});

describe('a secret that cannot be found, and a run that may not have secrets', () => {
  it('fails the step before it starts, naming the secret and where it was looked up', async () => {
    const { status } = await run(`name: vault
steps:
  needy:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${engine.salt}-missing" }
    secrets: [HF_TOKEN, NOT_THERE]
    run: 'echo should not run'
`);
    const needy = stepOf(status, 'needy');
    expect(needy.state).toBe('failed');
    expect(needy.message).toBe(
      `step needy did not start: secret NOT_THERE was not found: looked in this runner's environment (TRAINYARD_SECRETS_FROM_ENV allows only HF_TOKEN) ` +
        `and AWS SSM Parameter Store (no parameter ${prefix}NOT_THERE in ${REGION})`,
    );
    // Not retried, and no container ran: no log.
    expect(needy.outcome!.attempts).toHaveLength(1);
    expect(needy.outcome!.attempts[0]!.logDigest).toBeUndefined();
  }, 300_000);

  it("gives a run whose secrets are withheld (a fork's pull request) none: the step with secrets fails unstarted, the others run", async () => {
    const { status } = await run(
      `name: vault
steps:
  plain:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${engine.salt}-fork" }
    run: 'echo fine'
  secretive:
    image: ${BUSYBOX_IMAGE}
    env: { SALT: "${engine.salt}-fork" }
    secrets: [HF_TOKEN]
    run: 'echo "$HF_TOKEN"'
`,
      { secretsWithheld: 'runs of pull requests from forks receive no secrets' },
    );
    expect(stepOf(status, 'plain').state).toBe('succeeded');
    const s = stepOf(status, 'secretive');
    expect([s.state, s.message]).toEqual([
      'failed',
      'not started: it needs secrets (HF_TOKEN), and runs of pull requests from forks receive no secrets',
    ]);
    expect(s.outcome).toBeUndefined();
    expect(await engine.containers()).toEqual([]);
  }, 300_000);
});
