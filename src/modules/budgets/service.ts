/** Budgets of one user: CRUD and the current period's spending. */
import { and, asc, eq, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../../db/client.ts';
import { budgets, categories } from '../../db/schema.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { notFound, unprocessable } from '../../lib/errors.ts';
import type { BudgetRow, CreateBudget, UpdateBudget } from './schemas.ts';
import { budgetSpending, type BudgetSpending } from './spending.ts';

const cursorSchema = z.object({ n: z.string(), i: z.uuid() });

export interface BudgetPage {
  items: BudgetRow[];
  nextCursor: string | null;
}

export class BudgetService {
  constructor(private readonly db: Db) {}

  /** A category in a budget must be one of the caller's own (422 otherwise: the body is wrong). */
  private async assertOwnCategory(userId: string, categoryId: string | null | undefined): Promise<void> {
    if (!categoryId) return;
    const [row] = await this.db
      .select({ id: categories.id })
      .from(categories)
      .where(and(eq(categories.id, categoryId), eq(categories.userId, userId)));
    if (!row) throw unprocessable('The category does not exist', [{ field: 'body.category_id', message: 'no such category' }]);
  }

  async create(userId: string, input: CreateBudget): Promise<BudgetRow> {
    await this.assertOwnCategory(userId, input.category_id);
    const [row] = await this.db
      .insert(budgets)
      .values({
        userId,
        name: input.name,
        amount: input.amount,
        period: input.period,
        categoryId: input.category_id ?? null,
        alertThreshold: input.alert_threshold,
        isActive: input.is_active,
      })
      .returning();
    return row!;
  }

  /** Ordered by name (then id), with a keyset cursor on that order. */
  async list(userId: string, opts: { limit: number; cursor?: string }): Promise<BudgetPage> {
    const conditions: SQL[] = [eq(budgets.userId, userId)];
    if (opts.cursor) {
      const c = decodeCursor(opts.cursor, cursorSchema);
      conditions.push(sql`(${budgets.name}, ${budgets.id}) > (${c.n}, ${c.i}::uuid)`);
    }
    const rows = await this.db
      .select()
      .from(budgets)
      .where(and(...conditions))
      .orderBy(asc(budgets.name), asc(budgets.id))
      .limit(opts.limit + 1);
    const items = rows.slice(0, opts.limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > opts.limit && last ? encodeCursor({ n: last.name, i: last.id }) : null };
  }

  async get(userId: string, id: string): Promise<BudgetRow> {
    const [row] = await this.db.select().from(budgets).where(and(eq(budgets.id, id), eq(budgets.userId, userId)));
    if (!row) throw notFound('Budget');
    return row;
  }

  async update(userId: string, id: string, input: UpdateBudget): Promise<BudgetRow> {
    await this.get(userId, id);
    await this.assertOwnCategory(userId, input.category_id);
    const [row] = await this.db
      .update(budgets)
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.amount !== undefined && { amount: input.amount }),
        ...(input.period !== undefined && { period: input.period }),
        ...(input.category_id !== undefined && { categoryId: input.category_id }),
        ...(input.alert_threshold !== undefined && { alertThreshold: input.alert_threshold }),
        ...(input.is_active !== undefined && { isActive: input.is_active }),
        updatedAt: sql`now()`,
      })
      .where(and(eq(budgets.id, id), eq(budgets.userId, userId)))
      .returning();
    if (!row) throw notFound('Budget');
    return row;
  }

  async remove(userId: string, id: string): Promise<void> {
    const rows = await this.db
      .delete(budgets)
      .where(and(eq(budgets.id, id), eq(budgets.userId, userId)))
      .returning({ id: budgets.id });
    if (rows.length === 0) throw notFound('Budget');
  }

  async spending(userId: string, id: string, now: Date): Promise<{ budget: BudgetRow; spending: BudgetSpending }> {
    const budget = await this.get(userId, id);
    return { budget, spending: await budgetSpending(this.db, budget, now) };
  }
}
