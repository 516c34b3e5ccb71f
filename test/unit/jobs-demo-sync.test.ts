/**
 * The sync task's demo bank: deterministic history, /transactions/sync's protocol (pages,
 * pending transactions that post as `modified`, holds that are `removed`), and the invariant
 * that matters — syncing day by day ends in exactly the state a fresh link would show.
 */
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accounts, transactions, users } from '../../src/db/schema.ts';
import { seedDefaultCategories } from '../../src/modules/categories/defaults.ts';
import { TokenCipher } from '../../src/modules/sync/crypto.ts';
import { DemoProvider } from '../../src/modules/sync/demo-provider.ts';
import type { ProviderTransaction } from '../../src/modules/sync/provider.ts';
import { SyncService } from '../../src/modules/sync/service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

async function pullAll(p: DemoProvider, token: string, cursor: string | null, count = 40) {
  const out = { added: [] as ProviderTransaction[], modified: [] as ProviderTransaction[], removed: [] as string[], pages: 0, cursor };
  for (let more = true; more; ) {
    const page = await p.syncPage(token, out.cursor, count);
    out.added.push(...page.added);
    out.modified.push(...page.modified);
    out.removed.push(...page.removed.map((r) => r.externalId));
    out.cursor = page.nextCursor;
    more = page.hasMore;
    out.pages++;
  }
  return out;
}

describe('DemoProvider', () => {
  let now = new Date('2025-06-15T12:00:00Z');
  const provider = new DemoProvider({ now: () => now });

  it('is deterministic: the same public token gives the same bank and history', async () => {
    const a = await provider.exchangePublicToken('public-demo-x', 'user-1');
    const b = await provider.exchangePublicToken('public-demo-x', 'user-2');
    expect(a.accessToken).toBe(b.accessToken);
    expect(a.itemId).not.toBe(b.itemId); // one item per user
    const first = await pullAll(provider, a.accessToken, null);
    const second = await pullAll(provider, a.accessToken, null);
    expect(second.added).toEqual(first.added);
    expect(first.pages).toBeGreaterThan(1);
    expect(first.modified).toEqual([]);
    expect(first.removed).toEqual([]);
    const dates = first.added.map((t) => t.date).sort();
    expect(dates[0]! >= '2025-03-17').toBe(true);
    expect(dates.at(-1)).toBe('2025-06-15');
    // Rent on the 1st of each month, pay every other Friday (money in: negative in Plaid's sign).
    expect(first.added.filter((t) => t.merchantName === 'Rent').map((t) => t.date)).toEqual(['2025-04-01', '2025-05-01', '2025-06-01']);
    const payroll = first.added.filter((t) => t.merchantName === 'Acme Corp Payroll');
    expect(payroll.length).toBeGreaterThanOrEqual(6); // 90 days of every other Friday
    expect(payroll.every((t) => t.amount === -3250)).toBe(true);
    const pending = first.added.filter((t) => t.pending);
    expect(pending.length).toBeGreaterThan(0);
    expect(pending.every((t) => t.date >= '2025-06-14')).toBe(true);
  });

  it('later syncs add the new days, post the pending ones (modified) and drop holds (removed)', async () => {
    now = new Date('2025-06-15T12:00:00Z');
    // A bank whose last two days (pending at the first sync) hold charges that post and a card hold.
    const { accessToken } = await provider.exchangePublicToken('public-demo-y2', 'user-1');
    const first = await pullAll(provider, accessToken, null);
    const pendingBefore = first.added.filter((t) => t.pending);
    expect(pendingBefore.length).toBeGreaterThan(1);
    expect(pendingBefore.every((t) => t.date >= '2025-06-14')).toBe(true);
    now = new Date('2025-06-18T08:00:00Z');
    const next = await pullAll(provider, accessToken, first.cursor);
    expect(next.added.length).toBeGreaterThan(0);
    expect(next.added.every((t) => t.date > '2025-06-15' && t.date <= '2025-06-18')).toBe(true);
    const newPending = next.added.filter((t) => t.pending);
    expect(newPending.length).toBeGreaterThan(0);
    expect(newPending.every((t) => t.date >= '2025-06-17')).toBe(true);
    // Every transaction pending before settles exactly once: posted (modified) or, a hold, removed.
    expect(next.modified.length).toBeGreaterThan(0);
    expect(next.removed.length).toBeGreaterThan(0);
    const settled = [...next.modified.map((t) => t.externalId), ...next.removed].sort();
    expect(settled).toEqual(pendingBefore.map((t) => t.externalId).sort());
    const before = new Map(pendingBefore.map((t) => [t.externalId, t]));
    for (const t of next.modified) expect(t).toEqual({ ...before.get(t.externalId), pending: false });
    expect(next.removed.map((id) => before.get(id)?.merchantName)).toEqual(next.removed.map(() => 'Shell'));
    // Nothing more on the same day.
    expect(await pullAll(provider, accessToken, next.cursor)).toMatchObject({ added: [], modified: [], removed: [], pages: 1 });
  });

  it('refuses a foreign access token and a forged cursor', async () => {
    await expect(provider.syncPage('access-sandbox-1', null, 10)).rejects.toMatchObject({ code: 'INVALID_ACCESS_TOKEN', retryable: false });
    const { accessToken } = await provider.exchangePublicToken('public-demo-z', 'u');
    await expect(provider.syncPage(accessToken, 'demo1:yesterday', 10)).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
  });
});

