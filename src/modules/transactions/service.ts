/** Transactions of one user: CRUD and the filtered, newest-first, keyset-paginated list. */
import { and, eq, gte, ilike, lte, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../../db/client.ts';
import { transactions } from '../../db/schema.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { calendarDate } from '../../lib/schemas.ts';
import { notFound, unprocessable, type FieldError } from '../../lib/errors.ts';
import { AccountService } from '../accounts/service.ts';
import { CategoryService } from '../categories/service.ts';
import type { CreateTransaction, ListTransactionsQuery, TransactionRow, UpdateTransaction } from './schemas.ts';

export interface TransactionPage {
  items: TransactionRow[];
  nextCursor: string | null;
}

const cursorSchema = z.object({ d: calendarDate, i: z.uuid() });

/** Escapes LIKE's wildcards so user text matches literally (backslash is Postgres' default LIKE escape). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** A foreign-key violation: a referenced account or category vanished between the check and the write. */
function isForeignKeyViolation(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    if (e.code === '23503') return true;
  }
  return false;
}

export class TransactionService {
  private readonly accounts: AccountService;
  private readonly categories: CategoryService;

  constructor(private readonly db: Db) {
    this.accounts = new AccountService(db);
    this.categories = new CategoryService(db);
  }

  /**
   * Accounts and categories named in a body must be the caller's own. Unknown and foreign ids
   * get the same answer, so nothing leaks about other users' rows; it is a 422 with a field error
   * because the resource addressed by the URL is fine, one field of the body is not.
   */
  private async assertReferences(userId: string, refs: { account_id?: string; category_id?: string | null }): Promise<void> {
    const errors: FieldError[] = [];
    if (refs.account_id !== undefined && !(await this.accounts.owns(userId, refs.account_id))) {
      errors.push({ field: 'body.account_id', message: 'no such account' });
    }
    if (refs.category_id && !(await this.categories.owns(userId, refs.category_id))) {
      errors.push({ field: 'body.category_id', message: 'no such category' });
    }
    if (errors.length > 0) throw unprocessable('The request refers to something that does not exist', errors);
  }

  private async write<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (isForeignKeyViolation(err)) throw unprocessable('The account or category was deleted meanwhile');
      throw err;
    }
  }

  async create(userId: string, input: CreateTransaction): Promise<TransactionRow> {
    await this.assertReferences(userId, input);
    const [row] = await this.write(() =>
      this.db
        .insert(transactions)
        .values({
          userId,
          accountId: input.account_id,
          date: input.date,
          amount: input.amount,
          merchantName: input.merchant_name ?? null,
          description: input.description ?? null,
          categoryId: input.category_id ?? null,
          pending: input.pending,
        })
        .returning(),
    );
    return row!;
  }

  /**
   * The list query: newest first (date desc, id desc), resuming after the cursor's row. It walks
   * transactions_user_date_idx in order (public so a test can EXPLAIN it).
   */
  listQuery(userId: string, q: ListTransactionsQuery) {
    const conditions: SQL[] = [eq(transactions.userId, userId)];
    if (q.account_id) conditions.push(eq(transactions.accountId, q.account_id));
    if (q.category_id) conditions.push(eq(transactions.categoryId, q.category_id));
    if (q.start_date) conditions.push(gte(transactions.date, q.start_date));
    if (q.end_date) conditions.push(lte(transactions.date, q.end_date));
    if (q.min_amount !== undefined) conditions.push(gte(transactions.amount, q.min_amount));
    if (q.max_amount !== undefined) conditions.push(lte(transactions.amount, q.max_amount));
    if (q.merchant) conditions.push(ilike(transactions.merchantName, `%${escapeLike(q.merchant)}%`));
    if (q.cursor) {
      const c = decodeCursor(q.cursor, cursorSchema);
      conditions.push(sql`(${transactions.date}, ${transactions.id}) < (${c.d}::date, ${c.i}::uuid)`);
    }
    return (
      this.db
        .select()
        .from(transactions)
        .where(and(...conditions))
        // NULLS LAST as in the index (DESC alone means NULLS FIRST), so Postgres reads the index in
        // order and stops after limit + 1 rows instead of sorting every match.
        .orderBy(sql`${transactions.date} desc nulls last`, sql`${transactions.id} desc nulls last`)
        .limit(q.limit + 1)
    );
  }

  async list(userId: string, q: ListTransactionsQuery): Promise<TransactionPage> {
    const rows = await this.listQuery(userId, q);
    const items = rows.slice(0, q.limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > q.limit && last ? encodeCursor({ d: last.date, i: last.id }) : null };
  }

  async get(userId: string, id: string): Promise<TransactionRow> {
    const [row] = await this.db.select().from(transactions).where(and(eq(transactions.id, id), eq(transactions.userId, userId)));
    if (!row) throw notFound('Transaction');
    return row;
  }

  async update(userId: string, id: string, input: UpdateTransaction): Promise<TransactionRow> {
    await this.get(userId, id);
    await this.assertReferences(userId, input);
    const [row] = await this.write(() =>
      this.db
        .update(transactions)
        .set({
          ...(input.account_id !== undefined && { accountId: input.account_id }),
          ...(input.date !== undefined && { date: input.date }),
          ...(input.amount !== undefined && { amount: input.amount }),
          ...(input.merchant_name !== undefined && { merchantName: input.merchant_name }),
          ...(input.description !== undefined && { description: input.description }),
          ...(input.category_id !== undefined && { categoryId: input.category_id }),
          ...(input.pending !== undefined && { pending: input.pending }),
          updatedAt: sql`now()`,
        })
        .where(and(eq(transactions.id, id), eq(transactions.userId, userId)))
        .returning(),
    );
    if (!row) throw notFound('Transaction');
    return row;
  }

  async remove(userId: string, id: string): Promise<void> {
    const rows = await this.db
      .delete(transactions)
      .where(and(eq(transactions.id, id), eq(transactions.userId, userId)))
      .returning({ id: transactions.id });
    if (rows.length === 0) throw notFound('Transaction');
  }
}
