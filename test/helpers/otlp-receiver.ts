/**
 * A stand-in for an OpenTelemetry collector's OTLP/HTTP trace intake: `POST /v1/traces` on
 * 127.0.0.1, decoding what really went over the wire so tests assert on the protocol, not on what
 * our code meant to send.
 *
 *   const receiver = await startOtlpReceiver();
 *   // OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url (the exporters append /v1/traces), or url: receiver.tracesUrl
 *   const spans = await receiver.waitForSpans((s) => s.some((x) => x.name === 'GET /accounts'));
 *
 * - `application/x-protobuf`: decoded as `opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`
 *   with protobufjs from the published .proto files of open-telemetry/opentelemetry-proto (v1.4.0,
 *   byte-identical to that tag) as vendored by the npm package @elastic/mockotlpserver. No npm package
 *   of the OpenTelemetry JS project ships the .proto files any more (the otlp-transformer has a
 *   hand-written encoder), and decoding with the sender's own code would prove nothing.
 * - `application/json`: OTLP/JSON (hex ids, enums as numbers, int64 as string or number).
 * - `Content-Encoding: gzip` is undone first (exporter option `compression: 'gzip'`).
 *
 * Both encodings are normalised to one `ReceivedSpan` shape. A failure answer (`opts.status` not
 * 2xx) records the request but not its spans: a collector that refused them has not received them.
 */
import { buffer } from 'node:stream/consumers';
import { createServer, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

export interface ReceivedSpan {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits. */
  spanId: string;
  /** Absent on a root span. */
  parentSpanId?: string;
  name: string;
  /** SpanKind of the OTLP proto: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** Array values keep strings as they are and turn other elements into strings. */
  attributes: Record<string, string | number | boolean | string[]>;
  links: { traceId: string; spanId: string }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status?: { code: number; message?: string };
  resource: Record<string, string | number | boolean>;
  /** The instrumentation scope's name. */
  scope: string;
  /** Nanoseconds since the epoch, as a decimal string (int64 does not fit a JS number). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  contentType: 'protobuf' | 'json';
}

export interface ReceivedRequest {
  /** The Content-Type header as sent. */
  contentType: string;
  /** Request headers, lowercased names (OTEL_EXPORTER_OTLP_HEADERS arrive here). */
  headers: Record<string, string>;
  spanCount: number;
}

export interface OtlpReceiver {
  /** `http://127.0.0.1:PORT`: the base for OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  /** `url + '/v1/traces'`: for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or an exporter's `url`. */
  tracesUrl: string;
  /** Every span accepted so far, in arrival order. */
  spans: ReceivedSpan[];
  /** Every POST /v1/traces, accepted or answered with a failure. */
  requests: ReceivedRequest[];
  /** Resolves with all spans so far once `predicate` holds for them; rejects after `timeoutMs` (10 s) saying what arrived. */
  waitForSpans(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

export interface OtlpReceiverOptions {
  /** HTTP status of every answer (default 200); 429/502/503/504 make the exporters retry. */
  status?: number;
  /** Hold every answer this long (a slow collector). */
  delayMs?: number;
  /** Close by itself after this long (default 120 s), so a test that forgets cannot hang the run. */
  maxLifetimeMs?: number;
}

// The .proto files import each other by paths relative to the tree's root
// ("opentelemetry/proto/common/v1/common.proto"), while protobufjs resolves an import relative to the
// importing file; resolving against the root keeps it from looking in …/trace/v1/opentelemetry/….
const PROTO_ROOT = dirname(createRequire(import.meta.url).resolve('@elastic/mockotlpserver/package.json'));
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(PROTO_ROOT, target);
root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
const ExportRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const ExportResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

/**
 * The request as plain data. protobufjs's toObject uses the same lowerCamelCase field names as
 * OTLP/JSON, so one normaliser serves both; only the value forms differ (bytes vs hex ids,
 * int64 as string here vs string or number in JSON).
 */
type AnyValue = {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  bytesValue?: Uint8Array | string;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
};
type KeyValue = { key: string; value?: AnyValue };
type Id = Uint8Array | string | undefined;
interface WireSpan {
  traceId?: Id;
  spanId?: Id;
  parentSpanId?: Id;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: KeyValue[];
  links?: { traceId?: Id; spanId?: Id }[];
  status?: { code?: number; message?: string };
}
interface WireRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: { scope?: { name?: string }; spans?: WireSpan[] }[];
  }[];
}

/** Protobuf bytes → hex; OTLP/JSON already sends hex (lowercased here, since the spec allows either case). */
function hexId(id: Id): string {
  if (id === undefined) return '';
  return typeof id === 'string' ? id.toLowerCase() : Buffer.from(id).toString('hex');
}

function scalar(v: AnyValue | undefined): string | number | boolean {
  if (!v) return '';
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  // int64: a string from protobufjs (longs: String) and usually from JSON; our values fit a double.
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.bytesValue !== undefined) return typeof v.bytesValue === 'string' ? v.bytesValue : Buffer.from(v.bytesValue).toString('base64');
  if (v.arrayValue) return (v.arrayValue.values ?? []).map((e) => String(scalar(e))).join(',');
  if (v.kvlistValue) return JSON.stringify(keyValues(v.kvlistValue.values));
  return '';
}

