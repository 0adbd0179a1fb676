// Every environment setting of `trainyard run`, `worker`, `agent` and `serve`, declared once:
// its kind (type and rule), default, description, the commands that read it, older or
// standard other names, and the docs tables it appears in. Loaders read values through
// app/settings/read.ts, and app/settings/doc.ts writes the docs tables from this list.
import * as k from './kinds.js';
import type { Kind } from './kinds.js';

/** The commands that read settings. */
export type Command = 'run' | 'worker' | 'agent' | 'serve';

/** Docs tables: `<!-- settings:NAME -->` … `<!-- /settings -->` (see doc.ts for the files). */
export type Table = 'common' | 'serve' | 'ec2' | 'policy' | 'deploy' | 'kubernetes' | 'openlineage';

/** Another name accepted for a setting; both set and different is refused, naming both. */
export interface Alias {
  name: string;
  /** How the message calls it: "the older name", "Probot's name". */
  is: string;
}

export interface Setting<T = unknown> {
  kind: Kind<T>;
  /** The value when unset (or empty); absent = unset means "not configured". */
  default?: NoInfer<T>;
  /** The default as the docs show it (a computed or contextual default). */
  defaultText: string;
  description: string;
  commands: readonly Command[];
  tables: readonly Table[];
  aliases?: readonly Alias[];
  /** Never echo the value in messages (keys, tokens, secrets). */
  secret?: boolean;
}

const ALL: readonly Command[] = ['run', 'worker', 'agent', 'serve'];
const SERVICES: readonly Command[] = ['worker', 'agent', 'serve'];
const CONTROL: readonly Command[] = ['worker', 'serve'];
const older = (name: string): Alias => ({ name, is: 'the older name' });
const probot = (name: string): Alias => ({ name, is: "Probot's name" });
const tctl = (name: string): Alias => ({ name, is: "the older Temporal CLI's name" });

/** A setting; one with a default says so in its type, so reading it never gives undefined. */
function s<T>(spec: Setting<T> & { default: NoInfer<T> }): Setting<T> & { default: T };
function s<T>(spec: Setting<T>): Setting<T>;
function s<T>(spec: Setting<T>): Setting<T> {
  return spec;
}

/** A PEM file of the Temporal connection's TLS, read by every command, with the older Temporal CLI's name (`tctlName`). */
function temporalTlsFile(
  description: string,
  defaultText: string,
  tctlName: string,
): Setting<{ path: string; bytes: Buffer }> {
  return s({
    kind: k.readableFile,
    defaultText,
    description,
    commands: ALL,
    tables: ['common', 'serve'],
    aliases: [tctl(tctlName)],
  });
}

