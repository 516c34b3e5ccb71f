/**
 * Bank linking and transaction sync. Plain business logic over `Db` and a BankProvider: the
 * routes call it for linking and listing, the `sync_transactions` task calls syncItem.
 *
 * A sync pulls every page of /transactions/sync from the stored cursor, then applies added,
 * modified and removed transactions, the refreshed balances and the new cursor in one database
 * transaction. It is idempotent and safe to run concurrently for one item:
 * - rows are keyed by (account_id, external_id), inserted ON CONFLICT DO UPDATE;
 * - the new cursor is written only if the stored one is still the one we started from
 *   (compare-and-set); when another sync got there first, nothing of ours is applied and we
 *   start again from its cursor.
 * Plaid's positive-outflow amounts are negated on import (ours are negative for money out).
 */
import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { accounts, budgets, categories, plaidItems, transactions } from '../../db/schema.ts';
import { conflict, notFound } from '../../lib/errors.ts';
import { fromCents } from '../../lib/money.ts';
import { TokenDecryptionError, type TokenCipher } from './crypto.ts';
import { ProviderError, type BankProvider, type ProviderAccount, type ProviderTransaction } from './provider.ts';


/** The dedupe key of an item's sync job: one waits at a time, and never two run at once. */
export const syncDedupeKey = (itemId: string) => `sync_transactions:${itemId}`;

export type PlaidItemRow = typeof plaidItems.$inferSelect;
export type ItemStatus = 'active' | 'login_required' | 'error';
export type SyncStatus = 'success' | 'failure';

export interface SyncLogger {
  info(obj: Record<string, unknown>, event: string): void;
  warn(obj: Record<string, unknown>, event: string): void;
}

export interface SyncServiceOptions {
  provider: BankProvider;
  cipher: TokenCipher;
  /** Transactions per /transactions/sync page (Plaid allows 1 to 500). */
  pageSize: number;
  /** Called once per sync attempt where it ends: plaid_syncs_total{status} is wired here. */
  onSync?: (status: SyncStatus) => void;
  logger?: SyncLogger;
}

export interface SyncResult {
  itemId: string;
  userId: string;
  added: number;
  modified: number;
  removed: number;
  pages: number;
}

/** The item no longer exists (deleted while a job waited). */
export class ItemGoneError extends Error {
  override name = 'ItemGoneError';
}

class CursorMovedError extends Error {}

/** Restarts of one sync (another sync moved the cursor, or the data changed while paging). */
const MAX_RESTARTS = 5;
const MAX_PAGES = 2_000;
const WRITE_CHUNK = 500;

/** Our account type for a Plaid account type/subtype. */
export function accountTypeOf(type: string, subtype: string | null): (typeof accounts.$inferInsert)['type'] {
  if (type === 'depository') return subtype === 'checking' || subtype === 'prepaid' || subtype === 'paypal' ? 'checking' : 'savings';
  if (type === 'credit') return 'credit_card';
  if (type === 'loan') return 'loan';
  if (type === 'investment' || type === 'brokerage') return 'investment';
  return 'other';
}

/** Plaid reports what is owed on credit and loan accounts as a positive balance; for us it is negative. */
export function balanceOf(a: ProviderAccount): string {
  const cents = BigInt(Math.round((a.currentBalance ?? 0) * 100));
  return fromCents(a.type === 'credit' || a.type === 'loan' ? -cents : cents);
}

/** Plaid's amount (positive = money out) as ours (negative = money out). */
export function amountOf(plaidAmount: number): string {
  return fromCents(-BigInt(Math.round(plaidAmount * 100)));
}

/** Our default category for Plaid's personal finance category; null when none fits. */
export function categoryNameOf(category: ProviderTransaction['category']): string | null {
  if (!category) return null;
  const { primary, detailed } = category;
  if (detailed === 'FOOD_AND_DRINK_GROCERIES') return 'Groceries';
  if (primary === 'FOOD_AND_DRINK') return 'Dining';
  if (detailed === 'RENT_AND_UTILITIES_RENT') return 'Rent';
  if (primary === 'RENT_AND_UTILITIES') return 'Utilities';
  const byPrimary: Record<string, string> = {
    TRANSPORTATION: 'Transportation',
    GENERAL_MERCHANDISE: 'Shopping',
    GENERAL_SERVICES: 'Shopping',
    HOME_IMPROVEMENT: 'Shopping',
    ENTERTAINMENT: 'Entertainment',
    MEDICAL: 'Health',
    PERSONAL_CARE: 'Health',
    TRAVEL: 'Travel',
    INCOME: 'Income',
    TRANSFER_IN: 'Transfer',
    TRANSFER_OUT: 'Transfer',
    LOAN_PAYMENTS: 'Transfer',
    BANK_FEES: 'Fees',
  };
  return byPrimary[primary] ?? 'Other';
}

