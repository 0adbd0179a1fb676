// Reads a history file in Temporal's JSON format (`temporal workflow show --output json`).
// The SDK's own historyFromJSON (@temporalio/common/lib/proto-utils) fails in this install
// with "type must be a Type": @temporalio/common and @temporalio/proto each carry their own
// copy of protobufjs 8, and protojson checks `instanceof Type` against the other copy. This is
// the same conversion with the protobufjs copy that @temporalio/proto's types come from.
import type { temporal } from '@temporalio/proto';
import { createRequire } from 'node:module';

type History = temporal.api.history.v1.IHistory;
interface ProtoJson {
  fromJson(type: unknown, json: unknown, opts: { ignoreUnknownFields: boolean }): History | null;
}
interface Patched {
  lookupType(name: string): unknown;
}

const require = createRequire(import.meta.url);
const fromProto = createRequire(require.resolve('@temporalio/proto'));
const { fromJson } = fromProto('protobufjs/ext/protojson') as ProtoJson;
const { patchProtobufRoot } = require('@temporalio/proto/lib/patch-protobuf-root') as {
  patchProtobufRoot(root: unknown): Patched;
};
const historyType = patchProtobufRoot(require('@temporalio/proto')).lookupType('temporal.api.history.v1.History');

/** The History a JSON history file holds; throws on a file that is not one. */
export function historyFromJson(json: unknown): History {
  const h = fromJson(historyType, json, { ignoreUnknownFields: true });
  if (!h?.events?.length) throw new TypeError('not a workflow history: no events');
  return h;
}
