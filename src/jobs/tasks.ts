/**
 * Every background task, in one registry, and the schedules. Tasks are plain functions over the
 * services; they validate their input, say which errors are permanent, and are idempotent (a
 * replayed job does no harm). Metrics, logs and timeouts are the runner's business.
 */
import { inArray, lt } from 'drizzle-orm';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { refreshTokens } from '../db/schema.ts';
import { SYSTEM_ACTOR, type AuditTrail } from '../modules/audit/trail.ts';
import type { BudgetAlertService } from '../modules/budgets/alerts.ts';
import { TokenDecryptionError } from '../modules/sync/crypto.ts';
import { ProviderError } from '../modules/sync/provider.ts';
import { ItemGoneError, type SyncService } from '../modules/sync/service.ts';
import type { Logger } from '../observability/logging.ts';
import { PermanentTaskError, type EnqueueOptions, type EnqueuedJob, type Schedule, type TaskDefinition, type TaskName, type TaskRegistry } from './types.ts';

export interface TaskDeps {
  db: Db;
  /** Undefined when bank sync is off (BANK_SYNC_PROVIDER=none). */
  sync?: SyncService;
  alerts: BudgetAlertService;
  audit: AuditTrail;
  /** Audit rows older than this many days are purged (AUDIT_RETENTION_DAYS). */
  auditRetentionDays: number;
  /** Enqueues a follow-up job (bound to the runner once it exists). */
  enqueue: (task: TaskName, data: Record<string, unknown>, opts?: EnqueueOptions) => Promise<EnqueuedJob>;
  logger: Logger;
  /** The tasks' clock (tests pass a fixed one). */
  now?: () => Date;
}

const syncData = z.object({ item_id: z.uuid() });
const alertData = z.object({ user_id: z.uuid().optional() });
const CLEANUP_BATCH = 5_000;
const DAY_MS = 86_400_000;

function parse<T>(schema: z.ZodType<T>, data: unknown, task: string): T {
  const r = schema.safeParse(data);
  if (!r.success) throw new PermanentTaskError(`${task}: invalid job data (${r.error.issues[0]?.message ?? 'invalid'})`);
  return r.data;
}

export function createTasks(deps: TaskDeps): TaskRegistry {
  const now = deps.now ?? (() => new Date());

  const syncTransactions: TaskDefinition<unknown> = {
    name: 'sync_transactions',
    timeoutMs: 120_000,
    async run(data, run) {
      const { item_id } = parse(syncData, data, 'sync_transactions');
      if (!deps.sync) throw new PermanentTaskError('bank sync is off (BANK_SYNC_PROVIDER=none)');
      let result;
      try {
        result = await deps.sync.syncItem(item_id, run.signal);
      } catch (err) {
        if (err instanceof ItemGoneError) return { item_id, skipped: 'item_gone' };
        // ITEM_LOGIN_REQUIRED and invalid requests will fail the same way until the user acts.
        if (err instanceof ProviderError && !err.retryable) throw new PermanentTaskError(`${err.code}: ${err.message}`, { cause: err });
        if (err instanceof TokenDecryptionError) throw new PermanentTaskError(`the item's access token cannot be decrypted: ${err.message}`, { cause: err });
        throw err;
      }
      if (result.added + result.modified + result.removed > 0) {
        // New spending may cross a budget's threshold: check this user's budgets soon.
        await deps
          .enqueue('check_budget_alerts', { user_id: result.userId }, { dedupeKey: `check_budget_alerts:${result.userId}` })
          .catch((error: unknown) => deps.logger.warn({ user_id: result.userId, error: { message: (error as Error).message } }, 'follow_up_enqueue_failed'));
      }
      return { item_id, added: result.added, modified: result.modified, removed: result.removed, pages: result.pages };
    },
  };

  const checkBudgetAlerts: TaskDefinition<unknown> = {
    name: 'check_budget_alerts',
    timeoutMs: 600_000,
    async run(data) {
      const { user_id } = parse(alertData, data, 'check_budget_alerts');
      if (user_id) {
        const r = await deps.alerts.checkUser(user_id, now());
        return { checked: r.checked, created: r.alerts.length };
      }
      return deps.alerts.checkAll(now());
    },
  };

  const cleanupRefreshTokens: TaskDefinition<unknown> = {
    name: 'cleanup_expired_refresh_tokens',
    timeoutMs: 300_000,
    async run(_data, run) {
      // In batches, so no single statement holds locks on many rows for long.
      let deleted = 0;
      for (;;) {
        run.signal.throwIfAborted();
        const batch = deps.db
          .select({ id: refreshTokens.id })
          .from(refreshTokens)
          .where(lt(refreshTokens.expiresAt, now()))
          .limit(CLEANUP_BATCH);
        const rows = await deps.db.delete(refreshTokens).where(inArray(refreshTokens.id, batch)).returning({ id: refreshTokens.id });
        deleted += rows.length;
        if (rows.length < CLEANUP_BATCH) break;
      }
      deps.logger.info({ deleted }, 'refresh_tokens_cleaned_up');
      return { deleted };
    },
  };

  const purgeAuditEvents: TaskDefinition<unknown> = {
    name: 'purge_audit_events',
    timeoutMs: 300_000,
    async run(_data, run) {
      const cutoff = new Date(now().getTime() - deps.auditRetentionDays * DAY_MS);
      const deleted = await deps.audit.purgeBefore(cutoff, run.signal);
      // The purge is itself on the record (and keeps the trail from being left empty by one).
      if (deleted > 0) {
        await deps.audit.record({
          actor: SYSTEM_ACTOR,
          action: 'audit.retention_purge',
          outcome: 'success',
          targetType: 'audit_events',
          details: { deleted, retention_days: deps.auditRetentionDays, cutoff: cutoff.toISOString() },
        });
      }
      deps.logger.info({ deleted, retention_days: deps.auditRetentionDays }, 'audit_events_purged');
      return { deleted };
    },
  };

  return new Map<string, TaskDefinition<never>>(
    [syncTransactions, checkBudgetAlerts, cleanupRefreshTokens, purgeAuditEvents].map((t) => [t.name, t as TaskDefinition<never>]),
  );
}

/** The configured daily schedules (UTC). */
export function schedulesOf(config: Config): Schedule[] {
  const out: Schedule[] = [];
  const { budgetAlerts, tokenCleanup, auditRetention } = config.jobs.schedules;
  if (budgetAlerts) out.push({ id: 'daily-budget-alerts', task: 'check_budget_alerts', dailyAt: budgetAlerts });
  if (tokenCleanup) out.push({ id: 'daily-refresh-token-cleanup', task: 'cleanup_expired_refresh_tokens', dailyAt: tokenCleanup });
  if (auditRetention) out.push({ id: 'daily-audit-retention', task: 'purge_audit_events', dailyAt: auditRetention });
  return out;
}