const errorCodeOf = (err: unknown) => (err instanceof ProviderError ? err.code : err instanceof TokenDecryptionError ? 'TOKEN_UNREADABLE' : 'SYNC_FAILED');

/** What the user sees of a failure: the provider's code and message, never internals. */
function lastErrorOf(err: unknown): { status: ItemStatus; lastError: string } {
  if (err instanceof TokenDecryptionError) {
    // Permanent: the job fails at once (tasks.ts); retrying cannot open the token either.
    return {
      status: 'error',
      lastError: 'TOKEN_UNREADABLE: this server cannot open the bank access token (sealed with another TOKEN_ENCRYPTION_KEY); restore that key or link the bank again',
    };
  }
  if (err instanceof ProviderError) {
    return { status: err.loginRequired ? 'login_required' : 'error', lastError: `${err.code}: ${err.displayMessage ?? err.message}`.slice(0, 500) };
  }
  return { status: 'error', lastError: 'SYNC_FAILED: the sync was interrupted by an internal error; it will be retried' };
}

export class SyncService {
  constructor(
    private readonly db: Db,
    private readonly opts: SyncServiceOptions,
  ) {}

  get providerName(): 'plaid' | 'demo' {
    return this.opts.provider.name;
  }

  /** Loads the provider's SDK now rather than on the first sync (see BankProvider.load). */
  async prepare(): Promise<void> {
    await this.opts.provider.load?.();
  }

  createLinkToken(userId: string) {
    return this.opts.provider.createLinkToken(userId);
  }

  /** Whether a webhook is authentic (the provider's signature check). */
  verifyWebhook(rawBody: string, headers: Record<string, string | string[] | undefined>): Promise<boolean> {
    return this.opts.provider.verifyWebhook(rawBody, headers);
  }

  /** Exchanges Link's public token, stores the item (token sealed) and its accounts. */
  async linkItem(userId: string, publicToken: string): Promise<{ item: PlaidItemRow; accounts: (typeof accounts.$inferSelect)[] }> {
    const { provider, cipher } = this.opts;
    const exchanged = await provider.exchangePublicToken(publicToken, userId);
    const [existing] = await this.db.select({ id: plaidItems.id }).from(plaidItems).where(eq(plaidItems.itemId, exchanged.itemId));
    if (existing) throw conflict('This bank connection is already linked');
    const providerAccounts = await provider.getAccounts(exchanged.accessToken);
    const result = await this.db.transaction(async (tx) => {
      const [item] = await tx
        .insert(plaidItems)
        .values({
          userId,
          itemId: exchanged.itemId,
          provider: provider.name,
          accessTokenEncrypted: cipher.encrypt(exchanged.accessToken, exchanged.itemId),
          institutionName: exchanged.institutionName,
        })
        .onConflictDoNothing()
        .returning();
      if (!item) throw conflict('This bank connection is already linked');
      const rows = providerAccounts.length === 0 ? [] : await this.upsertAccounts(tx as unknown as Db, item, providerAccounts);
      return { item, accounts: rows };
    });
    if (provider.name === 'demo') await this.seedDemoBudgets(userId);
    this.opts.logger?.info({ user_id: userId, item_id: result.item.id, provider: provider.name, accounts: result.accounts.length }, 'bank_item_linked');
    return result;
  }

  async listItems(userId: string): Promise<(PlaidItemRow & { accountCount: number })[]> {
    const rows = await this.db
      .select({ item: plaidItems, accountCount: sql<number>`(select count(*)::int from "accounts" where "accounts"."plaid_item_id" = "plaid_items"."id")` })
      .from(plaidItems)
      .where(eq(plaidItems.userId, userId))
      .orderBy(asc(plaidItems.createdAt), asc(plaidItems.id));
    return rows.map((r) => ({ ...r.item, accountCount: Number(r.accountCount) }));
  }

  async getItem(userId: string, id: string): Promise<PlaidItemRow> {
    const [row] = await this.db.select().from(plaidItems).where(and(eq(plaidItems.id, id), eq(plaidItems.userId, userId)));
    if (!row) throw notFound('Item');
    return row;
  }

  /** The item Plaid calls `item_id` (webhooks name it so). */
  async findByProviderItemId(providerItemId: string): Promise<PlaidItemRow | undefined> {
    const [row] = await this.db.select().from(plaidItems).where(eq(plaidItems.itemId, providerItemId));
    return row;
  }

