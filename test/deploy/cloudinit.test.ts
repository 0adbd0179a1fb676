// A runner agent without an npm release: the control worker publishes this version's agent
// package to the S3 store (moto), a launched host's user data names it by digest, and the
// cloud-init files run for real in a podman container that stands in for the AMI
// (test/fixtures/images/build-ec2-host.sh: busybox, GNU tar, python3 + the AWS CLI, Node):
// install-agent.sh fetches the package with the "instance profile" (moto's IMDS answers the
// credential lookups of both the AWS CLI and the agent), checks its SHA-256, and run-agent.sh
// starts the agent, which polls its task queue on the test's Temporal dev server. The
// container shares this machine's network, so 127.0.0.1 is the test's Temporal and moto.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DescribeInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeActivitiesFor } from '../../app/compute/activities.js';
import { loadComputeConfig } from '../../app/compute/config.js';
import { buildAgentPackage, packageRecordKey, publishAgentPackage, trainyardVersion, type AgentPackageRef } from '../../activities/ec2/agentpackage.js';
import type { AgentSettings, ProvisionHostResult } from '../../activities/ec2/types.js';
import { renderUserData } from '../../activities/ec2/userdata.js';
import { resolveContainerCli } from '../../activities/container/cli.js';
import { createStore } from '../../activities/store/factory.js';
import type { ArtifactStore } from '../../activities/store/types.js';
import { CREDENTIALS, REGION, deploymentName, motoClients, motoEnv, motoSubnets } from '../ec2/moto.js';
import { s3ClientConfig, s3Endpoint, temporalAddress } from '../setup/services.js';

const run = promisify(execFile);
const HOST_IMAGE = 'localhost/trainyard-ec2-host:1';
const buildHost = fileURLToPath(new URL('../fixtures/images/build-ec2-host.sh', import.meta.url));

let scratch: string;
let packageFile: string;
let store: ArtifactStore;
let storeLocation: string;
let cli: { command: string; runFlags: string[] };
const containers: string[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'trainyard-cloudinit-'));
  const bucket = `agent-${randomUUID().slice(0, 8)}`;
  await new S3Client(s3ClientConfig()).send(new CreateBucketCommand({ Bucket: bucket }));
  storeLocation = `s3://${bucket}/store`;
  store = createStore(storeLocation, { s3: s3ClientConfig() });
  cli = await resolveContainerCli(process.env);
  // Both at once: the package build (esbuild, tar) and the host image (pip, podman import).
  const [pkg] = await Promise.all([
    buildAgentPackage(join(scratch, 'trainyard-agent.tar.gz')),
    run('bash', [buildHost, cli.command], { timeout: 600_000 }),
  ]);
  packageFile = pkg.file;
}, 900_000);

