/**
 * The `nest-egg` CLI: serve | migrate | create-admin.
 * Configuration is read once here and passed down.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openDatabase, type Database } from './db/client.ts';
import { createLogger, getLogger, type Logger } from './observability/logging.ts';
import { buildApp } from './app.ts';
import { resolveJwtSecret } from './modules/auth/secret.ts';
import { createOrPromoteAdmin } from './modules/auth/admin.ts';

const USAGE = `usage: nest-egg <command>

commands:
  serve                                   run the API on HOST:PORT (default 127.0.0.1:8000)
  migrate                                 apply database migrations and exit
  create-admin --email E --password P     create or promote a platform admin
`;

async function open(config: Config, logger: Logger): Promise<Database> {
  const log = getLogger(logger, 'db');
  const database = await openDatabase({
    url: config.database.url,
    dataDir: config.database.dataDir,
    poolSize: config.database.poolSize,
    onPoolError: (error) => log.warn({ error }, 'db_pool_client_error'),
  });
  return database;
}

async function serve(config: Config, logger: Logger): Promise<void> {
  const log = getLogger(logger, 'server');
  const database = await open(config, logger);
  if (config.database.migrateOnStart) await database.migrate();
  const app = await buildApp(config, { logger, database, jwtSecret: resolveJwtSecret(config) });
  await app.listen({ port: config.port, host: config.host });
  log.info(
    { port: config.port, host: config.host, environment: config.environment, version: config.version, database: database.mode },
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
    await database.close();
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
    process.stdout.write(USAGE);
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
  const logger = createLogger(config.log);

  switch (command) {
    case 'serve':
      await serve(config, logger);
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
      const { values } = parseArgs({ args: rest, options: { email: { type: 'string' }, password: { type: 'string' } } });
      if (!values.email || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email) || !values.password || values.password.length < 8) {
        process.stderr.write('create-admin needs --email <address> and --password <at least 8 characters>\n');
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
    process.exit(1);
  },
);
