/**
 * HTTP metrics as Fastify hooks: http_requests_total, http_request_duration_seconds,
 * http_requests_inprogress, http_request_size_bytes and http_response_size_bytes.
 *
 * `endpoint` is the route template (request.routeOptions.url); every unmatched request shares
 * UNMATCHED_ENDPOINT and a method outside the standard set is `_OTHER`, so no request can create
 * a new series. Work per request is constant: label objects are made once per route, method and
 * status and reused, the duration is Fastify's own reply.elapsedTime, the hooks are
 * callback-style (no promise per hook), and a client's disconnect is watched once per connection.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { exemplarOf, type Metrics } from '../observability/metrics.ts';

export const UNMATCHED_ENDPOINT = 'unmatched';
export const OTHER_METHOD = '_OTHER';
const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE']);

interface RouteLabels {
  readonly method: string;
  readonly endpoint: string;
}
interface StatusLabels extends RouteLabels {
  readonly status: string;
}

/** The label objects of one (route, method): made once, then only looked up. */
class RouteMethodLabels {
  readonly base: RouteLabels;
  private readonly byStatus = new Map<number, StatusLabels>();

  constructor(method: string, endpoint: string) {
    this.base = Object.freeze({ method, endpoint });
  }

  withStatus(status: number): StatusLabels {
    let labels = this.byStatus.get(status);
    if (!labels) {
      labels = Object.freeze({ ...this.base, status: String(status) });
      this.byStatus.set(status, labels);
    }
    return labels;
  }
}

/** Route template → raw method → labels. Bounded: routes × methods Node's parser accepts × statuses. */
export class HttpLabelCache {
  private readonly routes = new Map<string | undefined, Map<string, RouteMethodLabels>>();

  get(routeUrl: string | undefined, method: string): RouteMethodLabels {
    let methods = this.routes.get(routeUrl);
    if (!methods) {
      methods = new Map();
      this.routes.set(routeUrl, methods);
    }
    let labels = methods.get(method);
    if (!labels) {
      labels = new RouteMethodLabels(normalizeMethod(method), endpointLabel(routeUrl));
      methods.set(method, labels);
    }
    return labels;
  }
}

export function normalizeMethod(method: string): string {
  return STANDARD_METHODS.has(method) ? method : OTHER_METHOD;
}

/** The route template, without a trailing slash (a prefixed `/` route answers on both forms). */
export function endpointLabel(routeUrl: string | undefined): string {
  if (!routeUrl) return UNMATCHED_ENDPOINT;
  return routeUrl.length > 1 && routeUrl.endsWith('/') ? routeUrl.slice(0, -1) : routeUrl;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Internal to the HTTP metrics hooks: this request's labels while it is in flight, else null. */
    httpMetricsLabels: RouteMethodLabels | null;
    /** Internal to the HTTP metrics hooks: performance.now() at onRequest. */
    httpMetricsStart: number;
  }
}

export interface HttpMetricsOptions {
  /** Route templates that are not measured (the /metrics scrape itself). */
  skip?: readonly string[];
}

function byteLength(header: string | number | string[] | undefined): number {
  if (typeof header === 'number') return header;
  if (typeof header !== 'string') return 0;
  const n = Number(header);
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

/** The status recorded for a request whose client closed the connection before the response (nginx's 499). */
export const CLIENT_CLOSED_REQUEST = 499;

/** On a connection: its requests whose metrics are not recorded yet. */
const IN_FLIGHT = Symbol('nest-egg http metrics in flight');

export function registerHttpMetrics(app: FastifyInstance, metrics: Metrics, opts: HttpMetricsOptions = {}): void {
  const cache = new HttpLabelCache();
  const skip = new Set(opts.skip ?? []);
  const { httpRequests, httpRequestDuration, httpRequestsInProgress, httpRequestSize, httpResponseSize } = metrics;

  app.decorateRequest('httpMetricsLabels', null);
  app.decorateRequest('httpMetricsStart', 0);

  /** Records a finished request once (onResponse or its connection closing, whichever comes first). */
  const record = (request: FastifyRequest, labels: RouteMethodLabels, status: number, seconds: number, responseBytes: number) => {
    request.httpMetricsLabels = null;
    (request.raw.socket as { [IN_FLIGHT]?: Set<FastifyRequest> } | null)?.[IN_FLIGHT]?.delete(request);
    httpRequestsInProgress.dec(labels.base);
    const withStatus = labels.withStatus(status);
    httpRequests.inc(withStatus);
    httpRequestDuration.observe({ labels: withStatus, value: seconds, exemplarLabels: exemplarOf(request.trace) });
    httpRequestSize.observe(labels.base, byteLength(request.headers['content-length']));
    httpResponseSize.observe(labels.base, responseBytes);
  };

  app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const url = request.routeOptions.url;
    if (url === undefined || !skip.has(url)) {
      const labels = cache.get(url, request.method);
      request.httpMetricsLabels = labels;
      request.httpMetricsStart = performance.now();
      httpRequestsInProgress.inc(labels.base);
      watchConnection(request);
    }
    done();
  });

  // A client that closes the connection first never reaches onResponse; without this, slow requests
  // that clients gave up on would vanish from the latency histogram and stay "in progress" forever.
  // One 'close' listener per connection (not Fastify's onRequestAbort, which adds one per request
  // and cost a sixth of a /health request: bench/README.md) finds the requests still in flight.
  const watchConnection = (request: FastifyRequest) => {
    const socket = request.raw.socket as (Socket & { [IN_FLIGHT]?: Set<FastifyRequest> }) | null;
    if (!socket) return;
    let inFlight = socket[IN_FLIGHT];
    if (!inFlight) {
      const requests = new Set<FastifyRequest>();
      inFlight = socket[IN_FLIGHT] = requests;
      socket.once('close', () => {
        for (const r of requests) {
          if (r.httpMetricsLabels) record(r, r.httpMetricsLabels, CLIENT_CLOSED_REQUEST, (performance.now() - r.httpMetricsStart) / 1000, 0);
        }
        requests.clear();
      });
    }
    inFlight.add(request);
  };

  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const labels = request.httpMetricsLabels;
    // Fastify sets Content-Length on every serialized (string or Buffer) payload before sending, so
    // the header is the body size; only a stream of unknown length leaves it unset (recorded as 0).
    if (labels) record(request, labels, reply.statusCode, reply.elapsedTime / 1000, byteLength(reply.getHeader('content-length')));
    done();
  });
}
