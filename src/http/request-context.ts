/**
 * Request ids and the one completion log line per request.
 * An incoming X-Request-ID is honoured when it is a sane token, otherwise a UUID is made.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { prescrubbed } from '../observability/logging.ts';
import { scrubText } from '../observability/redact.ts';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function genRequestId(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The request id as it may be written out: a client-sent id (a sane token, but a token could be anything) scrubbed as text; ours is a UUID. */
export function loggableRequestId(request: FastifyRequest): string {
  return request.id === request.headers['x-request-id'] ? scrubText(request.id) : request.id;
}

export function registerRequestContext(app: FastifyInstance): void {
  // Callback-style hooks: an async one costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // Written by the app's logger with the request id as a field, so a request that logs nothing
  // else never makes its own child logger (logging.ts, LazyChildLogger).
  const log = app.log;
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    // At LOG_LEVEL=warn or above the line is not written: skip building it.
    if (status < 500 && !(log as unknown as { isLevelEnabled(level: string): boolean }).isLevelEnabled('info')) return done();
    const fields = {
      request_id: loggableRequestId(request),
      trace_id: request.trace?.traceId,
      span_id: request.trace?.spanId,
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status,
      duration_ms: Math.round(reply.elapsedTime * 100) / 100,
      user_id: request.userId ?? undefined,
    };
    // The method (llhttp accepts only known ones), the route template, hex ids, numbers and the token's user id: nothing to scrub.
    prescrubbed(fields);
    if (status >= 500) log.error(fields, 'request_completed');
    else log.info(fields, 'request_completed');
    done();
  });
}
