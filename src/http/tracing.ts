/**
 * Each request runs in its trace (src/observability/trace-context.ts): the app's first hook takes
 * the head decision (or the one the server factory took), and calls the rest of the request's
 * hooks and its handler inside the trace, so every log line, query and job queued from there on
 * knows it. A sampled request with OTLP export configured gets its `http.server` span, named by
 * its route template (never the raw path), ended when the response closes.
 */
import type { FastifyInstance } from 'fastify';
import { SpanStatusCode } from '@opentelemetry/api';
import { requestTrace, runInTrace, type TraceContext } from '../observability/trace-context.ts';
import type { Tracing } from '../observability/tracing.ts';
import { endpointLabel, normalizeMethod } from './metrics.ts';
import { loggableRequestId } from './request-context.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's trace (its ids are on every log line and problem body). */
    trace: TraceContext | undefined;
  }
}

export function registerRequestTracing(app: FastifyInstance, tracing: Tracing): void {
  app.decorateRequest('trace', undefined);
  const { policy, export: spans } = tracing;
  app.addHook('onRequest', (request, reply, done) => {
    const ctx = requestTrace(request.raw, policy);
    request.trace = ctx;
    if (spans !== undefined && ctx.sampled && ctx.span === undefined) {
      const method = normalizeMethod(request.method);
      const route = request.routeOptions.url;
      const span = spans.start(ctx, route === undefined ? method : `${method} ${endpointLabel(route)}`, 'server', {
        'http.request.method': method,
        'http.route': endpointLabel(route),
        'url.scheme': request.protocol,
        'nest_egg.request_id': loggableRequestId(request),
      });
      reply.raw.once('close', () => {
        const status = reply.statusCode;
        span.setAttribute('http.response.status_code', status);
        if (request.userId) span.setAttribute('user.id', request.userId);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        if (!reply.raw.writableFinished) span.setAttribute('error.type', 'client_closed_request');
        span.end();
      });
    }
    runInTrace(ctx, done);
  });
}
