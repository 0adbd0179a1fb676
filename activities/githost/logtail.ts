// The end of a step's log from the store, streamed so a multi-gigabyte log costs only the
// bytes kept.
import type { ArtifactStore } from '../store/types.js';
import { tailLines } from './text.js';

export async function readLogTail(
  store: ArtifactStore,
  digest: string,
  maxLines = 80,
  maxBytes = 60_000,
): Promise<string> {
  const stream = await store.openRead(digest);
  let kept = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    kept = Buffer.concat([kept, chunk]);
    if (kept.length > maxBytes * 2) kept = kept.subarray(kept.length - maxBytes * 2);
  }
  return tailLines(kept.toString('utf8').replace(/^\uFFFD+/, ''), maxLines, maxBytes);
}
