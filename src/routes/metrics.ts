/**
 * GET /metrics: the Prometheus exposition of the process's registry (app.metrics), on the API and
 * the worker alike. Registered only when METRICS_ENABLED; with METRICS_TOKEN set, the scraper must send `Authorization: Bearer <token>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { unauthorized } from '../lib/errors.ts';
import { bearerToken } from '../modules/auth/plugin.ts';
import { OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, negotiateFormat } from '../observability/metrics.ts';

export const METRICS_PATH = '/metrics';


const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant time: both sides are hashed to equal-length digests before comparing. */
export function tokenMatches(presented: string | null, expected: Buffer): boolean {
  return timingSafeEqual(digest(presented ?? ''), expected) && presented !== null;
}

const routes: FastifyPluginAsync = async (app) => {
  const token = app.config.metrics.token;
  const expected = token === undefined ? undefined : digest(token);

  app.get(
    METRICS_PATH,
    {
      schema: {
        tags: ['monitoring'],
        summary: 'Prometheus metrics (text format 0.0.4, or OpenMetrics when the Accept header asks for it).',
        ...(expected ? { security: [{ bearer: [] }] } : {}),
      },
    },
    async (request, reply) => {
      if (expected && !tokenMatches(bearerToken(request.headers.authorization), expected)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        throw unauthorized('A valid metrics bearer token (METRICS_TOKEN) is required');
      }
      const format = negotiateFormat(request.headers.accept);
      const body = await app.metrics.render(format);
      return reply
        .header('cache-control', 'no-store')
        .type(format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE)
        .send(body);
    },
  );
};

export default routes;
