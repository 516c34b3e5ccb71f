/**
 * The CLI's commands over the composition root. `serve` and `worker` run until a signal;
 * `migrate`, `create-admin` and `audit verify` open the database, do their one thing and close it.
 */
import { parseArgs } from 'node:util';
import { openCore } from './composition.ts';
import type { Config } from './config.ts';
import { SYSTEM_ACTOR } from './modules/audit/trail.ts';
import { createOrPromoteAdmin } from './modules/auth/admin.ts';
import { createLogger, getLogger, type Logger } from './observability/logging.ts';
import { closeSentry, logBreadcrumbSink } from './observability/sentry.ts';
import { runServer } from './server.ts';
import { runWorker } from './worker.ts';

/** Pending Sentry events, transactions and session counts are sent before the process ends. */
const flushSentry = (config: Config, log: Logger) => async () => {
  if (!(await closeSentry(Math.min(2_000, config.shutdown.timeoutMs)))) log.warn('sentry_flush_incomplete');
};

/** Runs one command; resolves its exit code, or -1 for a command that keeps running. */
export async function runCommand(command: string, args: string[], config: Config): Promise<number> {
  // Warnings and errors become Sentry breadcrumbs when Sentry is on (main.ts started it).
  const logger = createLogger({ ...config.log, onWarning: logBreadcrumbSink() });
  switch (command) {
    case 'serve':
      await runServer(config, logger, flushSentry(config, getLogger(logger, 'server')));
      return -1;
    case 'worker':
      if (!config.redisUrl) {
        process.stderr.write('Invalid configuration: REDIS_URL is required by nest-egg worker (without it the API runs background jobs in-process)\n');
        return 2;
      }
      await runWorker(config, logger, flushSentry(config, getLogger(logger, 'worker')));
      return -1;
    case 'migrate': {
      const { database } = await openCore(config, 'migrate', { logger });
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
        ({ values } = parseArgs({ args, options: { email: { type: 'string' }, password: { type: 'string' } } }));
      } catch {
        values = {}; // an unknown option, a stray argument or an option without its value
      }
      if (!values.email || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(values.email) || !values.password || values.password.length < 8) {
        process.stderr.write('usage: nest-egg create-admin --email <address> --password <at least 8 characters>\n');
        return 2;
      }
      const { database, audit } = await openCore(config, 'create-admin', { logger });
      try {
        await database.migrate();
        const result = await createOrPromoteAdmin(database.db, values.email, values.password);
        getLogger(logger, 'cli').info({ user_id: result.id, email: values.email, created: result.created }, 'admin_ready');
        await audit.record({
          actor: SYSTEM_ACTOR,
          action: result.created ? 'admin.create' : 'admin.promote',
          outcome: 'success',
          targetType: 'user',
          targetId: result.id,
          details: { email: values.email, via: 'cli' },
        });
      } finally {
        await database.close();
      }
      return 0;
    }
    case 'audit':
      return auditCommand(args, config, logger);
    default:
      throw new Error(`unknown command: ${command}`);
  }
}

/**
 * `nest-egg audit verify`: walks the hash chain. Exit 0 with the number of rows checked, or 1
 * naming the first row that does not match (on stdout, and on stderr for scripts that watch it).
 */
async function auditCommand(args: string[], config: Config, logger: Logger): Promise<number> {
  if (args.length !== 1 || args[0] !== 'verify') {
    process.stderr.write('usage: nest-egg audit verify\n');
    return 2;
  }
  const { database, audit } = await openCore(config, 'audit', { logger });
  try {
    await database.migrate();
    const result = await audit.verify();
    const log = getLogger(logger, 'cli');
    if (result.ok) {
      const anchor = result.anchor && result.anchor.id > 1 ? ` (from row ${result.anchor.id}; older rows were purged by retention)` : '';
      log.info({ checked: result.checked, anchor_id: result.anchor?.id }, 'audit_chain_verified');
      process.stdout.write(`audit chain OK: ${result.checked} rows checked${anchor}\n`);
      return 0;
    }
    const line = `audit chain broken at row ${result.broken.id}: ${BREAK_REASONS[result.broken.reason]} (${result.checked} rows before it matched)`;
    log.error({ row_id: result.broken.id, reason: result.broken.reason, checked: result.checked }, 'audit_chain_broken');
    process.stdout.write(`${line}\n`);
    process.stderr.write(`${line}\n`);
    return 1;
  } finally {
    await database.close();
  }
}

const BREAK_REASONS = {
  hash_mismatch: 'its contents do not match its hash',
  prev_hash_mismatch: 'its previous hash is not the hash of the row before it',
  id_gap: 'the row before it is missing',
  head_mismatch: 'the chain does not end where the chain head says (rows missing at the end?)',
} as const;
