/**
 * W3C Trace Context for every request and job (issue 14): the trace a piece of work belongs to,
 * carried in one AsyncLocalStorage so that every log line, problem body, Sentry event, metric
 * exemplar and exported span written while it runs names the same trace.
 *
 * A request's trace is decided once, at its head (`requestTrace`): an incoming `traceparent` is
 * continued (its trace id, its span as our parent, its sampled flag when the sampler is parent
 * based); a malformed one is ignored and a new trace starts. Whether the trace is *sampled* — its
 * spans exported and sent to Sentry — is one decision for all of them; an unsampled request still
 * has ids for its log lines, at the cost of a few random bytes.
 *
 * A job queued while a request (or another job) runs carries the queuer's `traceparent` in its data
 * (`TRACE_DATA_KEY`), and its attempts run as children of the queuing span (`jobTrace`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';

/** What a request or job knows about its trace. */
export interface TraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** This request's (or job attempt's) span: 16 lowercase hex digits. */
  spanId: string;
  /** The span this one continues (a caller's, or the request that queued the job). */
  readonly parentSpanId: string | undefined;
  /** The trace's spans are recorded (exported, sent to Sentry). */
  readonly sampled: boolean;
  /** The caller's `tracestate`, passed on unchanged. */
  readonly tracestate: string | undefined;
  /** A new trace's random draw against the rate (Sentry records it with the trace). */
  readonly sampleRand?: number;
  /** The exported span of this request or job, when an exporter is configured and the trace is sampled. */
  span?: Span;
  /** Makes the child spans of this trace (database, Redis) when it is exported. */
  exporter?: ChildSpanFactory;
}

/** Child spans of an exported trace: returns the function that ends the span. */
export interface ChildSpanFactory {
  child(ctx: TraceContext, name: string, kind: 'client' | 'internal', attributes: Record<string, string | number | boolean>): (error?: unknown) => void;
}

/** How the head decision is taken (config.tracing). */
export interface SamplingPolicy {
  /** Probability that a new trace is sampled (0–1). */
  rate: number;
  /** A continued trace keeps the caller's sampled flag (the `parentbased_*` samplers; Sentry's default). */
  parentBased: boolean;
  /** Paths never sampled: probes and scrapes. */
  untraced: (path: string) => boolean;
}

/** Liveness, readiness and metrics scrapes arrive every few seconds: never sampled. */
const PROBE_OR_SCRAPE = /^\/(?:health|metrics)(?:[/?]|$)|^\/api\/v1\/monitoring\/health(?:[/?]|$)/;
export const isProbeOrScrape = (path: string): boolean => PROBE_OR_SCRAPE.test(path);

/** The policy of config.tracing. */
export function samplingPolicy(config: { sampleRate: number; parentBased: boolean }): SamplingPolicy {
  return { rate: config.sampleRate, parentBased: config.parentBased, untraced: isProbeOrScrape };
}

const storage = new AsyncLocalStorage<TraceContext>();

/** The trace of the request or job running now, if any. */
export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}

/** Runs fn (with its arguments) inside a trace. */
export function runInTrace<A extends unknown[], R>(ctx: TraceContext, fn: (...args: A) => R, ...args: A): R {
  return storage.run(ctx, fn, ...args);
}

// ---------------------------------------------------------------------------------------------
// Ids: random bytes drawn from a pool refilled 4 KiB at a time (one syscall per ~170 traces).

const POOL = Buffer.alloc(4096);
let offset = POOL.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (offset + bytes > POOL.length) {
      randomFillSync(POOL);
      offset = 0;
    }
    const hex = POOL.toString('hex', offset, (offset += bytes));
    // All-zero ids are invalid in W3C Trace Context (one in 2^64 at worst): draw again.
    if (!/^0+$/.test(hex)) return hex;
  }
}

export const newTraceId = (): string => randomHex(16);
export const newSpanId = (): string => randomHex(8);

// ---------------------------------------------------------------------------------------------
// traceparent: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>` (W3C Trace Context §3.2).

/** Version 00 exactly, or a later version (which may append fields after the four we read). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ALL_ZERO = /^0+$/;

export interface ParsedTraceparent {
  traceId: string;
  parentSpanId: string;
  sampled: boolean;
}

/** A valid traceparent, or undefined (malformed, version ff, all-zero ids, or extra fields on version 00). */
export function parseTraceparent(header: string | undefined): ParsedTraceparent | undefined {
  if (header === undefined || header.length > 512) return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, parentSpanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(parentSpanId)) return undefined;
  return { traceId, parentSpanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(ctx: Pick<TraceContext, 'traceId' | 'spanId' | 'sampled'>): string {
  return `00-${ctx.traceId}-${ctx.spanId}-${ctx.sampled ? '01' : '00'}`;
}

/** tracestate is passed on only when it is plausible (W3C: at most 32 list members, 512 characters kept). */
function plausibleTracestate(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0 || value.length > 512 || !/^[\x20-\x7e]+$/.test(value)) return undefined;
  return value;
}

/** The `sentry-trace` header of a Sentry SDK caller: trace id, span id, optional sampled flag. */
const SENTRY_TRACE = /^\s*([0-9a-f]{32})-([0-9a-f]{16})(?:-([01]))?\s*$/i;

