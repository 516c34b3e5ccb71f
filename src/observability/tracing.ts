/**
 * OTLP export of the sampled traces (issue 14): spans of requests, database queries, Redis
 * commands and job attempts, sent by OpenTelemetry's own OTLP/HTTP exporters (protobuf or JSON)
 * through its BatchSpanProcessor — batched off the request path, at most `maxQueueSize` spans
 * waiting, so a collector that is down or slow costs dropped spans (`otlp_spans_dropped_total`),
 * never a slower request or a growing heap.
 *
 * The ids are ours (trace-context.ts decided them before any span exists, so the log lines, the
 * problem body and Sentry already carry them): the provider's IdGenerator hands the tracer the ids
 * of the span being started. Sampling was decided once per trace, so the provider records every
 * span it is asked for. What leaves passes the same scrubbing as logs and Sentry: span names are
 * route templates and statement kinds; attribute values are scrubbed (redact.ts); SQL is the
 * parameterised text (values travel separately and are never recorded).
 */
import { subscribe } from 'node:diagnostics_channel';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type IdGenerator, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from './logging.ts';
import { scrubErrorMessage, scrubText } from './redact.ts';
import { currentTrace, newSpanId, propagateTraceTo, samplingPolicy, type ChildSpanFactory, type SamplingPolicy, type TraceContext } from './trace-context.ts';

export interface OtlpOptions {
  /** The traces URL (`…/v1/traces`). */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  headers: Record<string, string>;
  timeoutMs: number;
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES, then service.version and deployment.environment.name. */
  resourceAttributes: Record<string, string>;
  /** Spans waiting for export at most (the BatchSpanProcessor's queue). */
  maxQueueSize: number;
  /** How often a batch leaves (ms). */
  scheduledDelayMs: number;
}

export type DropReason = 'queue_full' | 'export_failed';

export interface ExportCounters {
  exported(n: number): void;
  dropped(reason: DropReason, n: number): void;
}

/** The ids of the span being started, handed to the tracer when it asks (synchronously, inside startSpan). */
class PresetIds implements IdGenerator {
  traceId = '';
  spanId = '';
  generateTraceId = () => this.traceId;
  generateSpanId = () => this.spanId;
}

/** How long closing waits for the last export (shutdown has its own budget, SHUTDOWN_TIMEOUT_MS). */
const CLOSE_WAIT_MS = 2_000;

const KIND = { server: SpanKind.SERVER, client: SpanKind.CLIENT, internal: SpanKind.INTERNAL, consumer: SpanKind.CONSUMER } as const;

/** Counts what the batch processor drops or sends: its queue is the spans handed to onEnd and not yet to the exporter. */
class CountingExporter implements SpanExporter {
  queued = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly counters: ExportCounters,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.queued -= spans.length;
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.counters.exported(spans.length);
      else this.counters.dropped('export_failed', spans.length);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export class SpanExport implements ChildSpanFactory {
  private readonly ids = new PresetIds();
  private readonly tracer: Tracer;
  private readonly provider: TracerProvider;
  private closed = false;

  constructor(opts: OtlpOptions, counters: ExportCounters) {
    const config = { url: opts.url, headers: opts.headers, timeoutMillis: opts.timeoutMs };
    const otlp = opts.protocol === 'http/json' ? new JsonTraceExporter(config) : new ProtobufTraceExporter(config);
    const exporter = new CountingExporter(otlp, counters);
    const processor = new BatchSpanProcessor({
      exporter,
      maxQueueSize: opts.maxQueueSize,
      maxExportBatchSize: Math.min(512, opts.maxQueueSize),
      scheduledDelayMillis: opts.scheduledDelayMs,
      exportTimeoutMillis: opts.timeoutMs,
    });
    const maxQueueSize = opts.maxQueueSize;
    // The queue's bound, counted: a span the batch processor would drop silently is counted here instead.
    const counting = {
      onStart: () => {},
      onEnd: (span: ReadableSpan) => {
        if (exporter.queued >= maxQueueSize) return counters.dropped('queue_full', 1);
        exporter.queued++;
        processor.onEnd(span);
      },
      forceFlush: () => processor.forceFlush(),
      shutdown: () => processor.shutdown(),
    };
    this.provider = new TracerProvider({
      idGenerator: this.ids,
      resource: resourceFromAttributes({ ...opts.resourceAttributes, 'service.name': opts.serviceName }),
      spanProcessors: [counting],
    });
    this.tracer = this.provider.getTracer('nest-egg-api');
  }

  /** Starts the span of `ctx` itself (a request or a job attempt), under its parent when it has one. */
  start(ctx: TraceContext, name: string, kind: keyof typeof KIND, attributes: Attributes): Span {
    const parent: Context = ctx.parentSpanId
      ? trace.setSpanContext(ROOT_CONTEXT, { traceId: ctx.traceId, spanId: ctx.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true })
      : ROOT_CONTEXT;
    this.ids.traceId = ctx.traceId;
    this.ids.spanId = ctx.spanId;
    const span = this.tracer.startSpan(name, { kind: KIND[kind], attributes: scrubAttributes(attributes) }, parent);
    ctx.span = span;
    ctx.exporter = this;
    return span;
  }

  child(ctx: TraceContext, name: string, kind: 'client' | 'internal', attributes: Record<string, string | number | boolean>): (error?: unknown) => void {
    const parentSpan = ctx.span;
    if (parentSpan === undefined || this.closed) return () => {};
    this.ids.spanId = newSpanId();
    const span = this.tracer.startSpan(name, { kind: KIND[kind], attributes: scrubAttributes(attributes) }, trace.setSpan(ROOT_CONTEXT, parentSpan));
    return (error?: unknown) => endSpan(span, error);
  }

  /**
   * Sends what is waiting and stops, waiting at most `CLOSE_WAIT_MS`: a collector that is down must
   * not hold a graceful shutdown (what is still in flight then is lost, as a dead collector's is).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref()));
    // A collector that is down rejects the flush: its spans are counted as dropped by the exporter.
    await Promise.race([this.provider.shutdown().catch(() => undefined), waited]);
    clearTimeout(timer);
  }
}

/** Ends a span, marking it failed (with the error's scrubbed summary) when there was an error. */
export function endSpan(span: Span, error?: unknown): void {
  if (error !== undefined) {
    const summary = error instanceof Error ? `${error.name}: ${scrubErrorMessage(error.message)}` : 'error';
    span.setStatus({ code: SpanStatusCode.ERROR, message: summary });
    if (error instanceof Error) span.setAttribute('error.type', error.name);
  }
  span.end();
}

/** Attribute values pass the scrubbing of log text (an email or a token in a value never leaves). */
function scrubAttributes(attributes: Attributes): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) out[key] = typeof value === 'string' ? scrubText(value) : value;
  return out;
}

