/** The one error handler and the one not-found handler: every failure leaves as problem+json. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, problem, type FieldError, type Problem } from './problem.ts';
import { captureServerError } from '../observability/sentry.ts';

export function sendProblem(request: FastifyRequest, reply: FastifyReply, p: Problem): FastifyReply {
  return reply
    .code(p.status)
    .type('application/problem+json')
    .send({ ...p, request_id: request.id });
}

function fieldErrors(error: FastifyError): FieldError[] {
  const context = (error as FastifyError & { validationContext?: string }).validationContext ?? 'body';
  return (error.validation ?? []).map((v) => {
    const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
    return { field: path ? `${context}.${path}` : context, message: v.message ?? 'is invalid' };
  });
}

/**
 * The one decision about error reports: a 5xx or unexpected error goes to Sentry (when on) with
 * tags request_id and endpoint and the user's id only, and its log line carries the event id; a 4xx
 * never does.
 */
function reportServerError(request: FastifyRequest, error: Error): void {
  const sentry_event_id = captureServerError(error, {
    request_id: request.id,
    endpoint: request.routeOptions.url ?? 'unmatched',
    user_id: request.userId,
  });
  request.log.error({ error, sentry_event_id }, 'unhandled_error');
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.status >= 500) reportServerError(request, error);
      return sendProblem(request, reply, problem(error.status, error.message, error.errors ? { errors: error.errors } : {}));
    }
    if (hasZodFastifySchemaValidationErrors(error) || error.code === 'FST_ERR_VALIDATION') {
      return sendProblem(request, reply, problem(422, 'The request did not pass validation', { errors: fieldErrors(error) }));
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
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendProblem(request, reply, problem(status, error.message));
    }
    reportServerError(request, error);
    return sendProblem(request, reply, problem(500, 'An unexpected error occurred; quote the request id when reporting it'));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, problem(404, `No route for ${request.method} ${request.url.split('?')[0]}`)),
  );
}
