/**
 * Request bodies are JSON only. An empty body sent with `Content-Type: application/json` (what
 * many clients send on a body-less POST) counts as no body, so routes without a body accept it and
 * routes that need one answer 422 naming it; any other content type is a 415.
 */
import type { FastifyInstance } from 'fastify';
import { keepRequestBody } from '../observability/sentry-requests.ts';

export function registerJsonBody(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === '') return done(null, undefined);
    // The body as sent (before validation strips what the schema does not know), for an error event.
    keepRequestBody(request.raw, text);
    parseJson(request, text, done);
  });
}
