/**
 * The `nest-egg` CLI's entry point: serve | worker | migrate | create-admin | audit verify. Production runs the
 * compiled `node dist/main.js <command>`; development runs the sources through bin/nest-egg.js.
 *
 * The configuration is read once, here. For the long-running commands error tracking starts next,
 * before the application's modules are imported, so Sentry's instrumentation sees node:http and the
 * Postgres and Redis drivers as they load; only then is the command (src/commands.ts) loaded.
 */
import { ConfigError, loadConfig, type Config } from './config.ts';

const USAGE = `usage: nest-egg <command>

commands:
  serve                                   run the API on HOST:PORT (default 127.0.0.1:8000)
  worker                                  run background jobs from the queue (REDIS_URL); /metrics and /health on WORKER_PORT
  migrate                                 apply database migrations and exit
  create-admin --email E --password P     create or promote a platform admin
  audit verify                            check the audit trail's hash chain (exit 1 naming the first row that does not match)
`;

const COMMANDS = new Set(['serve', 'worker', 'migrate', 'create-admin', 'audit']);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    // Asked for, the usage is the output; missing a command, it is the error.
    (command ? process.stdout : process.stderr).write(USAGE);
    return command ? 0 : 2;
  }
  if (!COMMANDS.has(command)) {
    process.stderr.write(`unknown command: ${command}\n${USAGE}`);
    return 2;
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
  if ((command === 'serve' || command === 'worker') && config.sentry.dsn) {
    const { initSentry } = await import('./observability/sentry.ts');
    await initSentry(config);
  }
  const { runCommand } = await import('./commands.ts');
  return runCommand(command, rest, config);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  async (err: unknown) => {
    // A configuration problem found while starting (e.g. missing shared secrets) is one line, exit 2.
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`nest-egg: ${err instanceof Error ? err.message : String(err)}\n`);
    const { captureFatalAndClose } = await import('./observability/sentry.ts');
    await captureFatalAndClose(err).finally(() => process.exit(1));
  },
);
