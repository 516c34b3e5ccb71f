/**
 * Sentry per incoming request, at a price only the requests it traces pay (issue 13).
 *
 * The SDK's own Http integration forks an isolation scope, normalises the request, patches its
 * body stream, starts a release-health session and continues the trace for every request — about
 * 90 µs of CPU each, also for the nine in ten it never traces. Here the decision is taken once, at
 * the head of the request (`sentryServerFactory`, Fastify's serverFactory):
 *
 * - **traced** (the head decision of trace-context.ts: SENTRY_TRACES_SAMPLE_RATE or OTEL_TRACES_SAMPLER,
 *   or the caller's sampled flag in `traceparent` / `sentry-trace`; never a probe or a scrape): the request runs in an isolation scope of its own with an `http.server`
 *   span, as the SDK would run it, and its Postgres, Redis and outgoing-HTTP spans are children of it;
 * - **untraced**: the request runs with a small state object in an AsyncLocalStorage and nothing
 *   else. Breadcrumbs made while it runs (its warning log lines, its outgoing HTTP calls) go into
 *   that object instead of the process's shared scope (`keepRequestBreadcrumb`), so when it fails
 *   the error event (src/observability/sentry.ts, captureServerError) is built in a fresh isolation
 *   scope from its own request data, user, breadcrumbs and a trace id of its own — and when it does
 *   not fail, they are garbage with it.
 *
 * Release health keeps its request-mode session aggregates (started per minute: exited, errored)
 * counted here with one increment per request, sent every minute and on flush/close as the SDK's
 * own aggregator sends them. Outgoing node:http calls get their breadcrumb (and, inside a traced
 * request, their `http.client` span) from Node's `http.client.*` diagnostics channels; fetch keeps
 * the SDK's NodeFetch integration.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import { createServer, type ClientRequest, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Breadcrumb, RequestEventData, Scope, Span } from '@sentry/node';
import { header, requestTrace, type SamplingPolicy, type TraceContext } from './trace-context.ts';

type Sdk = typeof import('@sentry/node');

/** What one request carries for Sentry. */
export interface RequestState {
  /** Traced: the request has its own isolation scope and an http.server span. */
  readonly sampled: boolean;
  /** The traced request's isolation scope. */
  readonly scope: Scope | undefined;
  /** An untraced request's breadcrumbs, made on the first one. */
  breadcrumbs: Breadcrumb[] | undefined;
  /** An error event was captured for it (its release-health session is `errored`). */
  errored: boolean;
  /** The JSON body as sent, when it is small enough to go on an event. */
  body?: string;
}

/** As many as the SDK keeps per scope by default. */
export const MAX_REQUEST_BREADCRUMBS = 100;
/** The SDK's limit for an incoming body on an event ('medium'). */
const MAX_BODY_CHARS = 10_000;

const current = new AsyncLocalStorage<RequestState>();
const STATE = Symbol('nest-egg.sentry.request');
type Tagged = IncomingMessage & { [STATE]?: RequestState };

/** The state of the request a raw node:http request belongs to (undefined for app.inject and when Sentry is off). */
export function requestStateOf(raw: IncomingMessage): RequestState | undefined {
  return (raw as Tagged)[STATE];
}

/**
 * beforeBreadcrumb's second step: a breadcrumb made while an untraced request runs is kept in that
 * request's state, and false tells the SDK not to add it to the shared scope. Anywhere else (a
 * traced request's own scope, a job's, start-up) it goes to the SDK as usual.
 */
export function keepRequestBreadcrumb(breadcrumb: Breadcrumb): boolean {
  const state = current.getStore();
  if (state === undefined || state.sampled) return true;
  const list = (state.breadcrumbs ??= []);
  if (list.length >= MAX_REQUEST_BREADCRUMBS) list.shift();
  list.push(breadcrumb);
  return false;
}

/** Keeps a request's body text for its error event (one property write; nothing when Sentry is off or the request has no state). */
export function keepRequestBody(raw: IncomingMessage, text: string): void {
  const state = (raw as Tagged)[STATE];
  if (state !== undefined && text.length <= MAX_BODY_CHARS) state.body = text;
}

