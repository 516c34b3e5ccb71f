/**
 * buildApp(config, deps) composes the Fastify instance in rings: core plugins, observability
 * edges, shared services, then routes laid out like the URL tree. It never listens.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from './config.ts';
import type { Database } from './db/client.ts';
import type { Logger } from './observability/logging.ts';
import { HealthRegistry } from './observability/health.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { endpointLabel, registerHttpMetrics } from './http/metrics.ts';
import { nameRequestTransaction, sentryEnabled } from './observability/sentry.ts';
import metricsRoutes, { METRICS_PATH } from './routes/metrics.ts';
import { registerErrorHandlers } from './http/errors.ts';
import { registerJsonBody } from './http/body.ts';
import { genRequestId, registerRequestContext } from './http/request-context.ts';
import authPlugin from './modules/auth/plugin.ts';
import authRoutes from './modules/auth/routes.ts';
import accountRoutes from './modules/accounts/routes.ts';
import categoryRoutes from './modules/categories/routes.ts';
import transactionRoutes from './modules/transactions/routes.ts';
import budgetRoutes from './modules/budgets/routes.ts';
import notificationRoutes from './modules/notifications/routes.ts';
import monitoringRoutes from './routes/monitoring.ts';
import adminMonitoringRoutes from './routes/admin-monitoring.ts';
import rateLimitPlugin from './ratelimit/plugin.ts';
import { closeRedisClient, createRedisClient, type Redis } from './redis.ts';
import devRoutes from './routes/dev.ts';
import jobsPlugin from './jobs/plugin.ts';
import type { JobSystem } from './jobs/index.ts';
import jobsRoutes from './routes/jobs.ts';
import plaidRoutes from './modules/sync/routes.ts';

export interface AppDeps {
  logger: Logger;
  database: Database;
  /** The JWT signing secret (config.auth.jwtSecret, or the persisted development secret). */
  jwtSecret: string;
  /** The app's metrics registry (main.ts makes it first to feed the db client); one is made otherwise. */
  metrics?: Metrics;
  /** The Redis client when REDIS_URL is set (made here when not given); the app closes it. */
  redis?: Redis;
  /** The job runner and bank sync (tests); made from the configuration otherwise (in-process without REDIS_URL). */
  jobs?: JobSystem;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    database: Database;
    health: HealthRegistry;
    metrics: Metrics;
  }
}

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ logger: 'http' }) as FastifyBaseLogger,
    // One completion line per request comes from request-context.ts instead of Fastify's pair.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    genReqId: genRequestId,
    requestIdHeader: false,
    bodyLimit: config.bodyLimitBytes,
    // Fastify accepts a hop count too; its types list only the other forms.
    trustProxy: config.trustProxy as boolean | string[],
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.decorate('config', config);
  app.decorate('database', deps.database);
  const health = new HealthRegistry();
  health.register({ name: 'database', required: true, check: () => deps.database.ping() });
  app.decorate('health', health);
  const redis = deps.redis ?? (config.redisUrl ? createRedisClient(config.redisUrl, deps.logger, { connectionName: 'nest-egg-api' }) : undefined);
  if (redis) {
    // Not required: without Redis the API still serves every request (rate limits fall back to
    // per-process ones); only queueing a bank sync fails. Taking every replica out of the load
    // balancer for a Redis outage would turn a degraded service into a full outage.
    health.register({ name: 'redis', required: false, check: async () => void (await redis.ping()) });
    app.addHook('onClose', async () => closeRedisClient(redis));
  }
  const metrics =
    deps.metrics ?? createMetrics({ version: config.version, environment: config.environment, processMetrics: config.metrics.enabled });
  app.decorate('metrics', metrics);
  health.onResult((name, up) => metrics.setDependencyUp(name, up));
  if (config.metrics.enabled) {
    metrics.watchPool(() => deps.database.pool());
    registerHttpMetrics(app, metrics, { skip: [METRICS_PATH] });
  }

  if (sentryEnabled()) {
    app.addHook('onRequest', (request, _reply, done) => {
      nameRequestTransaction(request.method, endpointLabel(request.routeOptions.url));
      done();
    });
  }
  registerRequestContext(app);
  registerErrorHandlers(app);
  registerJsonBody(app);

  await app.register(helmet, {
    // The Swagger UI at /docs needs inline styles and scripts; the JSON API is unaffected.
    contentSecurityPolicy: false,
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'Nest Egg API', version: config.version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(authPlugin, { jwtSecret: deps.jwtSecret, accessTtlSeconds: config.auth.accessTokenTtlSeconds });
  // After auth, so the limiter knows request.userId.
  await app.register(rateLimitPlugin, {
    config: config.rateLimit,
    redis,
    metrics: {
      requests: metrics.rateLimitRequests,
      hits: metrics.rateLimitHits,
      storeErrors: metrics.rateLimitStoreErrors,
      limitedRoute: (endpoint) => metrics.registerRateLimitedEndpoints([endpoint]),
    },
  });

  await app.register(jobsPlugin, { logger: deps.logger, metrics, system: deps.jobs });

  await app.register(monitoringRoutes);
  await app.register(adminMonitoringRoutes, { prefix: '/api/v1/monitoring', redis });
  await app.register(jobsRoutes, { prefix: '/api/v1/monitoring' });
  if (config.metrics.enabled) await app.register(metricsRoutes, { metrics, token: config.metrics.token });
  if (!config.isProduction) await app.register(devRoutes, { prefix: '/api/v1/dev' });

  await app.register(authRoutes, { prefix: '/api/v1/auth' });
  await app.register(accountRoutes, { prefix: '/api/v1/accounts' });
  await app.register(categoryRoutes, { prefix: '/api/v1/categories' });
  await app.register(transactionRoutes, { prefix: '/api/v1/transactions' });
  await app.register(budgetRoutes, { prefix: '/api/v1/budgets', onAlert: (priority) => metrics.recordBudgetAlert(priority) });
  await app.register(notificationRoutes, { prefix: '/api/v1/notifications' });
  await app.register(plaidRoutes, { prefix: '/api/v1/plaid' });

  return app;
}
