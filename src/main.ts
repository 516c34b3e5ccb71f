/**
 * The `nest-egg` CLI: serve | worker | migrate | create-admin.
 * Configuration is read once here and passed down.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openDatabase, type Database, type QueryObserver } from './db/client.ts';
import { createLogger, getLogger, type Logger } from './observability/logging.ts';
import { captureFatalAndClose, closeSentry, initSentry, logBreadcrumbSink, sentryEnabled } from './observability/sentry.ts';
import { createMetrics } from './observability/metrics.ts';
import { BusinessMetricsRefresher, countBusinessTotals } from './observability/business-metrics.ts';
import { buildApp } from './app.ts';
import { createRedisClient } from './redis.ts';
import { resolveJwtSecret } from './modules/auth/secret.ts';
import { createOrPromoteAdmin } from './modules/auth/admin.ts';
import { runWorker } from './worker.ts';

const USAGE = `usage: nest-egg <command>

commands:
  serve                                   run the API on HOST:PORT (default 127.0.0.1:8000)
  worker                                  run background jobs from the queue (REDIS_URL); /metrics and /health on WORKER_PORT
  migrate                                 apply database migrations and exit
  create-admin --email E --password P     create or promote a platform admin
`;

async function open(config: Config, logger: Logger, onQuery?: QueryObserver): Promise<Database> {
  const log = getLogger(logger, 'db');
  const database = await openDatabase({
    url: config.database.url,
    dataDir: config.database.dataDir,
    poolSize: config.database.poolSize,
    onQuery,
    onPoolError: (error) => log.warn({ error }, 'db_pool_client_error'),
  });
  return database;
}

async function serve(config: Config, logger: Logger): Promise<void> {
  const log = getLogger(logger, 'server');
  // The metrics registry comes first: the db client times every query into it.
  const metrics = createMetrics({ version: config.version, environment: config.environment, processMetrics: config.metrics.enabled });
  const database = await open(config, logger, config.metrics.enabled ? metrics.observeQuery : undefined);
  if (config.database.migrateOnStart) await database.migrate();
  // The shared rate-limit store (REDIS_URL); the app closes the client when it closes.
  const redis = config.redisUrl ? createRedisClient(config.redisUrl, logger, { connectionName: 'nest-egg-api' }) : undefined;
  const app = await buildApp(config, { logger, database, jwtSecret: resolveJwtSecret(config), metrics, redis });
  const businessMetrics = config.metrics.enabled
    ? new BusinessMetricsRefresher({
        metrics,
        count: () => countBusinessTotals(database.db),
        probe: () => app.health.readiness(),
        intervalMs: config.metrics.businessRefreshIntervalMs,
        logger: getLogger(logger, 'metrics'),
      })
    : undefined;
  await businessMetrics?.start();
  await app.listen({ port: config.port, host: config.host });
  log.info(
    { port: config.port, host: config.host, environment: config.environment, version: config.version, database: database.mode, sentry: sentryEnabled() },
    'server_started',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Readiness answers 503 at once, so load balancers stop sending new work.
    app.health.setDraining();
    log.info({ signal, drain_delay_ms: config.shutdown.drainDelayMs }, 'shutdown_started');
    const force = setTimeout(() => {
      log.error({ timeout_ms: config.shutdown.timeoutMs }, 'shutdown_timed_out');
      app.server.closeAllConnections();
      process.exit(1);
    }, config.shutdown.drainDelayMs + config.shutdown.timeoutMs);
    force.unref();
    await new Promise((r) => setTimeout(r, config.shutdown.drainDelayMs));
    // close() stops accepting connections, lets in-flight requests finish, then runs onClose hooks.
    await app.close();
    await businessMetrics?.stop();
    await database.close();
    // Pending Sentry events, transactions and session counts are sent before the process ends.
    if (!(await closeSentry(Math.min(2_000, config.shutdown.timeoutMs)))) log.warn('sentry_flush_incomplete');
    log.info('shutdown_complete');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    // Asked for, the usage is the output; missing a command, it is the error.
    (command ? process.stdout : process.stderr).write(USAGE);
    return command ? 0 : 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Error tracking starts before the logger (its warnings become breadcrumbs) and the app. For the
  // long-running commands bin/nest-egg.js has started it already, before the app's modules loaded.
  if (command === 'serve' || command === 'worker') await initSentry(config);
  const logger = createLogger({ ...config.log, onWarning: logBreadcrumbSink() });

  switch (command) {
    case 'serve':
      await serve(config, logger);
      return -1; // keep running
    case 'worker':
      if (!config.redisUrl) {
        process.stderr.write('Invalid configuration: REDIS_URL is required by nest-egg worker (without it the API runs background jobs in-process)\n');
        return 2;
      }
      await runWorker(config, logger, async () => {
        if (!(await closeSentry(Math.min(2_000, config.shutdown.timeoutMs)))) getLogger(logger, 'worker').warn('sentry_flush_incomplete');
      });
      return -1; // keep running
    case 'migrate': {
      const database = await open(config, logger);
      try {
        await database.migrate();
        getLogger(logger, 'db').info({ database: database.mode }, 'migrations_applied');
      } finally {
        await database.close();
      }
      return 0;
    }
    case 'create-admin': {
      let values: { email?: string; password?: string };
      try {
        ({ values } = parseArgs({ args: rest, options: { email: { type: 'string' }, password: { type: 'string' } } }));
      } catch {
        values = {}; // an unknown option, a stray argument or an option without its value
      }
      if (!values.email || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email) || !values.password || values.password.length < 8) {
        process.stderr.write('usage: nest-egg create-admin --email <address> --password <at least 8 characters>\n');
        return 2;
      }
      const database = await open(config, logger);
      try {
        await database.migrate();
        const result = await createOrPromoteAdmin(database.db, values.email, values.password);
        getLogger(logger, 'cli').info({ user_id: result.id, email: values.email, created: result.created }, 'admin_ready');
      } finally {
        await database.close();
      }
      return 0;
    }
    default:
      process.stderr.write(`unknown command: ${command}\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`nest-egg: ${err instanceof Error ? err.message : String(err)}\n`);
    void captureFatalAndClose(err).finally(() => process.exit(1));
  },
);
