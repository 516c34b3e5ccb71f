import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { accounts, notifications, transactions } from '../../src/db/schema.ts';
import { encodeCursor } from '../../src/lib/cursor.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

interface Note {
  id: string;
  type: string;
  priority: string;
  title: string;
  message: string;
  budget_id: string | null;
  period_start: string | null;
  data: Record<string, unknown> | null;
  read_at: string | null;
  created_at: string;
}
interface Page {
  items: Note[];
  next_cursor: string | null;
}

describe('notifications', () => {
  let t: TestApp;
  let alice: { token: string; userId: string };
  let bob: { token: string; userId: string };

  /** Inserts n notifications for the user, one minute apart and a few sharing an instant; returns ids newest first. */
  async function seed(userId: string, n: number, base = Date.UTC(2024, 0, 1)): Promise<string[]> {
    const rows = await t.db.database.db
      .insert(notifications)
      .values(
        Array.from({ length: n }, (_, i) => ({
          userId,
          type: 'info',
          priority: 'low' as const,
          title: `note ${i}`,
          message: `message ${i}`,
          // Pairs share a created_at (with microseconds) so the id tie-break is exercised.
          createdAt: new Date(base + Math.floor(i / 2) * 60_000),
        })),
      )
      .returning({ id: notifications.id, createdAt: notifications.createdAt });
    return rows
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .map((r) => r.id);
  }

  const list = (token: string, query = '') =>
    t.app.inject({ method: 'GET', url: `/api/v1/notifications${query}`, headers: bearer(token) });

  beforeAll(async () => {
    t = await createTestApp();
    alice = await registerAndLogin(t.app);
    bob = await registerAndLogin(t.app);
  });
  afterAll(async () => t.close());

  it('lists newest first with cursor pagination and no gaps or repeats', async () => {
    const user = await registerAndLogin(t.app);
    const expected = await seed(user.userId, 7);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list(user.token, `?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const page = json<Page>(res);
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((x) => x.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(expected);
  });

  it('keeps microsecond order across a page edge', async () => {
    const user = await registerAndLogin(t.app);
    // Two notifications 1 µs apart in the same millisecond.
    const [row] = await t.db.database.db
      .insert(notifications)
      .values({ userId: user.userId, type: 'info', priority: 'low', title: 'a', message: 'a' })
      .returning({ id: notifications.id });
    await t.db.database.db.execute(
      sql`insert into notifications (user_id, type, priority, title, message, created_at)
          select user_id, 'info', 'low', 'b', 'b', created_at + interval '1 microsecond' from notifications where id = ${row!.id}`,
    );
    const first = json<Page>(await list(user.token, '?limit=1'));
    expect(first.items[0]!.title).toBe('b');
    const second = json<Page>(await list(user.token, `?limit=1&cursor=${first.next_cursor}`));
    expect(second.items.map((x) => x.title)).toEqual(['a']);
  });

  it('filters unread, marks one read idempotently and all read', async () => {
    const user = await registerAndLogin(t.app);
    const ids = await seed(user.userId, 4);
    const read = await t.app.inject({ method: 'POST', url: `/api/v1/notifications/${ids[1]}/read`, headers: bearer(user.token) });
    expect(read.statusCode).toBe(200);
    const first = json<Note>(read);
    expect(first).toMatchObject({ id: ids[1], title: expect.any(String) });
    expect(Number.isNaN(Date.parse(first.read_at!))).toBe(false);

    const again = await t.app.inject({ method: 'POST', url: `/api/v1/notifications/${ids[1]}/read`, headers: bearer(user.token) });
    expect(again.statusCode).toBe(200);
    expect(json<Note>(again).read_at).toBe(first.read_at);

    const unread = json<Page>(await list(user.token, '?unread_only=true'));
    expect(unread.items.map((x) => x.id)).toEqual([ids[0], ids[2], ids[3]]);
    const everything = json<Page>(await list(user.token, '?unread_only=false'));
    expect(everything.items).toHaveLength(4);

    const all = await t.app.inject({ method: 'POST', url: '/api/v1/notifications/read-all', headers: bearer(user.token) });
    expect(all.statusCode).toBe(200);
    expect(json(all)).toEqual({ updated: 3 });
    expect(json<Page>(await list(user.token, '?unread_only=true')).items).toEqual([]);
    const none = await t.app.inject({ method: 'POST', url: '/api/v1/notifications/read-all', headers: bearer(user.token) });
    expect(json(none)).toEqual({ updated: 0 });
  });

  it("never shows or touches another user's notifications", async () => {
    const [bobsNote] = await seed(bob.userId, 1);
    await seed(alice.userId, 1);
    const mine = json<Page>(await list(alice.token));
    expect(mine.items.map((x) => x.id)).not.toContain(bobsNote);

    const res = await t.app.inject({ method: 'POST', url: `/api/v1/notifications/${bobsNote}/read`, headers: bearer(alice.token) });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toContain('application/problem+json');

    await t.app.inject({ method: 'POST', url: '/api/v1/notifications/read-all', headers: bearer(alice.token) });
    const bobs = json<Page>(await list(bob.token, '?unread_only=true'));
    expect(bobs.items.map((x) => x.id)).toContain(bobsNote);
  });

  it('shows a budget alert with its fields', async () => {
    const user = await registerAndLogin(t.app);
    const [account] = await t.db.database.db
      .insert(accounts)
      .values({ userId: user.userId, name: 'Card', type: 'credit_card' })
      .returning({ id: accounts.id });
    const today = new Date().toISOString().slice(0, 10);
    await t.db.database.db
      .insert(transactions)
      .values({ userId: user.userId, accountId: account!.id, date: today, amount: '-12.34', pending: true });
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/budgets',
      headers: bearer(user.token),
      payload: { name: 'Tiny', amount: '10.00' },
    });
    const budgetId = json<{ id: string }>(created).id;
    const check = await t.app.inject({ method: 'POST', url: '/api/v1/budgets/check-alerts', headers: bearer(user.token) });
    expect(json<{ alerts: Note[] }>(check).alerts).toHaveLength(1);

    const page = json<Page>(await list(user.token));
    expect(page.items).toHaveLength(1);
    expect(page.items[0]).toMatchObject({
      type: 'budget_alert',
      priority: 'high',
      budget_id: budgetId,
      period_start: `${today.slice(0, 7)}-01`,
      data: { spent: '12.34', amount: '10.00', percent: 123.4 },
      read_at: null,
    });
    expect(page.items[0]!.message).toContain('12.34');
    expect(page.items[0]!.message).toContain('10.00');
  });

  it.each([
    ['a cursor that is not base64 JSON', '?cursor=%%%'],
    ['a cursor with a bad time', `?cursor=${encodeCursor({ t: '2024-02-30T00:00:00.000000Z', i: '00000000-0000-4000-8000-000000000000' })}`],
    ['a cursor with a bad id', `?cursor=${encodeCursor({ t: '2024-02-01T00:00:00.000000Z', i: 'x' })}`],
    ['a limit over 200', '?limit=201'],
    ['a negative limit', '?limit=-1'],
    ['unread_only not a boolean', '?unread_only=maybe'],
  ])('rejects %s with 422', async (_label, query) => {
    const res = await list(alice.token, query);
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });

  it('needs a token and a valid id', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/notifications' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/notifications/read-all' })).statusCode).toBe(401);
    const bad = await t.app.inject({ method: 'POST', url: '/api/v1/notifications/nope/read', headers: bearer(alice.token) });
    expect(bad.statusCode).toBe(422);
    const missing = await t.app.inject({
      method: 'POST',
      url: '/api/v1/notifications/00000000-0000-4000-8000-000000000000/read',
      headers: bearer(alice.token),
    });
    expect(missing.statusCode).toBe(404);
  });
});
