// S3 client settings from the environment, shared by the store and input ingestion.
import type { S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * `TRAINYARD_S3_ENDPOINT` (an S3-compatible server such as MinIO or moto; path-style
 * addressing then) and `AWS_REGION` (default us-east-1). Credentials are left to the
 * default AWS chain unless `overrides` names them.
 */
export function resolveS3Config(overrides?: S3ClientConfig): S3ClientConfig {
  const endpoint = process.env.TRAINYARD_S3_ENDPOINT;
  return {
    region: process.env.AWS_REGION || 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...overrides,
  };
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Split `s3://bucket/rest` (rest may be empty); the bucket name is checked. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  if (!uri.startsWith('s3://')) throw new Error(`not an s3:// URI: ${JSON.stringify(uri)}`);
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  if (!BUCKET_RE.test(bucket)) throw new Error(`invalid S3 bucket name ${JSON.stringify(bucket)} in ${JSON.stringify(uri)}`);
  return { bucket, key };
}
