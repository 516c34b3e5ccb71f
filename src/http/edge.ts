/**
 * Requests rejected before routing — by Node's HTTP parser (a malformed request line, a header
 * without a colon, duplicate Content-Length, Content-Length with Transfer-Encoding, headers or a
 * request line over the size limit) or by Fastify's router (a malformed percent-encoding, a path
 * parameter over the router's limit) — answer in the same contract as every other response:
 * RFC 9457 problem+json with X-Request-ID and the security headers, one `request_rejected` warn line
 * (request id and a reason code, never the raw input), and a count in http_requests_total under the
 * fixed unmatched endpoint label. No handler or hook ever sees them. Where Node closes the socket,
 * the answer says `Connection: close` first, so a pooled client retires the connection.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../observability/logging.ts';
import type { Metrics } from '../observability/metrics.ts';
import { newTraceId, requestTrace } from '../observability/trace-context.ts';
import type { Tracing } from '../observability/tracing.ts';
import { OTHER_METHOD, UNMATCHED_ENDPOINT, normalizeMethod } from './metrics.ts';
import { problem } from './problem.ts';
import { SECURITY_HEADERS } from './headers.ts';

/** The security headers as an object (for a reply) and as raw header lines (for a socket), built once. */
const HEADER_OBJECT: Readonly<Record<string, string>> = Object.freeze(Object.fromEntries(SECURITY_HEADERS));
const HEADER_LINES = SECURITY_HEADERS.map(([name, value]) => `${name}: ${value}`).join('\r\n');

export interface EdgeDeps {
  logger: Logger;
  /** Counts the rejections when metrics are on. */
  metrics?: Metrics;
  /** The head sampling policy: a router rejection still belongs to a trace (the caller's, or a new one). */
  tracing: Pick<Tracing, 'policy'>;
}

interface Rejection {
  status: number;
  reason: string;
  detail: string;
}

/** Node's parser errors (llhttp's HPE_* codes and the request timeout), as answers. */
function parserRejection(code: string | undefined): Rejection {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, reason: 'headers_too_large', detail: 'The request line or headers are larger than the limit' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, reason: 'request_timeout', detail: 'The request did not arrive in time' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { status: 400, reason: 'conflicting_length', detail: 'The request has conflicting or invalid Content-Length and Transfer-Encoding headers' };
    case 'HPE_INVALID_METHOD':
    case 'HPE_INVALID_URL':
    case 'HPE_INVALID_VERSION':
      return { status: 400, reason: 'malformed_request_line', detail: 'The request line is not valid' };
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
      return { status: 400, reason: 'invalid_header', detail: 'A request header is not valid' };
    default:
      return { status: 400, reason: 'malformed_request', detail: 'The request is not valid HTTP' };
  }
}

function routerRejection(error: FastifyError): Rejection {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') return { status: 414, reason: 'path_parameter_too_long', detail: 'A path segment is longer than the limit' };
  if (error.code === 'FST_ERR_BAD_URL') return { status: 400, reason: 'bad_url_encoding', detail: 'The path is not validly percent-encoded' };
  return { status: 400, reason: 'rejected_by_router', detail: 'The request could not be routed' };
}

export function createEdgeHandlers(deps: EdgeDeps) {
  const log = deps.logger.child({ logger: 'http.edge' });
  const count = (method: string, status: number) =>
    deps.metrics?.httpRequests.inc({ method, endpoint: UNMATCHED_ENDPOINT, status: String(status) });

  /** Fastify's `frameworkErrors`: the router refused the URL; the request object exists, its hooks have not run. */
  const frameworkErrors = (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const rejection = routerRejection(error);
    const method = normalizeMethod(request.raw.method ?? '');
    const { traceId: trace_id, spanId: span_id } = requestTrace(request.raw, deps.tracing.policy);
    log.warn({ request_id: request.id, trace_id, span_id, method, status: rejection.status, reason: rejection.reason }, 'request_rejected');
    count(method, rejection.status);
    void reply
      .code(rejection.status)
      .headers(HEADER_OBJECT)
      .header('x-request-id', request.id)
      .type('application/problem+json')
      .send(problem(rejection.status, rejection.detail, { request_id: request.id, trace_id }));
  };

  /** Sockets already answered: the parser can report more errors while the rest of the input arrives. */
  const answered = new WeakSet<Socket>();

  /** Node's `clientError`: the request never parsed, so the answer is written on the socket, which then closes. */
  const clientErrorHandler = (error: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed || answered.has(socket)) return;
    answered.add(socket);
    const rejection = parserRejection(error.code);
    const requestId = randomUUID();
    // The request never parsed (no traceparent to read): a trace of its own.
    const trace_id = newTraceId();
    log.warn({ request_id: requestId, trace_id, status: rejection.status, reason: rejection.reason, code: error.code }, 'request_rejected');
    count(OTHER_METHOD, rejection.status);
    if (socket.writable) {
      const body = JSON.stringify(problem(rejection.status, rejection.detail, { request_id: requestId, trace_id }));
      const headers = [
        `HTTP/1.1 ${rejection.status} ${STATUS_CODES[rejection.status]}`,
        'Content-Type: application/problem+json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        `X-Request-ID: ${requestId}`,
        HEADER_LINES,
        'Connection: close',
      ];
      socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
    } else {
      socket.destroy();
    }
  };

  return { frameworkErrors, clientErrorHandler };
}
