/** Accounts of one user. API-created accounts are `manual`; bank sync creates the `plaid` ones. */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { accounts } from '../../db/schema.ts';
import { notFound } from '../../lib/errors.ts';
import type { AccountRow, CreateAccount, UpdateAccount } from './schemas.ts';

export class AccountService {
  constructor(private readonly db: Db) {}

  async create(userId: string, input: CreateAccount): Promise<AccountRow> {
    const [row] = await this.db
      .insert(accounts)
      .values({
        userId,
        name: input.name,
        type: input.type,
        institution: input.institution ?? null,
        mask: input.mask ?? null,
        currentBalance: input.current_balance,
        currency: input.currency,
        source: 'manual',
      })
      .returning();
    return row!;
  }

  /** A user has a handful of accounts: all of them, oldest first. */
  async list(userId: string): Promise<AccountRow[]> {
    return this.db.select().from(accounts).where(eq(accounts.userId, userId)).orderBy(asc(accounts.createdAt), asc(accounts.id));
  }

  async get(userId: string, id: string): Promise<AccountRow> {
    const [row] = await this.db.select().from(accounts).where(and(eq(accounts.id, id), eq(accounts.userId, userId)));
    if (!row) throw notFound('Account');
    return row;
  }

  /** True when the account exists and belongs to the user. */
  async owns(userId: string, id: string): Promise<boolean> {
    const [row] = await this.db.select({ id: accounts.id }).from(accounts).where(and(eq(accounts.id, id), eq(accounts.userId, userId)));
    return row !== undefined;
  }

  async update(userId: string, id: string, input: UpdateAccount): Promise<AccountRow> {
    const [row] = await this.db
      .update(accounts)
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.type !== undefined && { type: input.type }),
        ...(input.institution !== undefined && { institution: input.institution }),
        ...(input.mask !== undefined && { mask: input.mask }),
        ...(input.current_balance !== undefined && { currentBalance: input.current_balance }),
        ...(input.currency !== undefined && { currency: input.currency }),
        updatedAt: sql`now()`,
      })
      .where(and(eq(accounts.id, id), eq(accounts.userId, userId)))
      .returning();
    if (!row) throw notFound('Account');
    return row;
  }

  /** Deletes the account; its transactions go with it (ON DELETE CASCADE). */
  async remove(userId: string, id: string): Promise<void> {
    const rows = await this.db
      .delete(accounts)
      .where(and(eq(accounts.id, id), eq(accounts.userId, userId)))
      .returning({ id: accounts.id });
    if (rows.length === 0) throw notFound('Account');
  }
}
