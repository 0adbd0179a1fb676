// What tests use to reach the services global.ts started.
import { inject } from 'vitest';

export const temporalAddress = (): string => inject('temporalAddress');
export const s3Endpoint = (): string => inject('s3Endpoint');

/** S3 client settings for moto: any credentials, path-style addressing. */
export const s3ClientConfig = () => ({
  endpoint: s3Endpoint(),
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
