// Record keys: every key of the ArtifactStore's JSON records is built here, so the layout is
// written down once and a reader (gc, the CLI, the run page) and its writer cannot drift apart.
//
//   runs/<runId>/lineage                   the LineageDoc (activities/lineage/)
//   runs/<runId>/report                    { markdown }
//   index/runs/<runId>                     RunIndexEntry (listing runs; written last)
//   index/produced/<digest>/<runId>        the run's steps with that digest as an output
//   index/consumed/<digest>/<runId>        the run's steps with that digest as an input
//   index/digest-prefix/<12 hex>/<digest>  { digest } (a 12+ hex prefix resolved by one listing)
//   index/branch/<32 hex>/<time>.<conclusion>.<commit>.<runId>   runs by repository, pipeline, branch
//   cache/<key hex>                        CachedResult of one cache key
//   cache-latest/<pipeline>/<step>         LatestRecord: the step's last success (to explain a miss)
//   kubernetes/results/<job>/<exec run>    what a pod agent uploaded
//   logs/live/…, agent/package/…, ingest/s3/…, githost/…   built beside their records
//     (runner/livelog.ts, ec2/agentpackage.ts, store/ingest.ts, githost/records.ts)
//
// Keys become file paths (local) and object keys (S3): only a small alphabet, no
// empty, `.` or `..` segment, so a key can never leave the records folder.
import { createHash } from 'node:crypto';

const SEGMENT = '[A-Za-z0-9._:-]+';
const KEY_RE = new RegExp(`^${SEGMENT}(/${SEGMENT})*$`);
const PREFIX_RE = new RegExp(`^(${SEGMENT}/)*[A-Za-z0-9._:-]*$`);
const MAX_KEY_LENGTH = 700;

function badSegment(segment: string): boolean {
  return segment === '..' || segment === '.';
}

export function assertRecordKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH || !KEY_RE.test(key) || key.split('/').some(badSegment)) {
    throw new Error(
      `invalid record key ${JSON.stringify(key)}: use segments of [A-Za-z0-9._:-] joined by "/", ` +
        `without "." or ".." segments (at most ${MAX_KEY_LENGTH} characters)`,
    );
  }
}

/**
 * A listing prefix: whole segments ending in "/", then optionally the start of one more
 * segment (`index/produced/sha256:ab` lists every key beginning with that text).
 */
export function assertRecordPrefix(prefix: unknown): asserts prefix is string {
  const whole = typeof prefix === 'string' ? prefix.split('/').slice(0, -1) : [];
  if (
    typeof prefix !== 'string' ||
    prefix.length > MAX_KEY_LENGTH ||
    !PREFIX_RE.test(prefix) ||
    whole.some(badSegment)
  ) {
    throw new Error(
      `invalid record prefix ${JSON.stringify(prefix)}: use segments of [A-Za-z0-9._:-] joined by "/", ` +
        `without "." or ".." segments`,
    );
  }
}

/** Every index record (derived from lineage documents, so never a gc root) starts with this. */
export const INDEX_PREFIX = 'index/';
/** Run index entries: `index/runs/<runId>`. */
export const RUN_INDEX_PREFIX = `${INDEX_PREFIX}runs/`;
/** Digest-prefix index entries: `index/digest-prefix/<hex>/<digest>`. */
export const DIGEST_PREFIX_INDEX_PREFIX = `${INDEX_PREFIX}digest-prefix/`;
/** Hex digits of a digest that the prefix index files it under: the shortest prefix a query may give. */
export const MIN_PREFIX_HEX = 12;
/** Cache records: `cache/<key hex>`. */
export const CACHE_PREFIX = 'cache/';

const hexOf = (digest: string): string => digest.replace(/^sha256:/, '');

/** `runs/<runId>/lineage`: the run's lineage document. */
export const lineageKeyOf = (runId: string): string => `runs/${runId}/lineage`;
/** `runs/<runId>/report`: the run's Markdown report, `{ markdown }`. */
export const reportKeyOf = (runId: string): string => `runs/${runId}/report`;
/** The run a `runs/<runId>/…` key belongs to; undefined for any other key. */
export const runIdOfKey = (key: string): string | undefined => /^runs\/([^/]+)\//.exec(key)?.[1];
/** The run whose lineage document `key` is; undefined for any other key. */
export const runIdOfLineageKey = (key: string): string | undefined => /^runs\/([^/]+)\/lineage$/.exec(key)?.[1];

/** `index/runs/<runId>`: the run's RunIndexEntry. */
export const runIndexKey = (runId: string): string => `${RUN_INDEX_PREFIX}${runId}`;
/** Listing prefix of the runs whose steps output `digest`. */
export const producedIndexPrefix = (digest: string): string => `${INDEX_PREFIX}produced/${digest}/`;
/** Listing prefix of the runs whose steps took `digest` as an input. */
export const consumedIndexPrefix = (digest: string): string => `${INDEX_PREFIX}consumed/${digest}/`;
/** Listing prefix of the digests whose hex starts with `hex` (MIN_PREFIX_HEX digits of it are used). */
export const digestPrefixIndexPrefix = (hex: string): string =>
  `${DIGEST_PREFIX_INDEX_PREFIX}${hex.slice(0, MIN_PREFIX_HEX)}/`;
/** `index/digest-prefix/<first 12 hex>/<digest>`: lets a digest prefix find `digest`. */
export const digestPrefixIndexKey = (digest: string): string => `${digestPrefixIndexPrefix(hexOf(digest))}${digest}`;
/**
 * Listing prefix of a branch's runs of one pipeline: `index/branch/<32 hex>/`, the hex a
 * SHA-256 of repository, pipeline and branch (any text, so hashed into the key alphabet).
 */
export const branchIndexPrefix = (repo: string, pipeline: string, branch: string): string =>
  `${INDEX_PREFIX}branch/${createHash('sha256').update(`${repo}\n${pipeline}\n${branch}`).digest('hex').slice(0, 32)}/`;

/** `cache/<hex>`: the CachedResult of cache key `key` (`sha256:<hex>` or bare hex). */
export const cacheRecordKey = (key: string): string => `${CACHE_PREFIX}${hexOf(key)}`;
/** `cache-latest/<pipeline>/<step>`: the last successful execution of a pipeline's step, to say what changed on a miss. */
export const latestRecordKey = (pipeline: string, step: string): string => `cache-latest/${pipeline}/${step}`;

/** `kubernetes/results/<job>/<exec run id>`: where the pod agent of that job leaves its UploadResult. */
export const kubernetesResultKey = (job: string, execRunId: string): string => `kubernetes/results/${job}/${execRunId}`;

/**
 * A stored record that is not what Trainyard wrote there (not JSON, or JSON of another shape):
 * changed outside Trainyard. The message names it, where it is, and what to do.
 */
export class DamagedRecord extends Error {
  /** `problem` completes "the store's record KEY (WHERE) …", e.g. "is not valid JSON: …". */
  constructor(
    readonly key: string,
    readonly where: string,
    problem: string,
  ) {
    super(
      `the store's record ${key} (${where}) ${problem}. It was changed outside Trainyard; delete it (a step's cache entry is then made again by its next run)`,
    );
    this.name = 'DamagedRecord';
  }
}

/**
 * Parses a record's text; `where` names it for the user (a file path or an s3:// URI).
 * Throws DamagedRecord when the text is not JSON (a hand edit, a disk filled mid-write by
 * another tool): retrying will not mend it.
 */
export function parseRecord<T>(text: string, key: string, where: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new DamagedRecord(key, where, `is not valid JSON: ${(err as Error).message}`);
  }
}