/** A request header's (first) value. */
export function header(raw: IncomingMessage, name: string): string | undefined {
  const value = raw.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

const TRACE = Symbol('nest-egg.trace');
type Tagged = IncomingMessage & { [TRACE]?: TraceContext };

/**
 * The trace of an incoming request, decided on the first call and kept on the request (the
 * server factory and the app's first hook both ask). `traceparent` wins over `sentry-trace`.
 */
export function requestTrace(raw: IncomingMessage, policy: SamplingPolicy): TraceContext {
  const tagged = raw as Tagged;
  const known = tagged[TRACE];
  if (known !== undefined) return known;
  const w3c = parseTraceparent(header(raw, 'traceparent'));
  const incoming = w3c ?? parseSentryTrace(header(raw, 'sentry-trace'));
  let sampled: boolean;
  let sampleRand: number | undefined;
  if (policy.untraced(raw.url ?? '/')) sampled = false;
  else if (incoming?.sampled !== undefined && policy.parentBased) sampled = incoming.sampled;
  else {
    sampleRand = Math.random();
    sampled = sampleRand < policy.rate;
  }
  const ctx: TraceContext = {
    sampleRand,
    traceId: incoming?.traceId ?? newTraceId(),
    spanId: newSpanId(),
    parentSpanId: incoming?.parentSpanId,
    sampled,
    // tracestate belongs to the traceparent it came with (W3C §3.3): without one it is dropped.
    tracestate: w3c ? plausibleTracestate(header(raw, 'tracestate')) : undefined,
  };
  tagged[TRACE] = ctx;
  return ctx;
}

function parseSentryTrace(value: string | undefined): (Omit<ParsedTraceparent, 'sampled'> & { sampled: boolean | undefined }) | undefined {
  const m = value === undefined ? null : SENTRY_TRACE.exec(value);
  if (!m) return undefined;
  const traceId = m[1]!.toLowerCase();
  const parentSpanId = m[2]!.toLowerCase();
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(parentSpanId)) return undefined;
  return { traceId, parentSpanId, sampled: m[3] === undefined ? undefined : m[3] === '1' };
}

/** The trace already decided for a request (undefined before its first hook). */
export function traceOfRequest(raw: IncomingMessage): TraceContext | undefined {
  return (raw as Tagged)[TRACE];
}

// ---------------------------------------------------------------------------------------------
// Jobs.

/** The job data key carrying the queuer's trace: `{ traceparent, tracestate? }`. */
export const TRACE_DATA_KEY = '_trace';

export interface JobTraceData {
  traceparent: string;
  tracestate?: string;
}

/** What a job queued now carries of the current trace (nothing outside a request or job). */
export function traceForJob(): JobTraceData | undefined {
  const ctx = storage.getStore();
  if (ctx === undefined) return undefined;
  return ctx.tracestate === undefined ? { traceparent: formatTraceparent(ctx) } : { traceparent: formatTraceparent(ctx), tracestate: ctx.tracestate };
}

/**
 * The trace of a job attempt: the queuer's trace with the queuing span as parent (and its sampled
 * flag), or — a scheduled job, or data without a valid trace — a new trace sampled at the policy's rate.
 */
export function jobTrace(carried: unknown, policy: Pick<SamplingPolicy, 'rate'>): TraceContext {
  const data = typeof carried === 'object' && carried !== null ? (carried as Partial<JobTraceData>) : undefined;
  const parent = parseTraceparent(typeof data?.traceparent === 'string' ? data.traceparent : undefined);
  if (parent) {
    return { traceId: parent.traceId, spanId: newSpanId(), parentSpanId: parent.parentSpanId, sampled: parent.sampled, tracestate: plausibleTracestate(typeof data?.tracestate === 'string' ? data.tracestate : undefined) };
  }
  const sampleRand = Math.random();
  return { traceId: newTraceId(), spanId: newSpanId(), parentSpanId: undefined, sampled: sampleRand < policy.rate, tracestate: undefined, sampleRand };
}

/** The fields every log line written inside a trace carries. */
export function traceLogFields(): { trace_id: string; span_id: string } | undefined {
  const ctx = storage.getStore();
  return ctx === undefined ? undefined : { trace_id: ctx.traceId, span_id: ctx.spanId };
}

// ---------------------------------------------------------------------------------------------
// Outgoing calls: no trace headers unless the host is configured (TRACE_PROPAGATION_TARGETS).

/** A target host: exact (`billing.internal`), or every subdomain of one (`*.internal`). */
export function hostMatches(host: string, targets: readonly string[]): boolean {
  const h = host.toLowerCase();
  return targets.some((t) => (t.startsWith('*.') ? h.endsWith(t.slice(1)) : h === t));
}

let propagating: readonly string[] | undefined;

/** Node publishes `http.client.request.created` (before a request's headers are stored) from 22.12 and 23.2. */
export function canPropagate(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 2) || (major === 22 && minor >= 12);
}

/**
 * Outgoing node:http calls to the given hosts carry the current trace (`traceparent`, and the
 * caller's `tracestate`), set from Node's `http.client.request.created` channel before the headers
 * are stored. Any other host — Plaid, unless it is listed — gets nothing: a trace id says which of
 * our requests called, and that is ours to know. Process-wide; the first non-empty list is kept.
 * Returns false when this Node cannot (older than 22.12: the caller warns).
 */
export function propagateTraceTo(targets: readonly string[]): boolean {
  if (targets.length === 0 || propagating !== undefined) return true;
  if (!canPropagate()) return false;
  propagating = targets;
  subscribe('http.client.request.created', (message) => {
    const { request } = message as { request: ClientRequest };
    const ctx = storage.getStore();
    if (ctx === undefined || request.headersSent || request.getHeader('traceparent') !== undefined) return;
    if (!hostMatches(request.host, targets)) return;
    request.setHeader('traceparent', formatTraceparent(ctx));
    if (ctx.tracestate !== undefined) request.setHeader('tracestate', ctx.tracestate);
  });
  return true;
}
