/**
 * The OTLP test receiver against the real OpenTelemetry exporters the project ships: what the
 * protobuf and the JSON exporter put on the wire (plain and gzip'd) decodes to the spans the SDK
 * recorded — ids, parentage, links, every attribute type, status, resource, scope and kind — so
 * the tests of issue 14 that rely on the receiver assert on the real protocol.
 */
import { SpanKind, SpanStatusCode, trace, ROOT_CONTEXT, type SpanContext } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.ts';

type ExporterConfig = NonNullable<ConstructorParameters<typeof ProtobufTraceExporter>[0]>;
// CompressionAlgorithm.GZIP: the enum lives in @opentelemetry/otlp-exporter-base, which the exporters do not re-export.
const GZIP = 'gzip' as NonNullable<ExporterConfig['compression']>;

const EXPORTERS = {
  protobuf: (config: ExporterConfig) => new ProtobufTraceExporter(config),
  json: (config: ExporterConfig) => new JsonTraceExporter(config),
} as const;

const PARENT_ATTRS = { 'http.route': '/accounts/:id', 'http.response.status_code': 200, ratio: 0.25, cached: false, tags: ['a', 'b'] };
const CHILD_ATTRS = { 'db.operation.name': 'SELECT', 'db.rows': -3, big: 2 ** 40, 'db.ok': true };

interface Sent {
  parent: SpanContext;
  child: SpanContext;
  linked: SpanContext;
  /** What forceFlush rejected with: sdk-trace 2.x's SimpleSpanProcessor passes on a failed export. */
  flushError?: unknown;
}

/**
 * Three spans through a real provider: a server span, a client child of it that links to a span
 * of another trace (the way a job links to the request that queued it), and that linked span.
 */
async function sendSpans(exporter: SpanExporter): Promise<Sent> {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'nest-egg-otlp-test', 'service.version': '9.9.9', 'host.cpus': 4 }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('otlp-receiver-test', '1.0.0');
  const linkedSpan = tracer.startSpan('enqueue', { kind: SpanKind.PRODUCER }, ROOT_CONTEXT);
  const linked = linkedSpan.spanContext();
  linkedSpan.end();
  const parentSpan = tracer.startSpan('GET /accounts/:id', { kind: SpanKind.SERVER, attributes: PARENT_ATTRS }, ROOT_CONTEXT);
  const parent = parentSpan.spanContext();
  const childSpan = tracer.startSpan(
    'SELECT accounts',
    { kind: SpanKind.CLIENT, attributes: CHILD_ATTRS, links: [{ context: linked }] },
    trace.setSpan(ROOT_CONTEXT, parentSpan),
  );
  const child = childSpan.spanContext();
  childSpan.setStatus({ code: SpanStatusCode.ERROR, message: 'relation does not exist' });
  childSpan.end();
  parentSpan.setStatus({ code: SpanStatusCode.OK });
  parentSpan.end();
  const flushError = await provider.forceFlush().then(() => undefined, (err: unknown) => err);
  await provider.shutdown();
  return { parent, child, linked, ...(flushError === undefined ? {} : { flushError }) };
}

function byName(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found, `exactly one span named ${name}`).toHaveLength(1);
  return found[0]!;
}