describe('syncing the demo bank day by day', () => {
  let tdb: TestDatabase;
  let userId: string;
  let clock = new Date('2025-01-28T10:00:00Z');
  const provider = new DemoProvider({ now: () => clock });
  const service = () => new SyncService(tdb.database.db, { provider, cipher: new TokenCipher(randomBytes(32)), pageSize: 37 });

  beforeAll(async () => {
    tdb = await createTestDatabase();
    const [u] = await tdb.database.db.insert(users).values({ email: `demo-${Date.now()}@example.com`, passwordHash: 'x' }).returning();
    userId = u!.id;
    await seedDefaultCategories(tdb.database.db, userId);
  });
  afterAll(async () => tdb?.close());

  const state = async (itemId: string) =>
    (
      await tdb.database.db
        .select({ externalId: transactions.externalId, amount: transactions.amount, pending: transactions.pending, date: transactions.date })
        .from(transactions)
        .innerJoin(accounts, eq(accounts.id, transactions.accountId))
        .where(eq(accounts.plaidItemId, itemId))
    ).sort((a, b) => a.externalId!.localeCompare(b.externalId!));

  it('ends in the state a fresh link shows on the last day', async () => {
    const s = service();
    const { item: incremental } = await s.linkItem(userId, 'public-demo-daily');
    await s.syncItem(incremental.id);
    for (let day = 0; day < 9; day++) {
      clock = new Date(clock.getTime() + 86_400_000);
      await s.syncItem(incremental.id);
      if (day % 3 === 0) await s.syncItem(incremental.id); // replays change nothing
    }
    // A second user links the same demo bank today and syncs once.
    const [other] = await tdb.database.db.insert(users).values({ email: `demo2-${Date.now()}@example.com`, passwordHash: 'x' }).returning();
    await seedDefaultCategories(tdb.database.db, other!.id);
    const { item: fresh } = await s.linkItem(other!.id, 'public-demo-daily');
    await s.syncItem(fresh.id);
    const a = await state(incremental.id);
    const b = await state(fresh.id);
    // The fresh link sees only the last 90 days; compare the days both cover.
    const from = b.map((r) => r.date).sort()[0]!;
    expect(a.filter((r) => r.date >= from)).toEqual(b);
    expect(a.some((r) => r.pending)).toBe(true);
    expect(a.filter((r) => r.pending).every((r) => r.date >= '2025-02-05')).toBe(true);
  });
});