  /** Records an item error Plaid reported by webhook (e.g. ITEM_LOGIN_REQUIRED). */
  async recordItemError(id: string, err: ProviderError): Promise<void> {
    const { status, lastError } = lastErrorOf(err);
    await this.db.update(plaidItems).set({ status, lastError, updatedAt: sql`now()` }).where(eq(plaidItems.id, id));
  }

  /** One sync of an item; counts plaid_syncs_total and records the outcome on the item. */
  async syncItem(id: string, signal?: AbortSignal): Promise<SyncResult> {
    try {
      const result = await this.pullAndApply(id, signal);
      this.opts.onSync?.('success');
      this.opts.logger?.info(
        { item_id: id, user_id: result.userId, added: result.added, modified: result.modified, removed: result.removed, pages: result.pages },
        'bank_sync_succeeded',
      );
      return result;
    } catch (err) {
      // A job for an item deleted meanwhile: no sync happened, nothing to count or record.
      if (err instanceof ItemGoneError) throw err;
      this.opts.onSync?.('failure');
      {
        const { status, lastError } = lastErrorOf(err);
        await this.db
          .update(plaidItems)
          .set({ status, lastError, updatedAt: sql`now()` })
          .where(eq(plaidItems.id, id))
          .catch(() => undefined);
        this.opts.logger?.warn(
          { item_id: id, status, error_code: errorCodeOf(err), retryable: err instanceof ProviderError ? err.retryable : !(err instanceof TokenDecryptionError), reason: lastError },
          'bank_sync_failed',
        );
      }
      throw err;
    }
  }

  private async load(id: string): Promise<PlaidItemRow> {
    const [item] = await this.db.select().from(plaidItems).where(eq(plaidItems.id, id));
    if (!item) throw new ItemGoneError(`item ${id} does not exist`);
    return item;
  }

  private async pullAndApply(id: string, signal?: AbortSignal): Promise<SyncResult> {
    const { provider, cipher, pageSize } = this.opts;
    for (let restart = 0; ; restart++) {
      const item = await this.load(id);
      const accessToken = cipher.decrypt(item.accessTokenEncrypted, item.itemId);
      const start = item.cursor;
      const added: ProviderTransaction[] = [];
      const modified: ProviderTransaction[] = [];
      const removed: { externalId: string }[] = [];
      let providerAccounts: ProviderAccount[] = [];
      let cursor = start;
      let pages = 0;
      try {
        for (let more = true; more; ) {
          signal?.throwIfAborted();
          if (++pages > MAX_PAGES) throw new ProviderError('API_ERROR', 'TOO_MANY_PAGES', `more than ${MAX_PAGES} pages in one sync`, null, true);
          const page = await provider.syncPage(accessToken, cursor, pageSize);
          added.push(...page.added);
          modified.push(...page.modified);
          removed.push(...page.removed);
          if (page.accounts.length > 0) providerAccounts = page.accounts;
          cursor = page.nextCursor;
          more = page.hasMore;
        }
        signal?.throwIfAborted();
        await this.apply(item, start, cursor ?? '', providerAccounts, added, modified, removed);
        return { itemId: id, userId: item.userId, added: added.length, modified: modified.length, removed: removed.length, pages };
      } catch (err) {
        const again = err instanceof CursorMovedError || (err instanceof ProviderError && err.mutationDuringPagination);
        if (!again || restart >= MAX_RESTARTS) throw err;
        this.opts.logger?.info({ item_id: id, reason: err instanceof CursorMovedError ? 'cursor_moved' : 'mutation_during_pagination' }, 'bank_sync_restarted');
      }
    }
  }

