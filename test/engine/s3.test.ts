// The engine with its artifacts in S3 (moto): outputs, logs, cache records and lineage go
// to the bucket, and a second run is served from the cache there.
import { CreateBucketCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3Store } from '../../activities/store/s3.js';
import { s3ClientConfig } from '../setup/services.js';
import { deleteTestBucket } from '../store/backends.js';
import { BUSYBOX_IMAGE, startEngine, stepOf, type Engine } from './harness.js';

let engine: Engine;
const bucket = `trainyard-engine-${randomBytes(4).toString('hex')}`;
let s3: S3Client;

beforeAll(async () => {
  s3 = new S3Client(s3ClientConfig());
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  engine = await startEngine({ store: new S3Store({ bucket, prefix: 'team-a', clientConfig: s3ClientConfig() }) });
});
afterAll(async () => {
  await engine?.stop();
  await deleteTestBucket(s3, bucket);
  s3?.destroy();
});

it('runs with an S3 store and reuses from it', async () => {
  const repo = engine.repo().write({
    '.trainyard/s3.yaml': `
name: s3
steps:
  make:
    image: ${BUSYBOX_IMAGE}
    run: mkdir /outputs/dir && echo a > /outputs/dir/a.txt && echo b > /outputs/dir/b.txt
    env: { SALT: "${engine.salt}" }
    outputs: [dir]
  count:
    image: ${BUSYBOX_IMAGE}
    run: ls /inputs/dir | wc -l > /outputs/n
    env: { SALT: "${engine.salt}" }
    inputs: { dir: steps.make.outputs.dir }
    outputs: [n]
`,
  });
  repo.commit();
  const s = await engine.run(repo, '.trainyard/s3.yaml');
  expect(s.state).toBe('succeeded');
  const n = stepOf(s, 'count').outcome!.outputs.n!;
  expect(n.uri).toMatch(new RegExp(`^s3://${bucket}/team-a/`));
  expect((await engine.store.getBytes(n.digest)).toString().trim()).toBe('2');
  expect(stepOf(s, 'make').outcome!.outputs.dir!.kind).toBe('dir');
  const key = n.uri.replace(`s3://${bucket}/`, '');
  expect((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength).toBe(2);
  expect(await engine.store.getRecord(`runs/${s.runId}/lineage`)).toBeTruthy();

  const again = await engine.run(repo, '.trainyard/s3.yaml');
  expect(again.steps.map((x) => x.state)).toEqual(['cached', 'cached']);
});

it('a folder output arrives from S3 as the same tree: every file, empty folders, executable bits', async () => {
  const repo = engine.repo().write({
    '.trainyard/tree.yaml': `
name: tree
steps:
  make:
    image: ${BUSYBOX_IMAGE}
    run: mkdir -p /outputs/t/empty /outputs/t/a/b/c /outputs/t/bin && echo x > /outputs/t/a/f && printf '#!/bin/sh\\necho ran\\n' > /outputs/t/bin/tool && chmod 755 /outputs/t/bin/tool
    env: { SALT: "${engine.salt}" }
    outputs: [t]
  use:
    image: ${BUSYBOX_IMAGE}
    run: cd /inputs/t && find . | sort > /outputs/listing && /inputs/t/bin/tool >> /outputs/listing && test ! -x a/f && echo plain >> /outputs/listing
    env: { SALT: "${engine.salt}" }
    inputs: { t: steps.make.outputs.t }
    outputs: [listing]
`,
  });
  repo.commit();
  const s = await engine.run(repo, '.trainyard/tree.yaml');
  expect(stepOf(s, 'use').state).toBe('succeeded');
  expect(stepOf(s, 'make').outcome!.outputs.t!.uri).toMatch(new RegExp(`^s3://${bucket}/team-a/`));
  const listing = stepOf(s, 'use').outcome!.outputs.listing!;
  expect((await engine.store.getBytes(listing.digest)).toString()).toBe(
    ['.', './a', './a/b', './a/b/c', './a/f', './bin', './bin/tool', './empty', 'ran', 'plain', ''].join('\n'),
  );
});
