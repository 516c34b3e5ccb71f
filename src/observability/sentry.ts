/**
 * Error tracking and performance monitoring with Sentry (@sentry/node 11).
 *
 * Off unless SENTRY_DSN is set, and then the SDK is not even imported. When on, the entry point
 * (src/main.ts) starts it before the application's modules load, so its instrumentation sees node:http and the
 * Postgres and Redis drivers (Fastify's is left out: see sentryOptions); the command closes it
 * (flushing what is pending) on graceful shutdown.
 *
 * What is reported is decided by the callers, each in one place: the HTTP error handler
 * (src/http/errors.ts) reports 5xx and unexpected errors, never a 4xx; the job runner reports a
 * task's final failure. Everything that leaves the process — errors, transactions, breadcrumbs —
 * passes through scrubEvent / scrubBreadcrumb, built on redact.ts, the one place that decides what
 * is secret or personal.
 */
import type { IncomingMessage } from 'node:http';
import type { Breadcrumb, Event, NodeOptions, RequestEventData } from '@sentry/node';
import type { Config } from '../config.ts';
import { installRequestInstrumentation, keepRequestBreadcrumb, MAX_REQUEST_BREADCRUMBS, requestData, requestStateOf } from './sentry-requests.ts';
import type { LogEvent } from './logging.ts';
import { currentTrace, isProbeOrScrape, samplingPolicy, traceOfRequest, type TraceContext } from './trace-context.ts';
import { REDACTED, scrub, scrubErrorMessage, scrubQueryString, scrubText, scrubUrl } from './redact.ts';

type Sdk = typeof import('@sentry/node');

let sdk: Sdk | undefined;
let starting: Promise<boolean> | undefined;


/** The path a span to be sampled is for: Fastify's request span carries `url.path`, the http server span the request. */
function sampledPath(ctx: { attributes?: Record<string, unknown>; normalizedRequest?: RequestEventData }): string {
  const path = ctx.attributes?.['url.path'];
  if (typeof path === 'string') return path;
  const url = ctx.normalizedRequest?.url;
  if (!url) return '';
  try {
    return new URL(url, 'http://localhost').pathname;
  } catch {
    return url;
  }
}

/**
 * The SDK's default integrations this service keeps: error capture and its context, breadcrumbs
 * from the console and outgoing fetch, release health, and spans of Postgres and Redis commands.
 * The other defaults instrument libraries we do not use (Express, Mongo, Kafka, AI SDKs, …) at a
 * cost on every request (bench/README.md). Http and Fastify are left out: incoming requests are
 * instrumented by sentry-requests.ts, which only a traced request pays for in full.
 */
const KEPT_DEFAULT_INTEGRATIONS = new Set([
  'EventFilters',
  'FunctionToString',
  'LinkedErrors',
  'Dedupe',
  'RequestData',
  'NodeSystemError',
  'Console',
  'NodeFetch',
  'OnUncaughtException',
  'OnUnhandledRejection',
  'ContextLines',
  'Context',
  'Modules',
  'ProcessSession',
  'Postgres',
  'Redis',
]);

/** The Node SDK options for this service; exported so a test can read what is configured. */
export function sentryOptions(config: Config): NodeOptions {
  return {
    dsn: config.sentry.dsn,
    environment: config.environment,
    release: config.release,
    tracesSampleRate: config.sentry.tracesSampleRate,
    // The same rate (or the caller's decision, for a continued trace), except probes and scrapes.
    tracesSampler: (ctx) => (isProbeOrScrape(sampledPath(ctx)) ? 0 : ctx.inheritOrSampleWith(config.sentry.tracesSampleRate)),
    // A request's spans are sent together as one transaction, so beforeSendTransaction sees (and
    // scrubs) all of them, and the guide's "transactions" are what Sentry shows.
    traceLifecycle: 'static',
    // SDK 11 replaced sendDefaultPii with dataCollection, which collects nearly everything by
    // default. Collect only what helps debugging and what beforeSend can scrub: request headers,
    // URL and query, the JSON request body. No IP address or other automatic user fields (the user
    // is the id we set), no cookies, no response headers, no local variables, no query parameters
    // of database calls, no queue payloads.
    dataCollection: {
      userInfo: false,
      cookies: false,
      httpHeaders: { request: true, response: false },
      httpBodies: ['incomingRequest'],
      urlQueryParams: true,
      stackFrameVariables: false,
      databaseQueryData: false,
      queues: false,
      graphQL: { document: false, variables: false },
      genAI: { inputs: false, outputs: false },
      mcp: { inputs: false, outputs: false },
    },
    // No service of ours continues our traces; third parties (Plaid) get no sentry-trace/baggage.
    tracePropagationTargets: [],
    // No fastifyIntegration: it wraps every hook and handler of every request in a span of its
    // own, which tripled the CPU cost of a request (bench/README.md). No httpIntegration: it forks
    // a scope, normalises the request and starts a session for every request, traced or not
    // (≈ 90 µs each); sentry-requests.ts decides once per request and instruments outgoing
    // node:http calls. The request's transaction is named by its route template in one hook
    // (nameRequestTransaction), and errors are reported by our error handler alone.
    integrations: (defaults) => defaults.filter((integration) => KEPT_DEFAULT_INTEGRATIONS.has(integration.name)),
    beforeSend: (event) => scrubEvent(event),
    beforeSendTransaction: (event) => (isIgnoredStatus(event) ? null : scrubEvent(event)),
    // Scrubbed, then kept by the untraced request that made it (if one did) instead of the shared scope.
    beforeBreadcrumb: (breadcrumb) => {
      const scrubbed = scrubBreadcrumb(breadcrumb);
      return keepRequestBreadcrumb(scrubbed) ? scrubbed : null;
    },
  };
}