afterAll(async () => {
  for (const c of containers) await run(cli.command, ['rm', '-f', '-t', '0', c]).catch(() => undefined);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function agentSettings(pkg: Pick<AgentPackageRef, 'uri' | 'sha256'>): AgentSettings {
  return {
    temporalAddress: temporalAddress(),
    temporalNamespace: 'default',
    temporalTls: false,
    storeLocation,
    agentPackage: pkg.uri,
    agentPackageSha256: pkg.sha256,
    nodeVersion: 'v20.18.1',
    idlePoweroffSeconds: 1800,
    spotPollSeconds: 5,
  };
}

interface Boot {
  /** Arguments of `podman run` after the flags: the image and the command systemd would run. */
  args: string[];
  mounts: string[];
}

/**
 * What systemd does with the rendered user data, as a container: the files at their paths
 * (the scripts read-only, /opt/trainyard and /var/lib/trainyard left writable), the unit's
 * EnvironmentFile and PATH, then ExecStartPre and ExecStart as they are written in the unit.
 */
function bootFrom(userData: string, name: string): Boot {
  const doc = parse(userData) as { write_files: { path: string; content: string }[] };
  const dir = join(scratch, name);
  const mounts: string[] = [];
  for (const f of doc.write_files) {
    const local = join(dir, f.path);
    mkdirSync(dirname(local), { recursive: true });
    writeFileSync(local, f.content, { mode: f.path.endsWith('.sh') ? 0o755 : 0o644 });
    mounts.push('-v', `${local}:${f.path}:ro`);
  }
  const unit = doc.write_files.find((f) => f.path.endsWith('/trainyard-agent.service'))!.content;
  const key = (k: string): string => {
    const m = new RegExp(`^${k}=(.+)$`, 'm').exec(unit);
    if (!m) throw new Error(`trainyard-agent.service has no ${k}=`);
    return m[1]!;
  };
  const path = key('Environment').replace(/^PATH=/, '');
  // A stand-in for the Docker CLI (no engine runs in this container): the agent checks that
  // one is there and lists its leftover containers at start; nothing here runs a step.
  const docker = join(dir, 'docker');
  writeFileSync(docker, '#!/bin/sh\ncase "$1" in --version) echo "Docker version 27.0.0, build stand-in";; ps|info) ;; *) echo "no engine in this test host" >&2; exit 1;; esac\n', { mode: 0o755 });
  mounts.push('-v', `${docker}:/usr/local/bin/docker:ro`);
  const script = `set -a; . ${key('EnvironmentFile')}; set +a; export PATH=${path}; ${key('ExecStartPre')} && exec ${key('ExecStart')}`;
  return { mounts, args: [HOST_IMAGE, 'sh', '-c', script] };
}

/** The host's own credentials and endpoints: an instance profile (moto's IMDS) and moto for S3. */
const hostEnv = (): string[] => [
  '-e', `AWS_EC2_METADATA_SERVICE_ENDPOINT=${s3Endpoint()}`,
  '-e', `AWS_ENDPOINT_URL_S3=${s3Endpoint()}`,
  '-e', `TRAINYARD_S3_ENDPOINT=${s3Endpoint()}`,
];

async function pollersOf(conn: Connection, queue: string): Promise<string[]> {
  const r = await conn.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: queue, kind: 1 }, taskQueueType: 2 });
  return (r.pollers ?? []).map((p) => p.identity ?? '');
}

