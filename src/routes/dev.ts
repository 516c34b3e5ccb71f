/** Development helpers; app.ts registers this file only when ENVIRONMENT is not production. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

export class SentryTestError extends Error {
  override name = 'SentryTestError';
}

const routes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/test-sentry',
    { schema: { tags: ['dev'], summary: 'Raises a test error so error tracking can be verified (absent in production).' } },
    async () => {
      throw new SentryTestError('Sentry test error raised by POST /api/v1/dev/test-sentry');
    },
  );
};

export default routes;