/** A request target split at its `?`: the path, and the query string when there is one. */
function splitTarget(target: string): { path: string; query: string | undefined } {
  const q = target.indexOf('?');
  return q >= 0 ? { path: target.slice(0, q), query: target.slice(q + 1) } : { path: target, query: undefined };
}

/**
 * The request as Sentry's RequestData integration puts it on an event (before scrubEvent): method,
 * absolute URL, query string, headers, and the parsed JSON body when there is one and it is not
 * too large (a larger one is left out, as the SDK leaves it out).
 */
export function requestData(raw: IncomingMessage, body: unknown = requestStateOf(raw)?.body): RequestEventData {
  const url = raw.url ?? '/';
  const { query } = splitTarget(url);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  const out: RequestEventData = { method: raw.method, url: `http://${headers.host ?? 'localhost'}${url}`, headers };
  if (query !== undefined) out.query_string = query;
  if (body !== undefined && body !== null) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    if (text.length <= MAX_BODY_CHARS) out.data = text;
  }
  return out;
}

/**
 * Release-health sessions in request mode: per minute (UTC, seconds zeroed), how many requests
 * ended well (`exited`) and how many with an error event (`errored`). One increment per request;
 * sent a minute after a bucket opens and on the client's flush (close flushes).
 */
class RequestSessions {
  private buckets = new Map<string, { exited: number; errored: number; crashed: number }>();
  private minuteEnds = 0;
  private minuteKey = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly sdk: Sdk) {
    sdk.getClient()?.on('flush', () => this.send());
  }

  record(errored: boolean): void {
    const now = Date.now();
    if (now >= this.minuteEnds) {
      const start = now - (now % 60_000);
      this.minuteEnds = start + 60_000;
      this.minuteKey = new Date(start).toISOString();
    }
    let bucket = this.buckets.get(this.minuteKey);
    if (!bucket) {
      bucket = { exited: 0, errored: 0, crashed: 0 };
      this.buckets.set(this.minuteKey, bucket);
      this.timer ??= setTimeout(() => this.send(), 60_000).unref();
    }
    if (errored) bucket.errored++;
    else bucket.exited++;
  }

  private send(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buckets.size === 0) return;
    const aggregates = [...this.buckets].map(([started, counts]) => ({ started, ...counts }));
    this.buckets = new Map();
    this.sdk.getClient()?.sendSession({ aggregates });
  }
}

let sessions: RequestSessions | undefined;

/** Counts the request's release-health session; called once per request when it ends (app.ts, onResponse). */
export function endRequestSession(raw: IncomingMessage): void {
  sessions?.record(requestStateOf(raw)?.errored === true);
}

/** Outgoing node:http calls: a breadcrumb each (scrubbed by beforeBreadcrumb), a span inside a traced request. */
function instrumentOutgoingHttp(sdk: Sdk): void {
  const spans = new WeakMap<ClientRequest, Span>();
  const describe = (request: ClientRequest) => {
    const { path, query } = splitTarget(request.path);
    return { url: `${request.protocol}//${request.host}${path}`, query };
  };
  // The SDK's own envelopes (its transport uses node:http) are not the service's calls.
  const isSentry = (request: ClientRequest) => request.path.includes('/envelope/');
  subscribe('http.client.request.start', (message) => {
    const { request } = message as { request: ClientRequest };
    if (isSentry(request) || !sdk.getActiveSpan()) return;
    const { url } = describe(request);
    spans.set(request, sdk.startInactiveSpan({ name: `${request.method} ${url}`, onlyIfParent: true, attributes: { 'sentry.op': 'http.client', 'sentry.origin': 'auto.http.nest_egg', 'http.request.method': request.method, 'url.full': url } }));
  });
  const done = (request: ClientRequest, status: number | undefined) => {
    if (isSentry(request)) return;
    const span = spans.get(request);
    if (span) {
      if (status !== undefined) sdk.setHttpStatus(span, status);
      else span.setStatus({ code: 2, message: 'internal_error' });
      span.end();
      spans.delete(request);
    }
    const { url, query } = describe(request);
    sdk.addBreadcrumb(
      { type: 'http', category: 'http', level: status === undefined || status >= 500 ? 'error' : status >= 400 ? 'warning' : 'info', data: { url, 'http.request.method': request.method, status_code: status, ...(query ? { 'url.query': query } : {}) } },
      { request },
    );
  };
  subscribe('http.client.response.finish', (message) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    done(request, response.statusCode);
  });
  subscribe('http.client.request.error', (message) => done((message as { request: ClientRequest }).request, undefined));
}

