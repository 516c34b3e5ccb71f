/** Development helpers; app.ts registers this file only when ENVIRONMENT is not production. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

export class SentryTestError extends Error {
  override name = 'SentryTestError';
}

const testSentryBody = z
  .object({ message: z.string().max(1_000).optional().describe('Appended to the error message, e.g. to see PII scrubbing at work.') })
  // Fastify validates an absent body as null.
  .nullish();

const routes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/test-sentry',
    {
      schema: {
        tags: ['dev'],
        summary: 'Raises a test error so error tracking can be verified (absent in production).',
        description:
          'Answers 500 like any unexpected error: the error is reported to Sentry (when SENTRY_DSN is set) and the ' +
          '`unhandled_error` log line carries `sentry_event_id` and `request_id`. A warning is logged first, so the ' +
          'event also shows a log breadcrumb.',
        body: testSentryBody,
      },
    },
    async (request) => {
      const detail = request.body?.message;
      request.log.warn({ detail }, 'sentry_test_error_requested');
      throw new SentryTestError(`Sentry test error raised by POST /api/v1/dev/test-sentry${detail ? `: ${detail}` : ''}`);
    },
  );
};

export default routes;
