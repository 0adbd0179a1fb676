// The artifact store the configuration names, with the S3 endpoint the environment gave: the one
// place app/ turns its settings into a store (activities/ reads no environment).
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { createStore } from '../activities/store/factory.js';
import type { ArtifactStore } from '../activities/store/types.js';
import type { ServiceSettings } from './config.js';

/** S3 client settings from the configuration: the endpoint when one is set (path-style then), else none. */
export function s3Settings(cfg: Pick<ServiceSettings, 's3Endpoint'>): S3ClientConfig {
  return cfg.s3Endpoint ? { endpoint: cfg.s3Endpoint } : {};
}

/**
 * The store at `location` (default `cfg.store`): a local folder or s3://bucket/prefix (see
 * createStore). Throws on a location createStore refuses.
 */
export function openStore(
  cfg: Pick<ServiceSettings, 's3Endpoint'> & { store: string },
  location: string = cfg.store,
): ArtifactStore {
  return createStore(location, { s3: s3Settings(cfg) });
}
