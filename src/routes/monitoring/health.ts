/** GET /api/v1/monitoring/health: readiness, over the health registry's checks. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';

const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/health',
    {
      schema: {
        tags: ['monitoring'],
        summary: 'Readiness: 200 when every required dependency answers within 1 s, 503 otherwise or while draining.',
        description:
          '`status` is `healthy` (everything answers), `degraded` (200: an optional dependency such as Redis is down and the ' +
          'service runs without it) or `unhealthy` (503: a required dependency such as the database is down, or the process is draining).',
      },
    },
    async (_request, reply) => {
      const report = await app.health.readiness();
      const dependency = (name: string) => {
        const c = report.checks[name];
        return c ? c.status : 'not_configured';
      };
      const allOk = Object.values(report.checks).every((c) => c.status === 'ok');
      return reply.code(report.ready ? 200 : 503).send({
        status: !report.ready ? 'unhealthy' : allOk ? 'healthy' : 'degraded',
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
