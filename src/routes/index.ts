/**
 * The URL map: every path prefix of the API and the file that serves it, in one table. A URL's
 * path leads here, and from here to its handler. Route files read what they need from the app
 * (app.config, app.metrics, app.services, …), so each entry is just a prefix and a plugin.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config.ts';
import accountRoutes from '../modules/accounts/routes.ts';
import authRoutes from '../modules/auth/routes.ts';
import budgetRoutes from '../modules/budgets/routes.ts';
import categoryRoutes from '../modules/categories/routes.ts';
import notificationRoutes from '../modules/notifications/routes.ts';
import plaidRoutes from '../modules/sync/routes.ts';
import transactionRoutes from '../modules/transactions/routes.ts';
import devRoutes from './dev.ts';
import livenessRoutes from './health.ts';
import metricsRoutes from './metrics.ts';
import auditRoutes from './monitoring/audit.ts';
import dashboardRoutes from './monitoring/dashboards.ts';
import readinessRoutes from './monitoring/health.ts';
import jobRoutes from './monitoring/jobs.ts';
import opsConsole from './ops/index.ts';

interface RouteGroup {
  prefix: string;
  /** `src/…` file that serves the prefix (for the reader: the table is the map). */
  plugin: FastifyPluginAsync;
  /** Registered only when this holds. */
  when?: (config: Config) => boolean;
}

export const ROUTES: readonly RouteGroup[] = [
  { prefix: '', plugin: livenessRoutes }, //                                   GET /health                  routes/health.ts
  { prefix: '', plugin: metricsRoutes, when: (c) => c.metrics.enabled }, //     GET /metrics                 routes/metrics.ts
  { prefix: '/api/v1/monitoring', plugin: readinessRoutes }, //                GET …/health                 routes/monitoring/health.ts
  { prefix: '/api/v1/monitoring', plugin: dashboardRoutes }, //                GET …/rate-limits, …/system-stats  routes/monitoring/dashboards.ts
  { prefix: '/api/v1/monitoring', plugin: jobRoutes }, //                      GET …/jobs                   routes/monitoring/jobs.ts
  { prefix: '/api/v1/monitoring', plugin: auditRoutes }, //                    GET …/audit                  routes/monitoring/audit.ts
  { prefix: '/ops', plugin: opsConsole, when: (c) => c.ops.enabled }, //       /ops, /ops/assets/*, /ops/api/*  routes/ops/index.ts
  { prefix: '/api/v1/dev', plugin: devRoutes, when: (c) => !c.isProduction }, // POST …/test-sentry         routes/dev.ts
  { prefix: '/api/v1/auth', plugin: authRoutes }, //                           modules/auth/routes.ts
  { prefix: '/api/v1/accounts', plugin: accountRoutes }, //                    modules/accounts/routes.ts
  { prefix: '/api/v1/categories', plugin: categoryRoutes }, //                 modules/categories/routes.ts
  { prefix: '/api/v1/transactions', plugin: transactionRoutes }, //            modules/transactions/routes.ts
  { prefix: '/api/v1/budgets', plugin: budgetRoutes }, //                      modules/budgets/routes.ts
  { prefix: '/api/v1/notifications', plugin: notificationRoutes }, //          modules/notifications/routes.ts
  { prefix: '/api/v1/plaid', plugin: plaidRoutes }, //                         modules/sync/routes.ts
];

export async function registerRoutes(app: FastifyInstance, config: Config): Promise<void> {
  for (const group of ROUTES) {
    if (group.when && !group.when(config)) continue;
    await app.register(group.plugin, { prefix: group.prefix });
  }
}
