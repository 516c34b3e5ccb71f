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
import { registerErrorHandlers } from './http/errors.ts';
import { genRequestId, registerRequestContext } from './http/request-context.ts';
import authPlugin from './modules/auth/plugin.ts';
import authRoutes from './modules/auth/routes.ts';
import accountRoutes from './modules/accounts/routes.ts';
import categoryRoutes from './modules/categories/routes.ts';
import transactionRoutes from './modules/transactions/routes.ts';
import budgetRoutes from './modules/budgets/routes.ts';
import notificationRoutes from './modules/notifications/routes.ts';
import monitoringRoutes from './routes/monitoring.ts';
import devRoutes from './routes/dev.ts';

export interface AppDeps {
  logger: Logger;
  database: Database;
  /** The JWT signing secret (config.auth.jwtSecret, or the persisted development secret). */
  jwtSecret: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    database: Database;
    health: HealthRegistry;
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

  registerRequestContext(app);
  registerErrorHandlers(app);

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

  await app.register(monitoringRoutes);
  if (!config.isProduction) await app.register(devRoutes, { prefix: '/api/v1/dev' });

  await app.register(authRoutes, { prefix: '/api/v1/auth' });
  await app.register(accountRoutes, { prefix: '/api/v1/accounts' });
  await app.register(categoryRoutes, { prefix: '/api/v1/categories' });
  await app.register(transactionRoutes, { prefix: '/api/v1/transactions' });
  await app.register(budgetRoutes, { prefix: '/api/v1/budgets' });
  await app.register(notificationRoutes, { prefix: '/api/v1/notifications' });

  return app;
}
