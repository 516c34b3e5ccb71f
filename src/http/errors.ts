/** The one error handler and the one not-found handler: every failure leaves as problem+json. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, type FieldError } from '../lib/errors.ts';
import { problem, type Problem } from './problem.ts';
import { serverErrorRecord, type RecentList, type ServerErrorRecord } from '../observability/recent.ts';
import { captureServerError } from '../observability/sentry.ts';
import { currentTrace } from '../observability/trace-context.ts';

export function sendProblem(request: FastifyRequest, reply: FastifyReply, p: Problem): FastifyReply {
  return reply
    .code(p.status)
    .type('application/problem+json')
    .send({ ...p, request_id: request.id, trace_id: request.trace?.traceId });
}

/** Where each validation context's input is on the request. */
const REQUEST_PART = { body: 'body', querystring: 'query', params: 'params', headers: 'headers' } as const;

/**
 * Whether the value at `path` (a validation issue's `instancePath` split) is absent from the
 * request's input. zod 4 reports a missing key by the type or option it expected (`Invalid input:
 * expected string, received undefined`, `Invalid option: …`, `Invalid input` for a union) and keeps
 * no `input` on its issues, so the input itself is looked at: the key is missing when its parent
 * is an object without it. A parent of the wrong type is that parent's own error.
 */
function isMissing(input: unknown, path: string[]): boolean {
  let node = input;
  for (const key of path) {
    if (node === undefined) return true;
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return node !== null && typeof node === 'object';
    node = (node as Record<string, unknown>)[key];
  }
  return node === undefined;
}

/**
 * Field errors named `body.x`, `query.x`, `params.x` or `headers.x`; one (the first) per field.
 * A field the request left out is reported as `Required`, for every route and whatever its type.
 */
function fieldErrors(error: FastifyError, request: FastifyRequest): FieldError[] {
  const raw = (error as FastifyError & { validationContext?: string }).validationContext ?? 'body';
  const context = raw === 'querystring' ? 'query' : raw;
  const part = REQUEST_PART[raw as keyof typeof REQUEST_PART] as keyof FastifyRequest | undefined;
  const input: unknown = part === undefined ? null : request[part];
  const byField = new Map<string, FieldError>();
  for (const v of error.validation ?? []) {
    const segments = v.instancePath.split('/').filter(Boolean);
    const path = segments.join('.');
    const field = path ? `${context}.${path}` : context;
    const message = part !== undefined && isMissing(input, segments) ? 'Required' : (v.message ?? 'is invalid');
    if (!byField.has(field)) byField.set(field, { field, message });
  }
  return [...byField.values()];
}

/**
 * A database error caused by the request's data (SQLSTATE class 22, data exception, e.g. a NUL
 * character in text; class 23, a constraint) is the client's problem, never a 500.
 */
function databaseProblem(error: unknown): Problem | null {
  const code = (error as { cause?: { code?: unknown }; code?: unknown })?.cause?.code ?? (error as { code?: unknown })?.code;
  if (typeof code !== 'string' || !/^2[23][0-9A-Z]{3}$/.test(code)) return null;
  if (code === '23505') return problem(409, 'The request conflicts with an existing record');
  if (code === '23503') return problem(409, 'The request refers to a record that no longer exists');
  return problem(422, 'A value in the request cannot be stored');
}

/** Network failures and Postgres' class 08 / 57P0x: the database is unreachable, not the request wrong. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03']);
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|database is closed|Client has encountered a connection error/i;

function databaseUnavailable(error: unknown): boolean {
  for (let e = error as { cause?: unknown; code?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith('08'))) return true;
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/**
 * The one decision about error reports: a 5xx or unexpected error goes to Sentry (when on) with
 * tags request_id and endpoint and the user's id only, and its log line carries the event id; a 4xx
 * never does.
 */
function reportServerError(request: FastifyRequest, error: Error, status: number, recent?: RecentList<ServerErrorRecord>): void {
  const sentry_event_id = captureServerError(error, {
    request_id: request.id,
    method: request.method,
    endpoint: request.routeOptions.url ?? 'unmatched',
    user_id: request.userId,
    raw: request.raw,
  });
  request.log.error({ error, sentry_event_id }, 'unhandled_error');
  recent?.push(
    serverErrorRecord({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status,
      request_id: request.id,
      trace_id: currentTrace()?.traceId ?? null,
      sentry_event_id: sentry_event_id ?? null,
      error,
    }),
  );
}

/** `recent`: where the console's list of this process's last 5xx answers is kept. */
export function registerErrorHandlers(app: FastifyInstance, recent?: RecentList<ServerErrorRecord>): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.status >= 500) reportServerError(request, error, error.status, recent);
      return sendProblem(request, reply, problem(error.status, error.message, error.errors ? { errors: error.errors } : {}));
    }
    if (hasZodFastifySchemaValidationErrors(error) || error.code === 'FST_ERR_VALIDATION') {
      return sendProblem(request, reply, problem(422, 'The request did not pass validation', { errors: fieldErrors(error, request) }));
    }
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendProblem(request, reply, problem(400, 'The request body is not valid JSON'));
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendProblem(request, reply, problem(413, 'The request body is larger than the limit'));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendProblem(request, reply, problem(415, 'Send the body as application/json'));
    }
    if (error instanceof SyntaxError && (error as FastifyError).statusCode === 400) {
      return sendProblem(request, reply, problem(400, 'The request body is not valid JSON'));
    }
    const fromDatabase = databaseProblem(error);
    if (fromDatabase) {
      request.log.warn({ error }, 'request_rejected_by_database');
      return sendProblem(request, reply, fromDatabase);
    }
    if (databaseUnavailable(error)) {
      // Still a 5xx, so still reported; the client is told to come back rather than that we broke.
      reportServerError(request, error, 503, recent);
      reply.header('retry-after', '5');
      return sendProblem(request, reply, problem(503, 'The database is unavailable; try again shortly'));
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendProblem(request, reply, problem(status, error.message));
    }
    reportServerError(request, error, 500, recent);
    return sendProblem(request, reply, problem(500, 'An unexpected error occurred; quote the request id when reporting it'));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, problem(404, `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
