// The artifact store's public surface.
export type { ArtifactStore, DirManifest, ManifestEntry } from './types.js';
export { LocalStore } from './local.js';
export { S3Store, type S3StoreConfig } from './s3.js';
export { createStore } from './factory.js';
export { ingestUri, ingestRecordKey, type IngestRecord } from './ingest.js';
export { assertDigest, isDigest, sha256Bytes, sha256File } from './digest.js';
export { assertRecordKey, assertRecordPrefix } from './keys.js';
export { canonicalJson } from './canonical.js';
export { parseManifest, MANIFEST_KIND } from './manifest.js';
export { resolveS3Config, parseS3Uri } from './s3config.js';