async function logsOf(name: string): Promise<string> {
  const r = await run(cli.command, ['logs', name]).catch((e: { stdout?: string; stderr?: string }) => e);
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

describe('the agent package', () => {
  it('is published by a control worker on start, once per digest, and named by digest in the user data of the hosts it launches', async () => {
    const deployment = deploymentName();
    const clients = motoClients();
    const subnets = await motoSubnets(clients.ec2);
    process.env.TRAINYARD_S3_ENDPOINT = s3Endpoint();
    process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey;
    // No TRAINYARD_AGENT_PACKAGE: the worker publishes its own (here the image's prebuilt file).
    const env = { ...motoEnv(subnets, deployment), TRAINYARD_AGENT_STORE: storeLocation, TRAINYARD_AGENT_PACKAGE_FILE: packageFile };
    delete (env as Record<string, string | undefined>).TRAINYARD_AGENT_PACKAGE;
    delete (env as Record<string, string | undefined>).TRAINYARD_AGENT_PACKAGE_SHA256;
    const cfg = loadComputeConfig(env);
    // The agent store is the test run's moto: app/worker.ts passes the S3 settings the same way.
    const acts = computeActivitiesFor(cfg, { credentials: CREDENTIALS, pollMs: 500, s3: s3ClientConfig() });
    const version = await trainyardVersion();
    const deadline = Date.now() + 120_000;
    let rec: AgentPackageRef | undefined;
    while (!(rec = await store.getRecord<AgentPackageRef>(packageRecordKey(version))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    const sha = (await run('sha256sum', [packageFile])).stdout.slice(0, 64);
    expect(rec).toMatchObject({ sha256: sha, version, uri: store.uriOf(`sha256:${sha}`) });
    expect(await store.has(`sha256:${sha}`)).toBe(true);
    // A second worker of the same version finds the same blob: same digest, same URI.
    expect(await publishAgentPackage(store, { file: packageFile })).toMatchObject({ sha256: sha, uri: rec!.uri });

    const launched: ProvisionHostResult = await new MockActivityEnvironment().run(acts.computeProvisionHost, {
      runId: 'r1', workflowId: 'w1', step: 'train', attempt: 1, boot: 1, machineClass: 'gpu',
      spec: { instance: ['g5.xlarge'], gpus: 1, spot: false, on_demand_fallback: true, disk_gb: 50 },
      queue: 'trainyard-host-test', leaseUntil: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const ud = await clients.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: launched.instanceId, Attribute: 'userData' }));
    const text = Buffer.from(ud.UserData?.Value ?? '', 'base64').toString('utf8');
    expect(text).toContain(`TRAINYARD_AGENT_PACKAGE=${rec!.uri}\n`);
    expect(text).toContain(`TRAINYARD_AGENT_PACKAGE_SHA256=${sha}\n`);
  });
});

describe('cloud-init on a host', () => {
  it('installs the agent package from the store with the instance profile, checks its digest, and starts the agent polling its queue', async () => {
    const pkg = await publishAgentPackage(store, { file: packageFile });
    const queue = `trainyard-host-${randomUUID().slice(0, 8)}`;
    const userData = renderUserData({ queue, region: REGION, agent: agentSettings(pkg) });
    const name = `trainyard-cloudinit-${randomUUID().slice(0, 8)}`;
    const boot = bootFrom(userData, name);
    containers.push(name);
    await run(cli.command, ['run', '-d', '--name', name, ...cli.runFlags, '--network', 'host', ...hostEnv(), ...boot.mounts, ...boot.args]);
    const conn = await Connection.connect({ address: temporalAddress() });
    try {
      const deadline = Date.now() + 180_000;
      let pollers: string[] = [];
      while (Date.now() < deadline) {
        pollers = await pollersOf(conn, queue);
        if (pollers.length > 0) break;
        const state = (await run(cli.command, ['inspect', '--format', '{{.State.Status}}', name])).stdout.trim();
        if (state === 'exited') break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const logs = await logsOf(name);
      expect(pollers, logs).toHaveLength(1);
      expect(logs).toContain(`installed agent package sha256:${pkg.sha256} (${pkg.version})`);
      expect(logs).toMatch(/"msg":"runner agent ready"/);
      // The one it runs is the package from the store, unpacked in a folder named by its digest.
      const link = (await run(cli.command, ['exec', name, 'readlink', '/opt/trainyard/agent'])).stdout.trim();
      expect(link).toBe(`agent-${pkg.sha256}`);
    } finally {
      await conn.close();
      await run(cli.command, ['rm', '-f', '-t', '5', name]);
    }
  });

  it('refuses a package whose bytes are not the digest in the user data: nothing is installed, no agent starts', async () => {
    const pkg = await publishAgentPackage(store, { file: packageFile });
    // Someone with write access to the bucket swaps the object behind the digest's key.
    const tampered = `s3://${storeLocation.slice(5).split('/')[0]}/store/agent/tampered.tar.gz`;
    const body = readFileSync(packageFile);
    body.writeUInt8(body.readUInt8(body.length - 100) ^ 0xff, body.length - 100);
    await new S3Client(s3ClientConfig()).send(new PutObjectCommand({ Bucket: tampered.slice(5).split('/')[0]!, Key: 'store/agent/tampered.tar.gz', Body: body }));
    const queue = `trainyard-host-${randomUUID().slice(0, 8)}`;
    const userData = renderUserData({ queue, region: REGION, agent: agentSettings({ uri: tampered, sha256: pkg.sha256 }) });
    const name = `trainyard-cloudinit-${randomUUID().slice(0, 8)}`;
    const boot = bootFrom(userData, name);
    containers.push(name);
    const out = await run(cli.command, ['run', '--name', name, ...cli.runFlags, '--network', 'host', ...hostEnv(), ...boot.mounts, ...boot.args], { timeout: 180_000 })
      .then((r) => ({ code: 0, text: r.stdout + r.stderr }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, text: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
    expect(out.code).not.toBe(0);
    expect(out.text).toContain(`does not have SHA-256 ${pkg.sha256}`);
    expect(out.text).not.toContain('runner agent ready');
    const conn = await Connection.connect({ address: temporalAddress() });
    try {
      expect(await pollersOf(conn, queue)).toEqual([]);
    } finally {
      await conn.close();
    }
    await run(cli.command, ['rm', '-f', name]);
  });
});
