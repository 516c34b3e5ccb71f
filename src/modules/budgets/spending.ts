/**
 * What a budget has spent in its current period. `spent` is money out only: the negated sum of the
 * negative transaction amounts (pending ones included) dated within the period, in the budget's
 * category or in every category when it has none. Money in never reduces it.
 */
import { and, eq, gte, lt, lte, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { transactions } from '../../db/schema.ts';
import { fromCents, toCents } from '../../lib/money.ts';
import { percentOf, projectedSpentCents } from './alert-rules.ts';
import { periodProgress, periodWindow, type PeriodProgress, type PeriodWindow } from './periods.ts';
import type { BudgetRow } from './schemas.ts';

export interface BudgetSpending {
  window: PeriodWindow;
  progress: PeriodProgress;
  amountCents: bigint;
  spentCents: bigint;
}

export async function spentInWindow(db: Db, userId: string, categoryId: string | null, window: PeriodWindow): Promise<bigint> {
  const [row] = await db
    .select({ spent: sql<string>`coalesce(sum(-${transactions.amount}), 0)::text` })
    .from(transactions)
    .where(
      and(
        eq(transactions.userId, userId),
        lt(transactions.amount, '0'),
        gte(transactions.date, window.start),
        lte(transactions.date, window.end),
        categoryId ? eq(transactions.categoryId, categoryId) : undefined,
      ),
    );
  return toCents(row?.spent ?? '0');
}

export async function budgetSpending(db: Db, budget: BudgetRow, now: Date): Promise<BudgetSpending> {
  const window = periodWindow(budget.period, now);
  const spentCents = await spentInWindow(db, budget.userId, budget.categoryId, window);
  return { window, progress: periodProgress(window, now), amountCents: toCents(budget.amount), spentCents };
}

/** The JSON of GET /budgets/:id/spending. */
export function spendingView(budget: BudgetRow, s: BudgetSpending) {
  const projected = projectedSpentCents(s.spentCents, s.progress);
  return {
    budget_id: budget.id,
    period: budget.period,
    period_start: s.window.start,
    period_end: s.window.end,
    amount: fromCents(s.amountCents),
    spent: fromCents(s.spentCents),
    remaining: fromCents(s.amountCents - s.spentCents),
    percent: percentOf(s.spentCents, s.amountCents),
    projected_spent: projected === null ? null : fromCents(projected),
  };
}
