// Large payloads (a few-thousand-step pipeline's status, its continue-as-new state) are
// gzipped so they stay under Temporal's 2 MB payload limit; small ones stay plain JSON,
// readable in the Temporal UI. Every client and worker of a deployment uses this codec.
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';

const { temporal } = proto;
import { gunzipSync, gzipSync } from 'node:zlib';

const ENCODING = 'binary/gzip';
const THRESHOLD = 64 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

export class GzipCodec implements PayloadCodec {
  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const bytes = temporal.api.common.v1.Payload.encode(p).finish();
      if (bytes.length < THRESHOLD) return p;
      return { metadata: { encoding: enc.encode(ENCODING) }, data: gzipSync(bytes) };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      const e = p.metadata?.encoding;
      if (!e || dec.decode(e) !== ENCODING || !p.data) return p;
      return temporal.api.common.v1.Payload.decode(gunzipSync(p.data)) as Payload;
    });
  }
}

export const dataConverter: DataConverter = { payloadCodecs: [new GzipCodec()] };
