/** Liveness, readiness (and, in later rings, metrics and the admin dashboards). */
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

  app.get(
    '/api/v1/monitoring/health',
    {
      schema: {
        tags: ['monitoring'],
        summary: 'Readiness: 200 when every required dependency answers within 1 s, 503 otherwise or while draining.',
      },
    },
    async (_request, reply) => {
      const report = await app.health.readiness();
      const dependency = (name: string) => {
        const c = report.checks[name];
        return c ? c.status : 'not_configured';
      };
      return reply.code(report.ready ? 200 : 503).send({
        status: report.ready ? 'healthy' : 'unhealthy',
        version: app.config.version,
        timestamp: new Date().toISOString(),
        environment: app.config.environment,
        database: dependency('database'),
        redis: dependency('redis'),
        draining: report.draining,
        checks: report.checks,
      });
    },
  );
};

export default routes;
