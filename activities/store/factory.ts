// Which store a location string names.
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStore } from './local.js';
import { S3Store } from './s3.js';
import { parseS3Uri, resolveS3Config } from './s3config.js';
import type { ArtifactStore } from './types.js';

/**
 * `/abs/path` or `file:///abs/path` → a local folder; `s3://bucket/prefix` → S3, with the
 * client settings from `opts.s3` (an S3-compatible endpoint there: app/config.ts s3Endpoint)
 * over the SDK's own chains (`AWS_REGION`, credentials).
 */
export function createStore(location: string, opts?: { s3?: S3ClientConfig }): ArtifactStore {
  if (location.startsWith('s3://')) {
    const { bucket, key } = parseS3Uri(location);
    return new S3Store({ bucket, prefix: key, clientConfig: resolveS3Config(opts?.s3) });
  }
  if (location.startsWith('file:')) {
    let path: string;
    try {
      path = fileURLToPath(location);
    } catch (err) {
      throw new Error(`invalid store location ${JSON.stringify(location)}: ${(err as Error).message}`);
    }
    return new LocalStore(path);
  }
  if (isAbsolute(location)) return new LocalStore(location);
  throw new Error(
    `unsupported store location ${JSON.stringify(location)}: use an absolute path, file:///abs/path or s3://bucket/prefix`,
  );
}
