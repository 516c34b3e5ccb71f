/** GET /health: liveness. The process is up; no dependency is touched. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['monitoring'],
        summary: 'Liveness: the process is up. Touches no dependency.',
        response: { 200: z.object({ status: z.literal('healthy') }) },
      },
    },
    async () => ({ status: 'healthy' as const }),
  );
};

export default routes;