/**
 * The transactions the SDK's Http integration drops by default (its `ignoreStatusCodes`), dropped
 * here too: 401–404 answers (scanners and expired tokens would fill the quota) and redirects other
 * than 304.
 */
function isIgnoredStatus(event: Event): boolean {
  const status = event.contexts?.trace?.data?.['http.response.status_code'];
  if (typeof status !== 'number') return false;
  return (status >= 401 && status <= 404) || (status >= 300 && status <= 399 && status !== 304);
}

/**
 * Starts Sentry when SENTRY_DSN is set; resolves true when it is running. The entry point
 * (src/main.ts) calls it before the application's modules load. Safe to call again.
 */
export function initSentry(config: Config): Promise<boolean> {
  if (!config.sentry.dsn) return Promise.resolve(sdk !== undefined);
  starting ??= (async () => {
    const Sentry = await import('@sentry/node');
    Sentry.init(sentryOptions(config));
    installRequestInstrumentation(Sentry, samplingPolicy(config.tracing));
    sdk = Sentry;
    return true;
  })();
  return starting;
}

export function sentryEnabled(): boolean {
  return sdk !== undefined;
}

/**
 * Names a traced request's transaction `GET /api/v1/transactions/:id` (the route template, not
 * the URL with its ids and query) and marks the http.server span with its route. Called from an
 * onRequest hook (app.ts) while the request's span is active; an untraced request costs one
 * property read (its error event is named when it is captured).
 */
export function nameRequestTransaction(raw: IncomingMessage, method: string, route: string): void {
  const state = requestStateOf(raw);
  if (!sdk || !state?.sampled) return;
  const name = `${method} ${route}`;
  state.scope?.setTransactionName(name);
  const active = sdk.getActiveSpan();
  if (!active) return;
  const root = sdk.getRootSpan(active);
  if (sdk.spanToJSON(root).attributes?.['sentry.op'] !== 'http.server') return;
  root.updateName(name);
  root.setAttribute('http.route', route);
  root.setAttribute('sentry.segment.name.source', 'route');
}

export interface ServerErrorContext {
  request_id: string;
  method: string;
  /** The route template (`/api/v1/transactions/:id`), or `unmatched`. */
  endpoint: string;
  user_id?: string | null;
  /** The node:http request, for its request data (body included) and its state. */
  raw?: IncomingMessage;
}

/**
 * Reports a 5xx or unexpected error of a request; returns the event id (undefined when Sentry is
 * off). A traced request's event is captured in its own isolation scope and trace. An untraced
 * one's is built in a fresh isolation scope holding only that request's data, breadcrumbs and user,
 * in a trace of its own: nothing of another request can reach it, whatever runs concurrently.
 */
export function captureServerError(error: unknown, ctx: ServerErrorContext): string | undefined {
  const Sentry = sdk;
  if (!Sentry) return undefined;
  const state = ctx.raw ? requestStateOf(ctx.raw) : undefined;
  if (state) state.errored = true;
  const capture = (scope: import('@sentry/node').Scope) => {
    scope.setTransactionName(`${ctx.method} ${ctx.endpoint}`);
    if (ctx.raw) scope.setSDKProcessingMetadata({ normalizedRequest: requestData(ctx.raw) });
    return Sentry.captureException(error, {
      mechanism: { type: 'auto.http.fastify.error_handler', handled: false },
      captureContext: {
        level: 'error',
        tags: { request_id: ctx.request_id, endpoint: ctx.endpoint },
        ...(ctx.user_id ? { user: { id: ctx.user_id } } : {}),
      },
    });
  };
  if (state?.scope) return Sentry.withIsolationScope(state.scope, () => capture(state.scope!));
  return Sentry.withIsolationScope((scope) => {
    scope.clearBreadcrumbs();
    for (const breadcrumb of state?.breadcrumbs ?? []) scope.addBreadcrumb(breadcrumb, MAX_REQUEST_BREADCRUMBS);
    return inTrace(Sentry, (ctx.raw ? traceOfRequest(ctx.raw) : undefined) ?? currentTrace(), () => capture(scope));
  });
}