let installed: { sdk: Sdk; policy: SamplingPolicy } | undefined;

/** Called once by initSentry after Sentry.init, with the head sampling policy of config.tracing. */
export function installRequestInstrumentation(sdk: Sdk, policy: SamplingPolicy): void {
  if (installed) return;
  installed = { sdk, policy };
  sessions = new RequestSessions(sdk);
  instrumentOutgoingHttp(sdk);
}

/**
 * Runs one incoming request traced: its own isolation scope, in the request's trace (trace-context.ts:
 * the caller's, continued as sampled, or a new one with our id), an http.server span ended when
 * the response closes.
 */
function runTraced(sdk: Sdk, raw: IncomingMessage, res: ServerResponse, trace: TraceContext, next: () => void): void {
  sdk.withIsolationScope((scope) => {
    scope.setSDKProcessingMetadata({ normalizedRequest: requestData(raw) });
    const continued = trace.parentSpanId === undefined ? undefined : `${trace.traceId}-${trace.parentSpanId}-1`;
    sdk.continueTrace({ sentryTrace: continued, baggage: continued ? header(raw, 'baggage') : undefined }, () => {
      if (continued === undefined) {
        // A new trace, with our id. Our head decision was `sampleRand < rate`: the SDK's sampler,
        // comparing the same number with the same rate, agrees, and the trace records the true rate.
        const propagation = sdk.getCurrentScope();
        propagation.setPropagationContext({ ...propagation.getPropagationContext(), traceId: trace.traceId, sampleRand: trace.sampleRand ?? 0 });
      }
      const { path } = splitTarget(raw.url ?? '/');
      sdk.startSpanManual(
        {
          name: `${raw.method ?? 'GET'} ${path}`,
          forceTransaction: true,
          attributes: { 'sentry.op': 'http.server', 'sentry.origin': 'auto.http.nest_egg', 'sentry.source': 'url', 'http.request.method': raw.method, 'url.path': path },
        },
        (span) => {
          res.once('close', () => {
            sdk.setHttpStatus(span, res.statusCode);
            span.end();
          });
          (raw as Tagged)[STATE] = { sampled: true, scope, breadcrumbs: undefined, errored: false };
          current.run((raw as Tagged)[STATE]!, next);
        },
      );
    });
  });
}

/**
 * Fastify's serverFactory when Sentry is on: a plain node:http server (with the timeouts Fastify
 * would set) whose request listener takes the head sampling decision and runs the request in its
 * context. Without Sentry the app keeps Fastify's own server.
 */
export function sentryServerFactory(): ((handler: RequestListener, opts: { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number; maxRequestsPerSocket?: number }) => Server) | undefined {
  if (!installed) return undefined;
  const { sdk, policy } = installed;
  return (handler, opts) => {
    const server = createServer((raw, res) => {
      // The one head decision (the app's first hook finds it on the request).
      const trace = requestTrace(raw, policy);
      if (trace.sampled) return runTraced(sdk, raw, res, trace, () => handler(raw, res));
      const state: RequestState = { sampled: false, scope: undefined, breadcrumbs: undefined, errored: false };
      (raw as Tagged)[STATE] = state;
      current.run(state, handler, raw, res);
    });
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
    if (opts.requestTimeout !== undefined) server.requestTimeout = opts.requestTimeout;
    if (opts.connectionTimeout !== undefined) server.setTimeout(opts.connectionTimeout);
    if (opts.maxRequestsPerSocket !== undefined && opts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
    return server;
  };
}
