// S3 client settings, shared by the store and input ingestion. The endpoint comes from the
// caller (app/config.ts reads it from the environment); region and credentials from the SDK's chains.
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * The region as the SDK's standard chain resolves it (AWS_REGION, AWS_DEFAULT_REGION … the
 * profile's `region` in ~/.aws/config), else us-east-1 — an S3 store works without naming one.
 */
async function sdkRegion(): Promise<string> {
  const probe = new S3Client({});
  try {
    return await probe.config.region();
  } catch {
    return 'us-east-1';
  } finally {
    probe.destroy();
  }
}

/** Connection timeout, and the longest silence on an open request (NodeHttpHandler's socket timeout), ms. */
export const S3_TIMEOUTS_MS = { connect: 10_000, idle: 15_000 } as const;

/**
 * Region from the SDK's standard chain (default us-east-1); credentials from the default
 * AWS chain unless `overrides` names them. With an S3-compatible endpoint in `overrides`
 * (MinIO, moto: app/config.ts s3Endpoint) addressing is path-style, which such servers need.
 */
export function resolveS3Config(overrides?: S3ClientConfig): S3ClientConfig {
  return {
    region: sdkRegion,
    ...(overrides?.endpoint ? { forcePathStyle: true } : {}),
    // The SDK waits on a silent connection forever by default: a stalled S3 (or S3-compatible)
    // endpoint would hang a runner or a pod's upload agent until something kills it. A socket
    // silent this long fails the request, which the SDK then retries (up to 3 attempts).
    requestHandler: { connectionTimeout: S3_TIMEOUTS_MS.connect, requestTimeout: S3_TIMEOUTS_MS.idle },
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
  if (!BUCKET_RE.test(bucket))
    throw new Error(`invalid S3 bucket name ${JSON.stringify(bucket)} in ${JSON.stringify(uri)}`);
  return { bucket, key };
}
