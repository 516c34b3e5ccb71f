/**
 * Budget alerts: the one place that checks budgets and records `budget_alert` notifications.
 * Used by POST /budgets/check-alerts (one user) and meant for a background worker (every user).
 *
 * The rule is in alert-rules.ts. Deduplication is the database's job: notifications has a unique
 * index on (budget_id, period_start, priority) and the insert is ON CONFLICT DO NOTHING, so two
 * checks racing each other (two requests, two workers) record one alert per budget, period and
 * priority, and only rows actually inserted are reported and counted.
 */
import { and, asc, eq, gt } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { budgets, notifications } from '../../db/schema.ts';
import { fromCents, toCents } from '../../lib/money.ts';
import type { NotificationRow } from '../notifications/schemas.ts';
import { budgetAlertPriority, percentOf, projectedSpentCents, type AlertPriority } from './alert-rules.ts';
import type { BudgetRow } from './schemas.ts';
import { budgetSpending, type BudgetSpending } from './spending.ts';

export const BUDGET_ALERT_TYPE = 'budget_alert';

/** The slice of a pino logger this service writes to. */
export interface AlertLogger {
  info(obj: Record<string, unknown>, event: string): void;
}

export interface BudgetAlertOptions {
  /**
   * Called once for every alert actually recorded (never for a duplicate suppressed by the unique
   * index). The metrics layer wires `budget_alerts_total{priority}` here, e.g.
   * `onAlert: (priority) => metrics.budgetAlerts.inc({ priority })`.
   */
  onAlert?: (priority: AlertPriority) => void;
  logger?: AlertLogger;
}

export interface UserCheckResult {
  /** Active budgets examined. */
  checked: number;
  /** Notifications created by this check. */
  alerts: NotificationRow[];
}

export interface AllCheckResult {
  checked: number;
  created: number;
}

const PAGE = 500;

function alertText(budget: BudgetRow, s: BudgetSpending, priority: AlertPriority): { title: string; message: string } {
  const spent = fromCents(s.spentCents);
  const amount = fromCents(s.amountCents);
  const percent = percentOf(s.spentCents, s.amountCents);
  const period = `${s.window.start} to ${s.window.end}`;
  const name = `"${budget.name}"`;
  switch (priority) {
    case 'high':
      return {
        title: `Budget ${name} exceeded`,
        message: `You have spent ${spent} of your ${budget.period} budget ${name} of ${amount} (${percent}%) for ${period}.`,
      };
    case 'medium':
      return {
        title: `Budget ${name} at ${percent}%`,
        message: `You have spent ${spent} of your ${budget.period} budget ${name} of ${amount} (${percent}%) for ${period}, past your alert threshold of ${toCents(budget.alertThreshold)}%.`,
      };
    case 'low': {
      const projected = fromCents(projectedSpentCents(s.spentCents, s.progress) ?? s.spentCents);
      return {
        title: `Budget ${name} on pace to overspend`,
        message: `You have spent ${spent} of your ${budget.period} budget ${name} of ${amount} (${percent}%) for ${period}; at this pace you will spend about ${projected} by ${s.window.end}.`,
      };
    }
  }
}

export class BudgetAlertService {
  constructor(
    private readonly db: Db,
    private readonly options: BudgetAlertOptions = {},
  ) {}

  /** Checks the user's active budgets at `now`; returns the notifications this call created. */
  async checkUser(userId: string, now: Date = new Date()): Promise<UserCheckResult> {
    const active = await this.db
      .select()
      .from(budgets)
      .where(and(eq(budgets.userId, userId), eq(budgets.isActive, true)))
      .orderBy(asc(budgets.name), asc(budgets.id));
    const alerts: NotificationRow[] = [];
    for (const budget of active) {
      const created = await this.checkBudget(budget, now);
      if (created) alerts.push(created);
    }
    return { checked: active.length, alerts };
  }

  /** Checks every user's active budgets at `now`, a page at a time (for the background worker). */
  async checkAll(now: Date = new Date()): Promise<AllCheckResult> {
    let checked = 0;
    let created = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.db
        .select()
        .from(budgets)
        .where(and(eq(budgets.isActive, true), after ? gt(budgets.id, after) : undefined))
        .orderBy(asc(budgets.id))
        .limit(PAGE);
      for (const budget of page) {
        checked++;
        if (await this.checkBudget(budget, now)) created++;
      }
      if (page.length < PAGE) break;
      after = page.at(-1)!.id;
    }
    return { checked, created };
  }

  /** Records the alert the budget deserves now, unless that priority already went out this period. */
  private async checkBudget(budget: BudgetRow, now: Date): Promise<NotificationRow | null> {
    const s = await budgetSpending(this.db, budget, now);
    const priority = budgetAlertPriority({
      spentCents: s.spentCents,
      amountCents: s.amountCents,
      thresholdHundredths: toCents(budget.alertThreshold),
      progress: s.progress,
    });
    if (!priority) return null;
    const { title, message } = alertText(budget, s, priority);
    const projected = projectedSpentCents(s.spentCents, s.progress);
    const [row] = await this.db
      .insert(notifications)
      .values({
        userId: budget.userId,
        type: BUDGET_ALERT_TYPE,
        priority,
        title,
        message,
        budgetId: budget.id,
        periodStart: s.window.start,
        data: {
          spent: fromCents(s.spentCents),
          amount: fromCents(s.amountCents),
          percent: percentOf(s.spentCents, s.amountCents),
          period_end: s.window.end,
          ...(priority === 'low' && projected !== null && { projected_spent: fromCents(projected) }),
        },
      })
      .onConflictDoNothing()
      .returning();
    if (!row) return null;
    this.options.onAlert?.(priority);
    this.options.logger?.info(
      { user_id: budget.userId, budget_id: budget.id, priority, period_start: s.window.start, percent: percentOf(s.spentCents, s.amountCents) },
      'budget_alert_created',
    );
    return row;
  }
}