/** The settings, by their canonical variable name. */
export const SETTINGS = {
  // Temporal: the same for every command and both connections (client and worker).
  TEMPORAL_ADDRESS: s({
    kind: k.hostPort,
    defaultText: '`run`: a dev server per command; `serve`: `127.0.0.1:7233`; required by `worker`, `agent`',
    description: 'Temporal frontend',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TEMPORAL_NAMESPACE: s({
    kind: k.matching(/^[A-Za-z0-9._-]+$/, 'a namespace name (letters, digits, . _ -)'),
    default: 'default',
    defaultText: '`default`',
    description: 'Temporal namespace',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TEMPORAL_TLS: s({
    kind: k.bool,
    defaultText: 'off; on when an API key or a certificate is set',
    description: 'TLS to Temporal (Temporal Cloud, a secured cluster)',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TEMPORAL_API_KEY: s({
    kind: k.text('an API key'),
    defaultText: 'unset',
    description: 'API key for Temporal Cloud or a secured cluster; turns TLS on',
    commands: ALL,
    tables: ['common', 'serve'],
    secret: true,
  }),
  TEMPORAL_TLS_CLIENT_CERT_PATH: temporalTlsFile(
    'mTLS client certificate (PEM file); needs `TEMPORAL_TLS_CLIENT_KEY_PATH`',
    'unset',
    'TEMPORAL_TLS_CERT',
  ),
  TEMPORAL_TLS_CLIENT_KEY_PATH: temporalTlsFile(
    'private key of that certificate (PEM file)',
    'unset',
    'TEMPORAL_TLS_KEY',
  ),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: temporalTlsFile(
    'CA certificate(s) the server certificate is checked against (PEM file)',
    'system roots',
    'TEMPORAL_TLS_CA',
  ),
  TEMPORAL_TLS_SERVER_NAME: s({
    kind: k.matching(/^[A-Za-z0-9.-]{1,253}$/, 'a host name'),
    defaultText: 'the address host',
    description: 'server name the certificate must carry (SNI), when it differs from the address',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TRAINYARD_TEMPORAL_UNREACHABLE_SECONDS: s({
    kind: k.int(1, 7 * 24 * 3600),
    default: 600,
    defaultText: '`600`',
    description: 'how long `run` waits out an unreachable Temporal before it gives up',
    commands: ['run'],
    tables: ['common'],
  }),

  // Store, work folders, runs.
  TRAINYARD_STORE: s({
    kind: k.storeLocation,
    defaultText: '`~/.local/share/trainyard/store`',
    description: 'artifact store: absolute path, `file:///path` or `s3://bucket/prefix`',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  AWS_ENDPOINT_URL_S3: s({
    kind: k.httpUrl,
    defaultText: 'AWS',
    description:
      'S3-compatible endpoint (MinIO, moto); path-style addressing then. Read by the AWS SDK too, as are `AWS_ENDPOINT_URL`, `AWS_PROFILE` and the other standard AWS variables',
    commands: ALL,
    tables: ['common'],
    aliases: [older('TRAINYARD_S3_ENDPOINT')],
  }),
  AWS_REGION: s({
    kind: k.awsRegion,
    defaultText: "the profile's region, else `us-east-1` for S3",
    description: "AWS region (the SDK's standard chain: `AWS_REGION`, `AWS_DEFAULT_REGION`, `AWS_PROFILE`)",
    commands: ALL,
    tables: ['common', 'ec2'],
  }),
  TRAINYARD_CONTAINER_CLI: s({
    kind: k.text('docker, podman or a path'),
    defaultText: 'docker if its engine answers, else podman',
    description: '`docker`, `podman` or a path to either',
    commands: ['run', 'worker', 'agent', 'serve'],
    tables: ['common'],
  }),
  TRAINYARD_CONTAINER_RUN_FLAGS: s({
    kind: k.text('container run flags'),
    defaultText: 'none',
    description: 'extra `run` flags, e.g. `--network none --cap-drop ALL`',
    commands: ['run', 'worker', 'agent', 'serve'],
    tables: ['common'],
  }),
  TRAINYARD_PARALLELISM: s({
    kind: k.int(1, 1024),
    default: 4,
    defaultText: '`4`',
    description: 'most steps running at once per run',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TRAINYARD_HEARTBEAT_TIMEOUT_SECONDS: s({
    kind: k.int(2, 3600),
    default: 30,
    defaultText: '`30`',
    description: 'a runner silent this long is lost; its step retries',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TRAINYARD_SHUTDOWN_GRACE_SECONDS: s({
    kind: k.int(0, 3600),
    default: 20,
    defaultText: '`20`',
    description:
      "on SIGTERM/SIGINT a `worker`, `agent` or `serve` lets running steps finish this long, then removes their containers and hands the steps back for an immediate retry; keep it under the pod's `terminationGracePeriodSeconds`",
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TRAINYARD_HOME: s({
    kind: k.absPath,
    defaultText: '`~/.local/share/trainyard`',
    description: 'reports of `run`, and the default parent of the work folder',
    commands: ALL,
    tables: ['common'],
  }),
  TRAINYARD_WORK_DIR: s({
    kind: k.absPath,
    defaultText: '`$TRAINYARD_HOME/work`',
    description: 'scratch space: checkouts, step folders; commit archives are cached under `remote-sources/`',
    commands: ALL,
    tables: ['common', 'serve'],
    aliases: [older('TRAINYARD_WORK_ROOT')],
  }),
  TRAINYARD_LOG_LEVEL: s({
    kind: k.logLevel,
    default: 'info',
    defaultText: '`info`',
    description: 'pino log level',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TRAINYARD_CONTROL_QUEUE: s({
    kind: k.queue,
    default: 'trainyard',
    defaultText: '`trainyard`',
    description: 'task queue of the control workers: delivery and run workflows, intake and git-host activities',
    commands: ALL,
    tables: ['common', 'serve'],
  }),
  TRAINYARD_LOCAL_QUEUE: s({
    kind: k.queue,
    default: 'trainyard-local',
    defaultText: '`trainyard-local`',
    description: 'the queue every plain runner agent polls: steps without `machine:` run on whichever agent takes them',
    commands: ALL,
    tables: ['common', 'serve'],
    aliases: [older('TRAINYARD_HOST_QUEUE')],
  }),
  TRAINYARD_STATUS_INTERVAL_MS: s({
    kind: k.int(100, 3_600_000),
    default: 10_000,
    defaultText: '`10000`',
    description: 'least time between live check updates',
    commands: ALL,
    tables: ['serve'],
  }),

  // The webhook server and the git hosts (also read by workers, which publish statuses).
  GITHUB_APP_ID: s({
    kind: k.matching(/^\d+$/, 'the numeric id of the GitHub App'),
    defaultText: '—',
    description: 'the GitHub App (with its private key and webhook secret: all three, or none)',
    commands: SERVICES,
    tables: ['serve'],
    aliases: [probot('APP_ID')],
  }),
  GITHUB_PRIVATE_KEY: s({
    kind: k.text('PEM text'),
    defaultText: '—',
    description: "the App's private key, PEM text (`\\n` escapes allowed)",
    commands: SERVICES,
    tables: ['serve'],
    aliases: [probot('PRIVATE_KEY')],
    secret: true,
  }),
  GITHUB_PRIVATE_KEY_FILE: s({
    kind: k.readableFile,
    defaultText: '—',
    description: 'or a path to that `.pem` file',
    commands: SERVICES,
    tables: ['serve'],
    aliases: [probot('PRIVATE_KEY_PATH')],
  }),
  GITHUB_WEBHOOK_SECRET: s({
    kind: k.text('the webhook secret'),
    defaultText: '—',
    description: "the App's webhook secret",
    commands: SERVICES,
    tables: ['serve'],
    aliases: [probot('WEBHOOK_SECRET')],
    secret: true,
  }),
  GITHUB_API_URL: s({
    kind: k.httpUrl,
    default: 'https://api.github.com',
    defaultText: '`https://api.github.com`',
    description: 'REST root; GitHub Enterprise Server: `https://HOST/api/v3`',
    commands: SERVICES,
    tables: ['serve'],
  }),
  GHE_HOST: s({
    kind: k.matching(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, "a host name (Probot's GitHub Enterprise Server host)"),
    defaultText: 'unset',
    description: "Probot's name for a GitHub Enterprise Server host: the same as `GITHUB_API_URL=https://HOST/api/v3`",
    commands: SERVICES,
    tables: ['serve'],
  }),
  GITLAB_TOKEN: s({
    kind: k.text('a token with the api scope'),
    defaultText: '—',
    description: 'GitLab token with the `api` scope (with the webhook secret: both, or none)',
    commands: SERVICES,
    tables: ['serve'],
    secret: true,
  }),
  GITLAB_WEBHOOK_SECRET: s({
    kind: k.text('the secret token of the GitLab webhook'),
    defaultText: '—',
    description: 'secret token of the GitLab webhook',
    commands: SERVICES,
    tables: ['serve'],
    secret: true,
  }),
  GITLAB_URL: s({
    kind: k.httpUrl,
    default: 'https://gitlab.com',
    defaultText: '`https://gitlab.com`',
    description: 'self-managed GitLab root',
    commands: SERVICES,
    tables: ['serve'],
  }),
  TRAINYARD_PORT: s({
    kind: k.int(0, 65535),
    default: 3000,
    defaultText: '`3000`',
    description: 'where the server listens (`--port` overrides)',
    commands: ['serve'],
    tables: ['serve'],
  }),
  TRAINYARD_BIND: s({
    kind: k.text('an address to listen on'),
    default: '0.0.0.0',
    defaultText: '`0.0.0.0`',
    description: 'address the server listens on',
    commands: ['serve'],
    tables: ['serve'],
  }),
  TRAINYARD_PUBLIC_URL: s({
    kind: k.text('an http(s) URL or none'),
    defaultText: 'unset',
    description:
      'base URL of the server(s); check runs and statuses link to signed run pages `/runs/<id>?sig=…`. Required on a separate `trainyard worker` that has a git host (`none`: no run pages)',
    commands: CONTROL,
    tables: ['serve'],
  }),
  TRAINYARD_LINK_SECRET: s({
    kind: k.matching(/^.{16,}$/s, 'at least 16 characters (a random string, e.g. `openssl rand -hex 32`)'),
    defaultText: 'derived from the webhook secrets',
    description:
      'key of those signatures. Required, the same everywhere, when replicas and workers are separate processes (`TRAINYARD_WORKERS=none`, `trainyard worker`) and a public URL is set',
    commands: CONTROL,
    tables: ['serve'],
    secret: true,
  }),
  TRAINYARD_WORKERS: s({
    kind: k.oneOf(['in-process', 'none'] as const),
    default: 'in-process',
    defaultText: '`in-process`',
    description: '`none` when workers run elsewhere (`trainyard worker` with the same GitHub/GitLab variables)',
    commands: ['serve'],
    tables: ['serve'],
  }),
  TRAINYARD_ALLOWED_REPOS: s({
    kind: k.list(/^[A-Za-z0-9_.*?{}[\]!/-]+$/, 'owner/repo globs such as acme/*'),
    defaultText: 'all',
    description: 'comma-separated `owner/repo` globs (`acme/*`)',
    commands: CONTROL,
    tables: ['serve'],
  }),
  TRAINYARD_TRUSTED_TEAMS: s({
    kind: k.list(
      /^[A-Za-z0-9][A-Za-z0-9-]{0,38}\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/,
      'GitHub org/team-slug such as acme/ml-team',
    ),
    defaultText: 'none',
    description:
      "comma-separated GitHub `org/team-slug`; active members may `/train` and `/ok-to-train` on that org's repositories (see *Trusted teams*)",
    commands: CONTROL,
    tables: ['serve'],
  }),
  TRAINYARD_FORK_SECRETS: s({
    kind: k.oneOf(['allow', 'deny']),
    default: 'deny',
    defaultText: '`deny`',
    description: '`allow`: approved runs of pull requests from forks receive step secrets too (README, *Step secrets*)',
    commands: CONTROL,
    tables: ['serve'],
  }),
  TRAINYARD_SECRETS_FROM_ENV: s({
    kind: k.list(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'environment variable names'),
    defaultText: 'none',
    description:
      "comma-separated names of this runner's own environment variables it hands to steps that list them in `secrets:` (README, *Step secrets*)",
    commands: ['run', 'worker', 'agent', 'serve'],
    tables: ['serve'],
  }),
  TRAINYARD_SECRETS_SSM_PREFIX: s({
    kind: k.matching(/^\/[A-Za-z0-9_.\-/]*\/$/, 'a Parameter Store path such as /trainyard/secrets/'),
    defaultText: 'unset',
    description:
      'AWS SSM Parameter Store path under which the runner reads step secrets (SecureString, decrypted); credentials from the AWS chain',
    commands: ['run', 'worker', 'agent', 'serve'],
    tables: ['serve'],
  }),
  TRAINYARD_SECRETS_SSM_REGION: s({
    kind: k.awsRegion,
    defaultText: '`AWS_REGION`, `AWS_DEFAULT_REGION`',
    description: 'region of that Parameter Store',
    commands: ['run', 'worker', 'agent', 'serve'],
    tables: ['serve'],
  }),
  TRAINYARD_SECRETS_SSM_ENDPOINT: s({
    kind: k.httpUrl,
    defaultText: 'AWS',
    description: 'custom SSM endpoint for secrets (VPC endpoint, moto)',
    commands: ['run', 'worker', 'agent', 'serve'],
    tables: ['serve'],
  }),
  TRAINYARD_ACK_ONLY: s({
    kind: k.bool,
    default: false,
    defaultText: 'off',
    description: 'verify and acknowledge webhooks but start nothing (benchmark baseline)',
    commands: ['serve'],
    tables: ['serve'],
  }),
  TRAINYARD_UNVERIFIED_BODY_MB: s({
    kind: k.int(26, 16_384),
    default: 64,
    defaultText: '`64`',
    description:
      "most MiB of webhook bodies held at once before their signature is checked, over all requests (at least 26: one delivery of GitHub's largest size); past it a delivery is answered 503 with `Retry-After`",
    commands: ['serve'],
    tables: ['serve'],
  }),

  // Processes started apart (deploying.md).
  TRAINYARD_HEALTH_PORT: s({
    kind: k.port,
    defaultText: 'off',
    description: '`worker` and `agent` answer `GET /healthz` there: 200 while running, 503 while stopping',
    commands: ['worker', 'agent'],
    tables: ['deploy'],
  }),
  TRAINYARD_HEALTH_BIND: s({
    kind: k.text('an address to listen on'),
    default: '0.0.0.0',
    defaultText: '`0.0.0.0`',
    description: 'address of that health endpoint',
    commands: ['worker', 'agent'],
    tables: ['deploy'],
  }),
  TRAINYARD_TEMPORAL_METRICS_PORT: s({
    kind: k.port,
    defaultText: 'off',
    description:
      "the Temporal SDK serves its own Prometheus metrics there (on `TRAINYARD_HEALTH_BIND`); Trainyard's own series are at `/metrics` of `serve` and of the health port",
    commands: ['worker', 'agent', 'serve'],
    tables: ['deploy'],
  }),
  TRAINYARD_WORKFLOW_BUNDLE: s({
    kind: k.absPath,
    defaultText: 'built at start from `workflows/`',
    description: 'a workflow bundle built ahead; the image sets it',
    commands: ['run', 'worker', 'serve'],
    tables: ['deploy'],
  }),

  // OpenLineage events (operations.md): sent by whatever runs the control activities.
  TRAINYARD_OPENLINEAGE_URL: s({
    kind: k.httpUrl,
    defaultText: 'unset (no events)',
    description:
      'base URL of an OpenLineage HTTP endpoint (Marquez: `http://marquez:5000`); each run and step sends its RunEvents there',
    commands: ['run', 'worker', 'serve'],
    tables: ['openlineage'],
  }),
  TRAINYARD_OPENLINEAGE_ENDPOINT: s({
    kind: k.matching(/^[A-Za-z0-9._~\-/]{1,200}$/, 'a URL path such as api/v1/lineage'),
    default: 'api/v1/lineage',
    defaultText: '`api/v1/lineage`',
    description: "path under that URL the events are POSTed to (the OpenLineage clients' `OPENLINEAGE_ENDPOINT`)",
    commands: ['run', 'worker', 'serve'],
    tables: ['openlineage'],
  }),
  TRAINYARD_OPENLINEAGE_NAMESPACE: s({
    kind: k.matching(/^[A-Za-z0-9._:\/-]{1,200}$/, 'a namespace of letters, digits, . _ : / -'),
    default: 'trainyard',
    defaultText: '`trainyard`',
    description: 'namespace of the jobs (`<repo>/<pipeline>`, `<repo>/<pipeline>.<step>`)',
    commands: ['run', 'worker', 'serve'],
    tables: ['openlineage'],
  }),
  TRAINYARD_OPENLINEAGE_API_KEY: s({
    kind: k.text('an API key'),
    defaultText: 'unset',
    description: 'sent as `Authorization: Bearer <key>`; never logged',
    commands: ['run', 'worker', 'serve'],
    tables: ['openlineage'],
    secret: true,
  }),

  // EC2 (aws.md).
  TRAINYARD_EC2_SUBNETS: s({
    kind: k.list(/^subnet-[0-9a-f]{8,17}$/, 'subnet ids (subnet-…)'),
    defaultText: '— (EC2 off)',
    description: 'comma-separated subnet ids, one per AZ you want to use, in preference order',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_REGION: s({
    kind: k.awsRegion,
    defaultText: '`AWS_REGION`, `AWS_DEFAULT_REGION`',
    description: 'region of the subnets (the hosts are told it too)',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_SECURITY_GROUPS: s({
    kind: k.list(/^sg-[0-9a-f]{8,17}$/, 'security group ids (sg-…)'),
    defaultText: 'VPC default',
    description:
      'comma-separated `sg-…`; hosts need outbound access to Temporal, S3 and package registries, no inbound',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_INSTANCE_PROFILE: s({
    kind: k.matching(
      /^(arn:aws[a-z-]*:iam::\d{12}:instance-profile\/[\w+=,.@/-]+|[\w+=,.@-]{1,128})$/,
      'an instance profile name or ARN',
    ),
    defaultText: 'none',
    description: 'instance profile name or ARN (see IAM below)',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_AMI: s({
    kind: k.text('an AMI id (ami-…) or an SSM parameter name (/aws/service/…)'),
    defaultText: 'Deep Learning Base AMI parameter',
    description: 'AMI id or SSM parameter name',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_DEPLOYMENT: s({
    kind: k.matching(/^[A-Za-z0-9_.-]{1,64}$/, '1-64 of A-Z a-z 0-9 _ . -'),
    default: 'default',
    defaultText: '`default`',
    description: 'name tagged on every host; the reaper and IAM conditions are scoped to it',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_MAX_INSTANCES: s({
    kind: k.int(1, 100_000),
    default: 8,
    defaultText: '`8`',
    description: 'managed instances running at once, all runs together',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_MAX_PER_CLASS: s({
    kind: k.matching(
      /^(\d+|\s*([A-Za-z0-9_-]+|\*)\s*=\s*\d+\s*(,\s*([A-Za-z0-9_-]+|\*)\s*=\s*\d+\s*)*)$/,
      'N or class=N pairs such as gpu=2,*=3',
    ),
    defaultText: '`3`',
    description: 'hosts of one class a run may hold at once: `3`, or `gpu=2,big=1,*=3`',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_IDLE_SECONDS: s({
    kind: k.int(0, 7 * 24 * 3600),
    default: 600,
    defaultText: '`600`',
    description: 'a warm host no step took for this long is terminated',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_READY_TIMEOUT_SECONDS: s({
    kind: k.int(30, 24 * 3600),
    default: 900,
    defaultText: '`900`',
    description: 'launch → agent polling',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_LEASE_SLACK_SECONDS: s({
    kind: k.int(60, 7 * 24 * 3600),
    default: 3600,
    defaultText: '`3600`',
    description: "added to a step's timeout for the host's `lease-until` tag",
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_EC2_PRICES: s({
    kind: k.text('a path to a JSON price table'),
    defaultText: 'embedded us-east-1 estimates',
    description: 'JSON price table (below)',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  AWS_ENDPOINT_URL_EC2: s({
    kind: k.httpUrl,
    defaultText: 'AWS',
    description:
      'custom EC2 endpoint (VPC endpoint, LocalStack, moto), read by the AWS SDK; `AWS_ENDPOINT_URL_SSM` likewise for SSM. The older `TRAINYARD_EC2_ENDPOINT` sets both',
    commands: CONTROL,
    tables: ['ec2'],
    aliases: [older('TRAINYARD_EC2_ENDPOINT')],
  }),
  TRAINYARD_AGENT_TEMPORAL_ADDRESS: s({
    kind: k.hostPort,
    defaultText: '`TEMPORAL_ADDRESS`',
    description: 'Temporal frontend as the hosts reach it (not 127.0.0.1)',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_TEMPORAL_NAMESPACE: s({
    kind: k.matching(/^[A-Za-z0-9._-]+$/, 'a namespace name'),
    defaultText: '`TEMPORAL_NAMESPACE` or `default`',
    description: 'Temporal namespace of the hosts',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_TEMPORAL_TLS: s({
    kind: k.bool,
    default: false,
    defaultText: '`false`',
    description: 'TLS to Temporal from the hosts (Temporal Cloud: `true`)',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_TEMPORAL_API_KEY_SSM: s({
    kind: k.matching(/^\/[A-Za-z0-9_.\-/]{1,1000}$/, 'an SSM parameter name (/…)'),
    defaultText: 'none',
    description: 'SSM SecureString name holding a Temporal API key',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_STORE: s({
    kind: k.text('an s3://bucket/prefix store'),
    defaultText: '`TRAINYARD_STORE`',
    description: 'the artifact store, must be `s3://bucket/prefix`',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_PACKAGE: s({
    kind: k.text('an s3:// or https:// URL'),
    defaultText: "this version's package, published to the store by the worker",
    description: 'an `s3://` or `https://` URL of another agent package',
    commands: CONTROL,
    tables: ['ec2', 'deploy'],
  }),
  TRAINYARD_AGENT_PACKAGE_SHA256: s({
    kind: k.text('a SHA-256 (64 hex digits)'),
    defaultText: '—',
    description: "that package's SHA-256 (required with it); the host refuses other bytes",
    commands: CONTROL,
    tables: ['ec2', 'deploy'],
  }),
  TRAINYARD_AGENT_PACKAGE_FILE: s({
    kind: k.text('an absolute path'),
    defaultText: "the image's prebuilt package",
    description: 'the package the worker publishes instead of building one from its checkout; the image sets it',
    commands: CONTROL,
    tables: ['ec2', 'deploy'],
  }),
  TRAINYARD_AGENT_NODE_VERSION: s({
    kind: k.matching(/^v\d+\.\d+\.\d+$/, 'a Node.js version like v20.18.1'),
    default: 'v20.18.1',
    defaultText: '`v20.18.1`',
    description: 'Node.js installed when the AMI has none',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_IDLE_POWEROFF_SECONDS: s({
    kind: k.int(60, 7 * 24 * 3600),
    default: 1800,
    defaultText: '`1800`',
    description: 'on-host last resort; at least `TRAINYARD_EC2_IDLE_SECONDS + 300`',
    commands: CONTROL,
    tables: ['ec2'],
  }),
  TRAINYARD_AGENT_SPOT_POLL_SECONDS: s({
    kind: k.int(1, 3600),
    default: 5,
    defaultText: '`5`',
    description: 'spot interruption polling interval',
    commands: CONTROL,
    tables: ['ec2'],
  }),

  // Compute policy (aws.md, kubernetes.md), shared with the `/train` policy.
  TRAINYARD_ALLOWED_INSTANCE_TYPES: s({
    kind: k.list(/^[a-z0-9*?.\-[\]{},]+$/, 'instance types or globs like g5.*'),
    defaultText: 'every type in the price table',
    description: 'globs, e.g. `g5.*,g6.xlarge`',
    commands: CONTROL,
    tables: ['policy'],
  }),
  TRAINYARD_ALLOWED_MACHINE_CLASSES: s({
    kind: k.list(/^[A-Za-z0-9_-]+$/, 'machine class names'),
    defaultText: 'any',
    description: 'class names a pipeline may declare',
    commands: CONTROL,
    tables: ['policy'],
  }),
  TRAINYARD_MAX_GPUS: s({
    kind: k.int(0, 1024),
    defaultText: 'no limit',
    description: 'GPUs per machine',
    commands: CONTROL,
    tables: ['policy'],
  }),
  TRAINYARD_MAX_GPUS_PER_RUN: s({
    kind: k.int(0, 1_000_000),
    defaultText: 'no limit',
    description: 'GPUs a run can hold at once (class GPUs × per-class limit)',
    commands: CONTROL,
    tables: ['policy'],
  }),
  TRAINYARD_MAX_COST_USD: s({
    kind: k.decimal('USD'),
    defaultText: 'no limit',
    description: 'worst-case compute cost of a run: every machine step to its timeout, every retry, dearest candidate',
    commands: CONTROL,
    tables: ['policy'],
  }),
  TRAINYARD_MAX_DISK_GB: s({
    kind: k.int(1, 1_000_000),
    defaultText: 'no limit',
    description: 'root volume per machine',
    commands: CONTROL,
    tables: ['policy'],
  }),

  // Kubernetes (kubernetes.md).
  TRAINYARD_K8S_CONFIG: s({
    kind: k.readableFile,
    defaultText: 'unset (Kubernetes off)',
    description: "the YAML file of the server's Kubernetes settings and machine classes (below)",
    commands: CONTROL,
    tables: ['kubernetes'],
  }),
};

export type SettingName = keyof typeof SETTINGS;

/** The value type of a setting: its kind's output, or undefined when it has no default. */
export type SettingValue<N extends SettingName> = (typeof SETTINGS)[N] extends { default: infer T }
  ? T
  : (typeof SETTINGS)[N] extends Setting<infer T>
    ? T | undefined
    : never;
