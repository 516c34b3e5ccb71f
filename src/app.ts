/**
 * buildApp(config, deps) composes the Fastify instance in rings: core plugins, observability
 * edges, shared services (decorated on the instance), then the routes of the URL map
 * (src/routes/index.ts). It never listens.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { assemble, openCore, type AssembleOptions, type CoreOptions, type DomainServices, type Parts } from './composition.ts';
import type { Config } from './config.ts';
import type { Database } from './db/client.ts';
import type { HealthRegistry } from './observability/health.ts';
import type { Metrics } from './observability/metrics.ts';
import { requestChildLogger, type Logger } from './observability/logging.ts';
import { endpointLabel, registerHttpMetrics } from './http/metrics.ts';
import { RECENT_CAPACITY, RecentList, type ServerErrorRecord } from './observability/recent.ts';
import { SecurityEvents } from './observability/security.ts';
import { nameRequestTransaction, sentryEnabled } from './observability/sentry.ts';
import { endRequestSession, sentryServerFactory } from './observability/sentry-requests.ts';
import { METRICS_PATH } from './routes/metrics.ts';
import { registerErrorHandlers } from './http/errors.ts';
import { registerJsonBody } from './http/body.ts';
import { createEdgeHandlers } from './http/edge.ts';
import { DOCS_CSP, registerCors, registerSecurityHeaders } from './http/headers.ts';
import { genRequestId, registerRequestContext } from './http/request-context.ts';
import { registerRequestTracing } from './http/tracing.ts';
import auditPlugin from './modules/audit/plugin.ts';
import authPlugin from './modules/auth/plugin.ts';
import type { SyncService } from './modules/sync/service.ts';
import rateLimitPlugin from './ratelimit/plugin.ts';
import type { Redis } from './redis.ts';
import jobsPlugin from './jobs/plugin.ts';
import { registerRoutes } from './routes/index.ts';
import { EventLoopDelay } from './routes/monitoring/dashboards.ts';

export interface AppDeps extends CoreOptions, AssembleOptions {
  /**
   * The process's parts, assembled by the caller (`nest-egg serve`), who closes them after the app.
   * Without them the app assembles its own from `database` and the rest, and closes them with itself.
   */
  parts?: Parts;
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config;
    database: Database;
    health: HealthRegistry;
    metrics: Metrics;
    services: DomainServices;
    /** The bank sync service; undefined when bank sync is off. */
    bankSync: SyncService | undefined;
    /** The Redis client for commands (REDIS_URL); undefined in embedded mode. */
    redis: Redis | undefined;
    /** Security events: security_events_total, the security_event log line, Sentry for high severity. */
    securityEvents: SecurityEvents;
    /** This process's latest 5xx answers (the operator console's errors view). */
    recentErrors: RecentList<ServerErrorRecord>;
    /** The event loop's delay over the last minute (system-stats and the console's overview). */
    eventLoopDelay: EventLoopDelay;
  }
}

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const parts = deps.parts ?? assemble(await openCore(config, 'serve', deps), 'serve', deps);
  const { metrics } = parts;
  // Requests refused before routing answer in the same contract as the rest (src/http/edge.ts).
  const edge = createEdgeHandlers({ logger: deps.logger, metrics: config.metrics.enabled ? metrics : undefined, tracing: parts.tracing });
  // With Sentry on, each request is run by sentry-requests.ts, which decides once whether it is traced.
  const serverFactory = sentryServerFactory();
  const app = Fastify({
    ...(serverFactory ? { serverFactory } : {}),
    loggerInstance: deps.logger.child({ logger: 'http' }) as FastifyBaseLogger,
    // One completion line per request comes from request-context.ts instead of Fastify's pair.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // A request's logger is made when something logs through it (most requests never do).
    childLoggerFactory: (logger, bindings, opts) => requestChildLogger(logger as Logger, bindings, opts) as unknown as FastifyBaseLogger,
    genReqId: genRequestId,
    requestIdHeader: false,
    bodyLimit: config.bodyLimitBytes,
    // Fastify accepts a hop count too; its types list only the other forms.
    trustProxy: config.trustProxy as boolean | string[],
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    frameworkErrors: edge.frameworkErrors,
    clientErrorHandler: edge.clientErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  if (!deps.parts) app.addHook('onClose', async () => parts.close());
  const redis = parts.redis.get('commands');
  app.decorate('config', config);
  app.decorate('database', parts.database);
  app.decorate('health', parts.health);
  app.decorate('metrics', metrics);
  app.decorate('services', parts.services);
  app.decorate('bankSync', parts.services.bankSync);
  app.decorate('redis', redis);
  app.decorate('securityEvents', new SecurityEvents(metrics));
  app.decorate('recentErrors', new RecentList<ServerErrorRecord>(RECENT_CAPACITY));
  const eventLoopDelay = new EventLoopDelay();
  app.decorate('eventLoopDelay', eventLoopDelay);
  app.addHook('onClose', async () => eventLoopDelay.stop());
  // First: every later hook, the handler and what they queue run in the request's trace.
  registerRequestTracing(app, parts.tracing);
  if (config.metrics.enabled) registerHttpMetrics(app, metrics, { skip: [METRICS_PATH] });

  if (sentryEnabled()) {
    app.addHook('onRequest', (request, _reply, done) => {
      nameRequestTransaction(request.raw, request.method, endpointLabel(request.routeOptions.url));
      done();
    });
    app.addHook('onResponse', (request, _reply, done) => {
      endRequestSession(request.raw);
      done();
    });
  }
  registerRequestContext(app);
  registerErrorHandlers(app, app.recentErrors);
  registerJsonBody(app);

  // Constant security headers, Cache-Control and CORS, before the auth and rate-limit hooks.
  registerSecurityHeaders(app);
  registerCors(app, config.cors);
  await app.register(swagger, {
    openapi: {
      info: { title: 'Nest Egg API', version: config.version },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    transform: jsonSchemaTransform,
  });
  // The UI's pages get their own CSP (set on its routes only, replacing the strict API one).
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP });

  await app.register(auditPlugin, { trail: parts.audit });
  await app.register(authPlugin, { jwtSecret: parts.jwtSecret, accessTtlSeconds: config.auth.accessTokenTtlSeconds });
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
    loginThrottle: config.loginThrottle,
    accountKeySecret: parts.jwtSecret,
  });

  await app.register(jobsPlugin, { runner: parts.jobs.runner });
  await registerRoutes(app, config);

  return app;
}
