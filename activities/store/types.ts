import type { Readable } from 'node:stream';
import type { ArtifactRef, Digest } from '../../model/types.js';

/**
 * Content-addressed artifact store. Blobs are immutable and keyed by SHA-256 of their
 * bytes; records are small mutable JSON documents (cache entries, lineage, indexes).
 * Two backends: a local folder (embedded default) and S3.
 */
export interface ArtifactStore {
  /** Human-readable location, e.g. `file:///home/u/.local/share/trainyard/store` or `s3://bucket/prefix`. */
  readonly location: string;
  /** URI of the blob with this digest. */
  uriOf(digest: Digest): string;
  has(digest: Digest): Promise<boolean>;
  /** Store a file or a directory (directories become a manifest). Streams, hashes, never re-uploads a stored digest. */
  putPath(path: string): Promise<ArtifactRef>;
  /** Store small in-memory bytes (manifests, reports). */
  putBytes(data: Uint8Array | string): Promise<ArtifactRef>;
  /** Write the artifact at `dest` (a file, or a directory rebuilt from its manifest). `dest` must not exist. */
  materialize(ref: Pick<ArtifactRef, 'digest' | 'kind'>, dest: string): Promise<void>;
  openRead(digest: Digest): Promise<Readable>;
  getBytes(digest: Digest): Promise<Buffer>;
  putRecord(key: string, value: unknown): Promise<void>;
  getRecord<T>(key: string): Promise<T | undefined>;
  /** Keys of the records under a prefix (e.g. `index/produced/sha256:ab…/`). */
  listRecords(prefix: string): Promise<string[]>;
}

/** One file of a directory manifest. */
export interface ManifestEntry {
  path: string;
  digest: Digest;
  size: number;
  mode: number;
}

export interface DirManifest {
  kind: 'trainyard.dir/v1';
  entries: ManifestEntry[];
  /**
   * Folders with nothing in them, sorted (folders that hold a file are implied by its path).
   * Absent when there are none, so a tree without empty folders keeps its earlier digest.
   */
  dirs?: string[];
}