function assertDecoded(spans: ReceivedSpan[], sent: Sent, contentType: ReceivedSpan['contentType']) {
  expect(sent.flushError).toBeUndefined();
  expect(spans).toHaveLength(3);
  const parent = byName(spans, 'GET /accounts/:id');
  const child = byName(spans, 'SELECT accounts');
  const linked = byName(spans, 'enqueue');

  for (const s of spans) {
    expect(s.contentType).toBe(contentType);
    expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(s.scope).toBe('otlp-receiver-test');
    expect(s.resource).toMatchObject({ 'service.name': 'nest-egg-otlp-test', 'service.version': '9.9.9', 'host.cpus': 4 });
    expect(s.startTimeUnixNano).toMatch(/^[1-9]\d{18}$/);
    expect(BigInt(s.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(s.startTimeUnixNano));
  }

  // Ids are the ones the SDK generated, and parentage survives the trip.
  expect(parent).toMatchObject({ traceId: sent.parent.traceId, spanId: sent.parent.spanId });
  expect(parent.parentSpanId).toBeUndefined();
  expect(child.traceId).toBe(parent.traceId);
  expect(child.spanId).toBe(sent.child.spanId);
  expect(child.parentSpanId).toBe(parent.spanId);
  expect(linked.traceId).toBe(sent.linked.traceId);
  expect(linked.traceId).not.toBe(parent.traceId);

  expect(child.links).toEqual([{ traceId: sent.linked.traceId, spanId: sent.linked.spanId }]);
  expect(parent.links).toEqual([]);

  // OTLP's SpanKind is the API's plus one (0 is UNSPECIFIED on the wire).
  expect([parent.kind, child.kind, linked.kind]).toEqual([2, 3, 4]);

  expect(parent.attributes).toEqual(PARENT_ATTRS);
  expect(child.attributes).toEqual(CHILD_ATTRS);
  expect(child.status).toEqual({ code: 2, message: 'relation does not exist' });
  expect(parent.status).toEqual({ code: 1 });
}

describe('OTLP receiver with the real exporters', () => {
  let receiver: OtlpReceiver | undefined;
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });

  for (const [encoding, make] of Object.entries(EXPORTERS) as [keyof typeof EXPORTERS, (typeof EXPORTERS)[keyof typeof EXPORTERS]][]) {
    const mime = encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json';

    it(`decodes what the ${encoding} exporter sends`, async () => {
      receiver = await startOtlpReceiver();
      const sent = await sendSpans(make({ url: receiver.tracesUrl, headers: { 'x-api-key': 'k-123' } }));
      const spans = await receiver.waitForSpans((s) => s.length >= 3);
      assertDecoded(spans, sent, encoding);
      // SimpleSpanProcessor exports span by span.
      expect(receiver.requests).toHaveLength(3);
      for (const r of receiver.requests) {
        expect(r.contentType).toBe(mime);
        expect(r.spanCount).toBe(1);
        expect(r.headers['x-api-key']).toBe('k-123');
        expect(r.headers['content-encoding']).toBeUndefined();
      }
    });

    it(`decodes a gzip'd ${encoding} export`, async () => {
      receiver = await startOtlpReceiver();
      const sent = await sendSpans(make({ url: receiver.tracesUrl, compression: GZIP }));
      assertDecoded(await receiver.waitForSpans((s) => s.length >= 3), sent, encoding);
      expect(receiver.requests.map((r) => r.headers['content-encoding'])).toEqual(['gzip', 'gzip', 'gzip']);
    });
  }

  it('finds /v1/traces under the endpoint base the exporters are given by OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    receiver = await startOtlpReceiver();
    const before = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    try {
      expect((await sendSpans(new ProtobufTraceExporter())).flushError).toBeUndefined();
    } finally {
      if (before === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = before;
    }
    expect((await receiver.waitForSpans((s) => s.length >= 3)).map((s) => s.name).sort()).toEqual(['GET /accounts/:id', 'SELECT accounts', 'enqueue']);
  });

  it('answers 404 off /v1/traces, 415 for other content types, 400 for a body that does not decode', async () => {
    receiver = await startOtlpReceiver();
    const post = (path: string, type: string, body: string | Uint8Array<ArrayBuffer>) =>
      fetch(receiver!.url + path, { method: 'POST', headers: { 'content-type': type }, body });
    expect((await post('/v1/metrics', 'application/json', '{}')).status).toBe(404);
    expect((await fetch(receiver.tracesUrl)).status).toBe(404);
    expect((await post('/v1/traces', 'text/plain', '{}')).status).toBe(415);
    expect((await post('/v1/traces', 'application/json', '{not json')).status).toBe(400);
    expect((await post('/v1/traces', 'application/x-protobuf', new Uint8Array([0x0a, 0xff]))).status).toBe(400);
    const empty = await post('/v1/traces', 'application/json; charset=utf-8', '{}');
    expect(empty.status).toBe(200);
    expect(await empty.json()).toEqual({});
    expect(receiver.requests).toEqual([{ contentType: 'application/json; charset=utf-8', headers: expect.any(Object), spanCount: 0 }]);
  });

  it('refuses with opts.status: the request is counted, its spans are not received, the exporter reports failure', async () => {
    receiver = await startOtlpReceiver({ status: 400 });
    const results: ExportResult[] = [];
    const exporter = new ProtobufTraceExporter({ url: receiver.tracesUrl });
    const recording: SpanExporter = {
      export: (spans: ReadableSpan[], done) => exporter.export(spans, (r) => (results.push(r), done(r))),
      shutdown: () => exporter.shutdown(),
    };
    const { flushError } = await sendSpans(recording);
    // TracerProvider.forceFlush rejects with the list of its processors' errors.
    expect(flushError).toMatchObject([{ name: 'OTLPExporterError', code: 400 }]);
    expect(results.map((r) => r.code)).toEqual([ExportResultCode.FAILED, ExportResultCode.FAILED, ExportResultCode.FAILED]);
    expect(receiver.requests.map((r) => r.spanCount)).toEqual([1, 1, 1]);
    expect(receiver.spans).toHaveLength(0);
    await expect(receiver.waitForSpans((s) => s.length > 0, 200)).rejects.toThrow(/3 request\(s\), spans: none/);
  });

  it('holds answers for opts.delayMs, and close() does not wait for them', async () => {
    receiver = await startOtlpReceiver({ delayMs: 400 });
    const started = Date.now();
    const res = await fetch(receiver.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);

    const held = fetch(receiver.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await expect.poll(() => receiver!.requests.length).toBe(2);
    const closing = Date.now();
    await receiver.close();
    expect(Date.now() - closing).toBeLessThan(390);
    await expect(held).rejects.toThrow();
  });

  it('closes itself after maxLifetimeMs', async () => {
    receiver = await startOtlpReceiver({ maxLifetimeMs: 100 });
    expect((await fetch(receiver.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 250));
    await expect(fetch(receiver.tracesUrl, { method: 'POST', body: '{}' })).rejects.toThrow();
  });
});