/**
 * Runs a capture in the request's or job's trace (trace-context.ts), so the event carries the same
 * trace id as its log lines and spans; in a new trace of its own when there is none.
 */
function inTrace<T>(Sentry: Sdk, trace: TraceContext | undefined, fn: () => T): T {
  if (!trace) return Sentry.startNewTrace(fn);
  return Sentry.withScope((scope) => {
    scope.setPropagationContext({ traceId: trace.traceId, parentSpanId: trace.spanId, sampled: trace.sampled, sampleRand: trace.sampleRand ?? Math.random() });
    return fn();
  });
}

export interface TaskFailureContext {
  task_name: string;
  job_id?: string | number;
  /** Attempts made, the failing one included. */
  attempts: number;
}

/** Reports a background task's final failure (after its last retry); returns the event id. */
export function captureTaskFailure(error: unknown, ctx: TaskFailureContext): string | undefined {
  const Sentry = sdk;
  if (!Sentry) return undefined;
  return inTrace(Sentry, currentTrace(), () => Sentry.captureException(error, {
    mechanism: { type: 'auto.queue.task', handled: false },
    captureContext: {
      level: 'error',
      tags: { task_name: ctx.task_name },
      contexts: { task: { task_name: ctx.task_name, job_id: ctx.job_id === undefined ? undefined : String(ctx.job_id), attempts: ctx.attempts } },
    },
  }));
}

export interface SecurityEventContext {
  /** The security event's type (`refresh_token_reuse`, `account_locked`, …): the message and a tag. */
  type: string;
  request_id?: string;
  user_id?: string | null;
  /** Scalar details (no emails, no tokens: scrubEvent runs over them anyway). */
  details?: Record<string, string | number | boolean | undefined>;
}

/** Reports a high-severity security event as a Sentry message (not an exception); returns the event id. */
export function captureSecurityEvent(ctx: SecurityEventContext): string | undefined {
  if (!sdk) return undefined;
  return sdk.captureMessage(`security_event: ${ctx.type}`, {
    level: 'warning',
    tags: { security_event: ctx.type, ...(ctx.request_id ? { request_id: ctx.request_id } : {}) },
    contexts: { security_event: { type: ctx.type, ...ctx.details } },
    ...(ctx.user_id ? { user: { id: ctx.user_id } } : {}),
    // One issue per event type, whatever the details.
    fingerprint: ['security_event', ctx.type],
  });
}

/** Runs fn with its own breadcrumbs and tags (one job of the worker); just runs it when Sentry is off. */
export function withSentryScope<T>(fn: () => T): T {
  return sdk ? sdk.withIsolationScope(() => fn()) : fn();
}

const BREADCRUMB_LEVEL = { warning: 'warning', error: 'error', fatal: 'fatal' } as const;

function recordLogBreadcrumb(entry: LogEvent): void {
  // An error field becomes its one-line summary; the stack belongs to the event, not the breadcrumb.
  const data = Object.fromEntries(
    Object.entries(entry.fields).map(([key, value]) => [key, value instanceof Error ? `${value.name}: ${scrubErrorMessage(value.message)}` : value]),
  );
  sdk?.addBreadcrumb({ type: 'default', category: 'log', level: BREADCRUMB_LEVEL[entry.level], message: entry.event, data });
}

/** The logger's sink for warning-and-above events when Sentry is on; undefined (no cost) when off. */
export function logBreadcrumbSink(): ((entry: LogEvent) => void) | undefined {
  return sdk ? recordLogBreadcrumb : undefined;
}

/** Reports an error that ends the process (e.g. start-up failed), then sends what is pending. */
export async function captureFatalAndClose(error: unknown, timeoutMs = 2_000): Promise<void> {
  if (!sdk) return;
  sdk.captureException(error, { mechanism: { type: 'auto.process.main', handled: false }, captureContext: { level: 'fatal' } });
  await sdk.close(timeoutMs);
}

/** Sends what is pending and stops; true when everything was sent within the timeout. */
export async function closeSentry(timeoutMs = 2_000): Promise<boolean> {
  if (!sdk) return true;
  return sdk.close(timeoutMs);
}