  private async apply(
    item: PlaidItemRow,
    startCursor: string | null,
    nextCursor: string,
    providerAccounts: ProviderAccount[],
    added: ProviderTransaction[],
    modified: ProviderTransaction[],
    removed: { externalId: string }[],
  ): Promise<void> {
    await this.db.transaction(async (t) => {
      const tx = t as unknown as Db;
      const moved = await tx
        .update(plaidItems)
        .set({ cursor: nextCursor, status: 'active', lastError: null, lastSyncedAt: sql`now()`, updatedAt: sql`now()` })
        .where(and(eq(plaidItems.id, item.id), startCursor === null ? isNull(plaidItems.cursor) : eq(plaidItems.cursor, startCursor)))
        .returning({ id: plaidItems.id });
      if (moved.length === 0) throw new CursorMovedError();
      if (providerAccounts.length > 0) await this.upsertAccounts(tx, item, providerAccounts);
      const accountRows = await tx.select({ id: accounts.id, externalId: accounts.externalId }).from(accounts).where(eq(accounts.plaidItemId, item.id));
      const accountId = new Map(accountRows.map((a) => [a.externalId, a.id]));
      const categoryRows = await tx.select({ id: categories.id, name: categories.name }).from(categories).where(eq(categories.userId, item.userId));
      const categoryId = new Map(categoryRows.map((c) => [c.name.toLowerCase(), c.id]));

      // A transaction both added and then modified within one sync is written once, as its latest state.
      const latest = new Map<string, ProviderTransaction>();
      for (const t of [...added, ...modified]) latest.set(`${t.accountExternalId}\u0000${t.externalId}`, t);
      const values = [];
      let unknownAccount = 0;
      for (const t of latest.values()) {
        const account = accountId.get(t.accountExternalId);
        if (!account) {
          unknownAccount++;
          continue;
        }
        const category = categoryNameOf(t.category);
        values.push({
          userId: item.userId,
          accountId: account,
          date: t.date,
          amount: amountOf(t.amount),
          merchantName: t.merchantName?.slice(0, 200) ?? null,
          description: t.name?.slice(0, 500) ?? null,
          categoryId: category ? (categoryId.get(category.toLowerCase()) ?? null) : null,
          pending: t.pending,
          externalId: t.externalId,
        });
      }
      if (unknownAccount > 0) this.opts.logger?.warn({ item_id: item.id, skipped: unknownAccount }, 'bank_sync_unknown_account');
      for (let i = 0; i < values.length; i += WRITE_CHUNK) {
        await tx
          .insert(transactions)
          .values(values.slice(i, i + WRITE_CHUNK))
          .onConflictDoUpdate({
            target: [transactions.accountId, transactions.externalId],
            set: {
              date: sql`excluded.date`,
              amount: sql`excluded.amount`,
              merchantName: sql`excluded.merchant_name`,
              description: sql`excluded.description`,
              pending: sql`excluded.pending`,
              // A category the user chose stays theirs.
              categoryId: sql`coalesce(${transactions.categoryId}, excluded.category_id)`,
              updatedAt: sql`now()`,
            },
          });
      }
      const ids = [...accountId.values()];
      const gone = removed.map((r) => r.externalId);
      for (let i = 0; i < gone.length && ids.length > 0; i += WRITE_CHUNK) {
        await tx.delete(transactions).where(and(inArray(transactions.accountId, ids), inArray(transactions.externalId, gone.slice(i, i + WRITE_CHUNK))));
      }
    });
  }

  private async upsertAccounts(db: Db, item: PlaidItemRow, list: ProviderAccount[]): Promise<(typeof accounts.$inferSelect)[]> {
    return db
      .insert(accounts)
      .values(
        list.map((a) => ({
          userId: item.userId,
          name: a.name.slice(0, 100),
          type: accountTypeOf(a.type, a.subtype),
          institution: item.institutionName?.slice(0, 100) ?? null,
          mask: a.mask && /^\d{2,4}$/.test(a.mask) ? a.mask : null,
          currentBalance: balanceOf(a),
          currency: a.currency && /^[A-Z]{3}$/.test(a.currency) ? a.currency : 'USD',
          source: 'plaid' as const,
          plaidItemId: item.id,
          externalId: a.externalId,
        })),
      )
      .onConflictDoUpdate({
        target: [accounts.plaidItemId, accounts.externalId],
        set: { currentBalance: sql`excluded.current_balance`, mask: sql`excluded.mask`, updatedAt: sql`now()` },
      })
      .returning();
  }

  /** The demo gives a new user budgets to watch, so alerts show up without any setup. */
  private async seedDemoBudgets(userId: string): Promise<void> {
    const [any] = await this.db.select({ id: budgets.id }).from(budgets).where(eq(budgets.userId, userId)).limit(1);
    if (any) return;
    const cats = await this.db.select({ id: categories.id, name: categories.name }).from(categories).where(eq(categories.userId, userId));
    const byName = new Map(cats.map((c) => [c.name, c.id]));
    const demo = [
      { name: 'Dining out', category: 'Dining', amount: '350.00' },
      { name: 'Groceries', category: 'Groceries', amount: '900.00' },
      { name: 'Shopping', category: 'Shopping', amount: '400.00' },
    ].filter((b) => byName.has(b.category));
    if (demo.length === 0) return;
    await this.db.insert(budgets).values(
      demo.map((b) => ({ userId, name: b.name, amount: b.amount, period: 'monthly' as const, categoryId: byName.get(b.category)!, alertThreshold: '0.80' })),
    );
  }
}