/** A child span of the current trace when it is exported (nothing, at the cost of one lookup, otherwise). */
export function startChildSpan(name: string, kind: 'client' | 'internal', attributes: Record<string, string | number | boolean>): ((error?: unknown) => void) | undefined {
  const ctx = currentTrace();
  if (ctx?.exporter === undefined) return undefined;
  return ctx.exporter.child(ctx, name, kind, attributes);
}

let redisInstrumented = false;

/**
 * Redis commands as client spans, from ioredis's own `ioredis:command` tracing channel (no patching):
 * the command name only — arguments may be keys or values, and are never recorded.
 */
export function instrumentRedisCommands(): void {
  if (redisInstrumented) return;
  redisInstrumented = true;
  const ends = new WeakMap<object, (error?: unknown) => void>();
  const tracing = (name: string) => ({
    start(message: unknown) {
      const ctx = currentTrace();
      if (ctx?.exporter === undefined) return;
      const m = message as { command?: string; database?: number; serverAddress?: string; serverPort?: number };
      const command = typeof m.command === 'string' ? m.command.toUpperCase() : name;
      const attributes: Record<string, string | number> = { 'db.system.name': 'redis', 'db.operation.name': command };
      if (typeof m.serverAddress === 'string') attributes['server.address'] = m.serverAddress;
      if (typeof m.serverPort === 'number') attributes['server.port'] = m.serverPort;
      ends.set(message as object, ctx.exporter.child(ctx, command, 'client', attributes));
    },
    asyncEnd(message: unknown) {
      ends.get(message as object)?.((message as { error?: unknown }).error);
      ends.delete(message as object);
    },
  });
  for (const [channel, name] of [
    ['ioredis:command', 'REDIS'],
    ['ioredis:batch', 'MULTI'],
  ] as const) {
    const handlers = tracing(name);
    subscribe(`tracing:${channel}:start`, handlers.start);
    subscribe(`tracing:${channel}:asyncEnd`, handlers.asyncEnd);
  }
}

/** An app's (or worker's) tracing: the head sampling policy, and the OTLP export when configured. */
export interface Tracing {
  readonly policy: SamplingPolicy;
  readonly export: SpanExport | undefined;
  close(): Promise<void>;
}

export function createTracing(
  config: { sampleRate: number; parentBased: boolean; otlp?: OtlpOptions; propagationTargets?: string[] },
  counters: ExportCounters,
  logger?: Pick<Logger, 'warn'>,
): Tracing {
  const spans = config.otlp ? new SpanExport(config.otlp, counters) : undefined;
  if (spans) instrumentRedisCommands();
  if (!propagateTraceTo(config.propagationTargets ?? [])) {
    logger?.warn({ node: process.version, targets: config.propagationTargets }, 'trace_propagation_unsupported');
  }
  return { policy: samplingPolicy(config), export: spans, close: async () => spans?.close() };
}

/** The counters of a metrics registry (metrics.ts) as the export's. */
export function exportCounters(metrics: { otlpSpansExported: { inc(n: number): void }; otlpSpansDropped: { inc(labels: { reason: DropReason }, n: number): void } }): ExportCounters {
  return { exported: (n) => metrics.otlpSpansExported.inc(n), dropped: (reason, n) => metrics.otlpSpansDropped.inc({ reason }, n) };
}
