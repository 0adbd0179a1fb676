// Record keys become file paths (local) and object keys (S3): only a small alphabet, no
// empty, `.` or `..` segment, so a key can never leave the records folder.
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
