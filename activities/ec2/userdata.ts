// Renders the cloud-init user data that turns a fresh instance into a runner agent on its
// own task queue: install-agent.sh fetches the agent package from the store with the
// instance profile and checks its SHA-256, run-agent.sh starts it. The scripts and units live in templates/cloud-init/; this only fills in
// values. Everything filled in is checked against a narrow character set first, because
// these values end up in a shell environment: nothing here ever comes from repo content
// unchecked, and no credential is ever written (the instance profile gives access).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { AgentSettings } from './types.js';

/** EC2's limit on user data, before base64. */
export const USER_DATA_LIMIT = 16 * 1024;

const TEMPLATE_DIR = fileURLToPath(new URL('../../templates/cloud-init/', import.meta.url));

export interface UserDataParams {
  queue: string;
  region: string;
  agent: AgentSettings;
}

/** Safe inside a systemd EnvironmentFile and inside double quotes in sh. */
const SAFE = /^[A-Za-z0-9@%+=:,./_~^-]+$/;

const SCRIPTS = ['install-agent.sh', 'run-agent.sh', 'spot-watch.sh', 'idle-watch.sh'] as const;
const UNITS = ['trainyard-idle-watch.service', 'trainyard-spot-watch.service', 'trainyard-agent.service'] as const;

/**
 * The #cloud-config document (≤ 16 KiB) for a host whose agent polls `p.queue`. The agent
 * package must be resolved (p.agent.agentPackage and agentPackageSha256 set; see
 * agentpackage.ts). Throws when a value has characters outside a safe set, when the package
 * is not resolved, or when the document is over EC2's limit.
 */
export function renderUserData(p: UserDataParams): string {
  if (!p.agent.agentPackage || !p.agent.agentPackageSha256) {
    throw new Error(
      'user data: the agent package is not resolved (an s3:// or https:// URL and its SHA-256); publish it first (publishAgentPackage)',
    );
  }
  if (!/^[0-9a-f]{64}$/.test(p.agent.agentPackageSha256))
    throw new Error(`user data: TRAINYARD_AGENT_PACKAGE_SHA256 "${p.agent.agentPackageSha256}" is not 64 hex digits`);
  const env: Record<string, string> = {
    TRAINYARD_AGENT_QUEUE: p.queue,
    TRAINYARD_REGION: p.region,
    // The agent's S3 client (the store) takes its region from here; credentials from the instance profile.
    AWS_REGION: p.region,
    TEMPORAL_ADDRESS: p.agent.temporalAddress,
    TEMPORAL_NAMESPACE: p.agent.temporalNamespace,
    TEMPORAL_TLS: p.agent.temporalTls ? 'true' : 'false',
    TRAINYARD_STORE: p.agent.storeLocation,
    TRAINYARD_AGENT_PACKAGE: p.agent.agentPackage,
    TRAINYARD_AGENT_PACKAGE_SHA256: p.agent.agentPackageSha256,
    TRAINYARD_NODE_VERSION: p.agent.nodeVersion,
    TRAINYARD_CONTAINER_CLI: 'docker',
    TRAINYARD_IDLE_POWEROFF_SECONDS: String(p.agent.idlePoweroffSeconds),
    TRAINYARD_SPOT_POLL_SECONDS: String(p.agent.spotPollSeconds),
  };
  if (p.agent.temporalApiKeySsmParameter) env.TRAINYARD_TEMPORAL_API_KEY_SSM = p.agent.temporalApiKeySsmParameter;
  // Step secrets: only where to find them; the agent reads the values with the instance profile.
  if (p.agent.secretsSsm) {
    env.TRAINYARD_SECRETS_SSM_PREFIX = p.agent.secretsSsm.prefix;
    if (p.agent.secretsSsm.region) env.TRAINYARD_SECRETS_SSM_REGION = p.agent.secretsSsm.region;
    if (p.agent.secretsSsm.endpoint) env.TRAINYARD_SECRETS_SSM_ENDPOINT = p.agent.secretsSsm.endpoint;
  }
  for (const [k, v] of Object.entries(env)) {
    if (!SAFE.test(v))
      throw new Error(`user data: ${k} value ${JSON.stringify(v)} has characters outside [A-Za-z0-9@%+=:,./_~^-]`);
  }
  if (!/^v\d+\.\d+\.\d+$/.test(p.agent.nodeVersion))
    throw new Error(`user data: Node.js version "${p.agent.nodeVersion}" must look like v20.18.1`);

  const files = [
    {
      path: '/etc/trainyard/agent.env',
      permissions: '0644',
      content: Object.entries(env)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    },
    ...SCRIPTS.map((f) => ({ path: `/opt/trainyard/${f}`, permissions: '0755', content: template(f) })),
    ...UNITS.map((f) => ({ path: `/etc/systemd/system/${f}`, permissions: '0644', content: template(f) })),
  ];
  const doc = {
    write_files: files,
    runcmd: [
      ['systemctl', 'daemon-reload'],
      // The idle deadline first: even a host whose agent never installs powers itself off.
      ['systemctl', 'enable', '--now', ...UNITS],
    ],
  };
  const text = `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
  const size = Buffer.byteLength(text);
  if (size > USER_DATA_LIMIT) throw new Error(`user data is ${size} bytes; EC2 allows ${USER_DATA_LIMIT}`);
  return text;
}

function template(name: string): string {
  return readFileSync(TEMPLATE_DIR + name, 'utf8');
}
