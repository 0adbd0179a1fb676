// The tests' fake GitHub (fake-github.ts: the REST API checked against GitHub's OpenAPI
// description) as a standalone server, for trying `trainyard serve` by hand without
// github.com (docs/deploying.md, *Trying it on one machine*):
//
//   node --import tsx test/githost/fake-github-server.ts --out DIR [--port N] [--files DIR]
//        [--repo OWNER/NAME] [--user LOGIN]
//
// It makes a GitHub App (a fresh RSA key), one installation and one repository whose commits
// hold the files of --files (default: a one-step busybox pipeline), and a pull request #1.
// Into --out it writes `app.pem`, `github.env` (the GITHUB_* settings for serve and the
// workers), and two webhook bodies built with the tests' payload builders (payloads.ts):
// `push.json` (the commit pushed to main) and `comment.json` (`/train <pipeline>` on PR #1).
// It prints those settings and serves until SIGINT/SIGTERM, then prints every request that did
// not fit GitHub's OpenAPI description and exits 1 if there was one.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FakeGitHub, TOKEN, type FakeRepo } from './fake-github.js';
import { commentPayload, pushPayload } from './payloads.js';

const INSTALLATION = 42;
const APP_ID = 77;

const DEFAULT_FILES: Record<string, string> = {
  '.trainyard/hello.yaml': `name: hello
on:
  push: { branches: [main] }
  comment: true
steps:
  hello:
    image: localhost/trainyard-busybox:1
    run: 'cat data.txt; cat data.txt > /outputs/greeting'
    outputs: [greeting]
`,
  'data.txt': 'hello from the fake GitHub\n',
};

/** Every file under `dir` (text), `.git/` left out; path → content. */
function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

function usage(message: string): never {
  process.stderr.write(
    `fake-github-server: ${message}\n` +
      'usage: node --import tsx test/githost/fake-github-server.ts --out DIR [--port N] [--files DIR] [--repo OWNER/NAME] [--user LOGIN]\n',
  );
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    port: { type: 'string', default: '0' },
    files: { type: 'string' },
    repo: { type: 'string', default: 'octo-org/models' },
    user: { type: 'string', default: 'alice' },
  },
});
if (!values.out) usage('--out DIR is required (where app.pem, github.env and the payloads are written)');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535)
  usage(`--port must be a port number, got ${JSON.stringify(values.port)}`);
const [owner, name, ...extra] = values.repo.split('/');
if (!owner || !name || extra.length) usage(`--repo must be OWNER/NAME, got ${JSON.stringify(values.repo)}`);
const files = values.files ? readTree(resolve(values.files)) : DEFAULT_FILES;
const pipelines = Object.keys(files)
  .filter((f) => /^\.trainyard\/[^/]+\.ya?ml$/.test(f))
  .sort();
if (pipelines.length === 0) usage(`no .trainyard/*.yaml in ${values.files}`);
const pipeline = pipelines[0]!.replace(/^\.trainyard\//, '').replace(/\.ya?ml$/, '');

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const repo: FakeRepo = { id: 1001, owner, name };
const gh = new FakeGitHub(APP_ID, publicKey, repo, INSTALLATION);
gh.roles.set(values.user, 'write');
// main before the push: an empty commit; the push adds every file.
const before = gh.commit({});
const pushed = gh.commit(files);
const prHead = gh.commit({ ...files, 'pull-request.txt': 'a change on the pull request\n' });
gh.pulls.set(1, { headSha: prHead, headRepoId: repo.id, baseSha: pushed });
await gh.start(port);

const out = resolve(values.out);
mkdirSync(out, { recursive: true });
const secret = randomBytes(20).toString('hex');
const pem = join(out, 'app.pem');
writeFileSync(pem, privateKey, { mode: 0o600 });
const settings = {
  GITHUB_APP_ID: String(APP_ID),
  GITHUB_PRIVATE_KEY_FILE: pem,
  GITHUB_WEBHOOK_SECRET: secret,
  GITHUB_API_URL: gh.url,
};
writeFileSync(
  join(out, 'github.env'),
  Object.entries(settings)
    .map(([k, v]) => `${k}=${v}\n`)
    .join(''),
  { mode: 0o600 },
);
writeFileSync(
  join(out, 'push.json'),
  JSON.stringify(
    pushPayload(repo, INSTALLATION, gh.url, { before, after: pushed, changed: { added: Object.keys(files) } }),
  ),
);
writeFileSync(
  join(out, 'comment.json'),
  JSON.stringify(
    commentPayload(repo, INSTALLATION, gh.url, {
      pr: 1,
      commentId: 900_001,
      user: values.user,
      body: `/train ${pipeline}`,
    }),
  ),
);

process.stdout.write(`fake GitHub listening on ${gh.url}
repository ${owner}/${name}, installation ${INSTALLATION}, ${values.user} has write access
push.json: push of ${pushed} to main; comment.json: "/train ${pipeline}" on PR #1 (head ${prHead})
settings in ${join(out, 'github.env')}:
${Object.entries(settings)
  .map(([k, v]) => `  ${k}=${v}`)
  .join('\n')}
installation token for reading its state: token ${TOKEN}
  check runs: curl -H 'authorization: token ${TOKEN}' ${gh.url}/repos/${owner}/${name}/commits/${pushed}/check-runs
  PR comments: curl -H 'authorization: token ${TOKEN}' ${gh.url}/repos/${owner}/${name}/issues/1/comments
`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await gh.stop();
  if (gh.violations.length)
    process.stdout.write(
      `requests that do not fit GitHub's OpenAPI description:\n${gh.violations.map((v) => `  ${v}`).join('\n')}\n`,
    );
  else
    process.stdout.write(
      `fake GitHub stopped: ${gh.calls.length} requests, every one fit GitHub's OpenAPI description\n`,
    );
  process.exit(gh.violations.length ? 1 : 0);
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stop());