function keyValues(kvs: KeyValue[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, scalar(kv.value)]));
}

function attributes(kvs: KeyValue[] | undefined): ReceivedSpan['attributes'] {
  return Object.fromEntries(
    (kvs ?? []).map((kv) => [kv.key, kv.value?.arrayValue ? (kv.value.arrayValue.values ?? []).map((e) => String(scalar(e))) : scalar(kv.value)]),
  );
}

function normalise(req: WireRequest, contentType: ReceivedSpan['contentType']): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = keyValues(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const parentSpanId = hexId(s.parentSpanId);
        out.push({
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          // proto3 leaves empty bytes off the wire; JSON may send "" for a root span.
          ...(parentSpanId ? { parentSpanId } : {}),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          attributes: attributes(s.attributes),
          links: (s.links ?? []).map((l) => ({ traceId: hexId(l.traceId), spanId: hexId(l.spanId) })),
          ...(s.status ? { status: { code: s.status.code ?? 0, ...(s.status.message ? { message: s.status.message } : {}) } } : {}),
          resource,
          scope: ss.scope?.name ?? '',
          startTimeUnixNano: String(s.startTimeUnixNano ?? '0'),
          endTimeUnixNano: String(s.endTimeUnixNano ?? '0'),
          contentType,
        });
      }
    }
  }
  return out;
}

/** Decodes one request body (already gunzipped) of the given encoding. */
export function decodeTraces(body: Buffer, contentType: ReceivedSpan['contentType']): ReceivedSpan[] {
  if (contentType === 'json') return normalise(JSON.parse(body.toString('utf8')) as WireRequest, 'json');
  const message = ExportRequest.decode(body);
  // longs: String keeps nanosecond timestamps exact; enums: Number gives the kind/status codes.
  return normalise(ExportRequest.toObject(message, { longs: String, enums: Number }) as WireRequest, 'protobuf');
}

export async function startOtlpReceiver(opts: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const status = opts.status ?? 200;
  const spans: ReceivedSpan[] = [];
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  const pending = new Set<NodeJS.Timeout>();

  const answer = (res: ServerResponse, code: number, type?: string, body?: Uint8Array | string) => {
    const send = () => {
      pending.delete(timer);
      if (!res.destroyed) res.writeHead(code, type ? { 'content-type': type } : {}).end(body);
    };
    const timer = setTimeout(send, opts.delayMs ?? 0);
    pending.add(timer);
  };

  const server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (req.method !== 'POST' || path !== '/v1/traces') return void res.writeHead(404).end();
      const rawType = req.headers['content-type'] ?? '';
      const mime = rawType.split(';')[0]!.trim().toLowerCase();
      const encoding = mime === 'application/x-protobuf' ? 'protobuf' : mime === 'application/json' ? 'json' : undefined;
      if (!encoding) return void res.writeHead(415).end();

      let received: ReceivedSpan[];
      try {
        let body = await buffer(req);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        received = decodeTraces(body, encoding);
      } catch (err) {
        return void res.writeHead(400, { 'content-type': 'text/plain' }).end(String(err));
      }
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      requests.push({ contentType: rawType, headers, spanCount: received.length });
      const ok = status >= 200 && status < 300;
      if (ok) spans.push(...received);
      for (const w of waiters) w();
      if (!ok) return answer(res, status, 'text/plain', `status ${status} by request`);
      // An empty ExportTraceServiceResponse (no partial_success): zero bytes in protobuf, {} in JSON.
      if (encoding === 'protobuf') answer(res, status, 'application/x-protobuf', ExportResponse.encode(ExportResponse.create({})).finish());
      else answer(res, status, 'application/json', '{}');
    })();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      for (const t of pending) clearTimeout(t);
      pending.clear();
      server.close(() => resolve());
      // The exporters keep connections alive, and a delayed answer holds one open: drop them all.
      server.closeAllConnections();
    });
    return closing;
  };
  const lifetime = setTimeout(() => void close(), opts.maxLifetimeMs ?? 120_000);
  lifetime.unref();

  const waitForSpans = (predicate: (s: ReceivedSpan[]) => boolean, timeoutMs = 10_000) =>
    new Promise<ReceivedSpan[]>((resolve, reject) => {
      const check = () => {
        if (!predicate(spans)) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve([...spans]);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        const names = spans.map((s) => `${s.name} (${s.contentType})`).join(', ') || 'none';
        reject(new Error(`OTLP receiver: no match after ${timeoutMs} ms; ${requests.length} request(s), spans: ${names}`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
    });

  return { url, tracesUrl: `${url}/v1/traces`, spans, requests, waitForSpans, close };
}