// ---------------------------------------------------------------------------------------------
// Scrubbing: every outgoing event, transaction and breadcrumb.

/** Client addresses are personal data; the user is identified by id only. */
const CLIENT_IP_HEADER = /^(?:x-forwarded-for|x-real-ip|forwarded|true-client-ip|cf-connecting-ip|x-client-ip)$/i;
const CLIENT_IP_ATTRIBUTE =
  /^(?:client\.address|network\.peer\.address|http\.client_ip|http\.request\.header\.(?:x-forwarded-for|x-real-ip|forwarded|true-client-ip|cf-connecting-ip|x-client-ip))$/i;

/** Span attributes: client addresses dropped, the rest scrubbed by key and value. */
function scrubAttributes<T extends Record<string, unknown>>(data: T): T {
  return asRecord<T>(scrub(Object.fromEntries(Object.entries(data).filter(([key]) => !CLIENT_IP_ATTRIBUTE.test(key)))));
}

const asRecord = <T>(value: unknown) => value as T;

function queryToString(query: NonNullable<RequestEventData['query_string']>): string {
  if (typeof query === 'string') return query;
  return new URLSearchParams(Array.isArray(query) ? query : Object.entries(query)).toString();
}

/** A JSON body is scrubbed field by field; a form body by parameter name; anything else is dropped. */
function scrubBody(data: unknown, contentType: string | undefined): unknown {
  if (typeof data !== 'string') return scrub(data);
  if (contentType?.includes('application/x-www-form-urlencoded')) return scrubQueryString(data);
  try {
    return JSON.stringify(scrub(JSON.parse(data)));
  } catch {
    // Truncated or not JSON: field names cannot be trusted to find the secrets, so none of it leaves.
    return `${REDACTED} (body not parseable as JSON)`;
  }
}

function scrubRequest(request: RequestEventData): RequestEventData {
  const { cookies: _cookies, env: _env, ...out } = request;
  const headers = Object.entries(out.headers ?? {}).filter(([name]) => !CLIENT_IP_HEADER.test(name));
  const contentType = headers.find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  if (out.headers) out.headers = asRecord<Record<string, string>>(scrub(Object.fromEntries(headers)));
  if (out.url) out.url = scrubUrl(out.url);
  if (out.query_string !== undefined) out.query_string = scrubQueryString(queryToString(out.query_string));
  if (out.data !== undefined) out.data = scrubBody(out.data, contentType);
  return out;
}

/** Span descriptions and transaction names may carry a URL (`GET https://…?token=…`). */
function scrubDescription(text: string): string {
  return scrubText(text.replace(/\S+\?\S*/g, (url) => scrubUrl(url)));
}

export function scrubBreadcrumb(breadcrumb: Breadcrumb): Breadcrumb {
  const out = { ...breadcrumb };
  if (out.message !== undefined) out.message = scrubText(out.message);
  if (out.data !== undefined) out.data = asRecord<Record<string, unknown>>(scrub(out.data));
  return out;
}

/** Removes secrets and masks personal data in an error or transaction event before it is sent. */
export function scrubEvent<E extends Event>(event: E): E {
  if (event.message !== undefined) event.message = scrubText(event.message);
  if (event.logentry) event.logentry = asRecord<E['logentry']>(scrub(event.logentry));
  for (const exception of event.exception?.values ?? []) {
    if (exception.value !== undefined) exception.value = scrubErrorMessage(exception.value);
    for (const frame of exception.stacktrace?.frames ?? []) {
      if (frame.vars) frame.vars = asRecord<Record<string, unknown>>(scrub(frame.vars));
    }
  }
  if (event.request) event.request = scrubRequest(event.request);
  if (event.user) event.user = event.user.id === undefined ? undefined : { id: event.user.id };
  if (event.tags) event.tags = asRecord<E['tags']>(scrub(event.tags));
  if (event.extra) event.extra = asRecord<E['extra']>(scrub(event.extra));
  if (event.contexts?.trace?.data) event.contexts.trace.data = scrubAttributes(event.contexts.trace.data);
  if (event.contexts) event.contexts = asRecord<E['contexts']>(scrub(event.contexts));
  if (event.breadcrumbs) event.breadcrumbs = event.breadcrumbs.map(scrubBreadcrumb);
  if (event.transaction !== undefined) event.transaction = scrubDescription(event.transaction);
  for (const span of event.spans ?? []) {
    if (span.description !== undefined) span.description = scrubDescription(span.description);
    if (span.data) span.data = scrubAttributes(span.data);
  }
  return event;
}
