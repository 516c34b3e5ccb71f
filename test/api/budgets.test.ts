import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { eq } from 'drizzle-orm';
import { accounts, categories, notifications, transactions } from '../../src/db/schema.ts';
import { BudgetAlertService } from '../../src/modules/budgets/alerts.ts';
import type { AlertPriority } from '../../src/modules/budgets/alert-rules.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

// Time is fixed so period boundaries and the pace rule are deterministic: 20 Feb 2024 12:00 UTC,
// 19.5 of February's 29 days (leap year) have passed. Only Date is faked; timers run normally.
const NOW = new Date('2024-02-20T12:00:00Z');

interface User {
  token: string;
  userId: string;
  accountId: string;
}

interface Budget {
  id: string;
  name: string;
  amount: string;
  period: string;
  category_id: string | null;
  alert_threshold: string;
  is_active: boolean;
}

interface Alert {
  id: string;
  type: string;
  priority: 'low' | 'medium' | 'high';
  title: string;
  message: string;
  budget_id: string;
  period_start: string;
  data: { spent: string; amount: string; percent: number };
  read_at: string | null;
}

describe('budgets', () => {
  let t: TestApp;
  let alice: User;
  let bob: User;

  async function newUser(): Promise<User> {
    const { token, userId } = await registerAndLogin(t.app);
    const [account] = await t.db.database.db
      .insert(accounts)
      .values({ userId, name: 'Checking', type: 'checking' })
      .returning({ id: accounts.id });
    return { token, userId, accountId: account!.id };
  }

  async function newCategory(user: User, name: string): Promise<string> {
    const [row] = await t.db.database.db
      .insert(categories)
      .values({ userId: user.userId, name: `${name} ${Math.random().toString(36).slice(2, 8)}` })
      .returning({ id: categories.id });
    return row!.id;
  }

  async function addTx(user: User, date: string, amount: string, categoryId: string | null | undefined, pending = false): Promise<void> {
    await t.db.database.db
      .insert(transactions)
      .values({ userId: user.userId, accountId: user.accountId, date, amount, categoryId: categoryId ?? null, pending });
  }

  async function createBudget(user: User, body: Record<string, unknown>): Promise<Budget> {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/budgets', headers: bearer(user.token), payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return json<Budget>(res);
  }

  const spending = async (user: User, id: string) =>
    t.app.inject({ method: 'GET', url: `/api/v1/budgets/${id}/spending`, headers: bearer(user.token) });

  const checkAlerts = async (user: User) =>
    t.app.inject({ method: 'POST', url: '/api/v1/budgets/check-alerts', headers: bearer(user.token) });

  beforeAll(async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: NOW });
    t = await createTestApp();
    alice = await newUser();
    bob = await newUser();
  });
  afterAll(async () => {
    await t.close();
    vi.useRealTimers();
  });

  describe('CRUD', () => {
    it('creates with defaults and normalised amounts', async () => {
      const b = await createBudget(alice, { name: 'Everything', amount: '1234.5' });
      expect(b).toMatchObject({ name: 'Everything', amount: '1234.50', period: 'monthly', category_id: null, alert_threshold: '0.80', is_active: true });
      const c = await createBudget(alice, { name: 'Quarter', amount: 99.99, period: 'quarterly', alert_threshold: 0.5, is_active: false });
      expect(c).toMatchObject({ amount: '99.99', period: 'quarterly', alert_threshold: '0.50', is_active: false });
      const d = await createBudget(alice, { name: 'Full', amount: '10', alert_threshold: '1' });
      expect(d.alert_threshold).toBe('1.00');
    });

    it('accepts the caller own category and rejects a foreign one', async () => {
      const mine = await newCategory(alice, 'Groceries');
      const b = await createBudget(alice, { name: 'Food', amount: '300.00', category_id: mine, period: 'yearly' });
      expect(b.category_id).toBe(mine);
      const theirs = await newCategory(bob, 'Groceries');
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/budgets',
        headers: bearer(alice.token),
        payload: { name: 'Food', amount: '300.00', category_id: theirs },
      });
      expect(res.statusCode).toBe(422);
      expect(json(res)).toMatchObject({ status: 422, errors: [{ field: 'body.category_id' }] });
      const patch = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/budgets/${b.id}`,
        headers: bearer(alice.token),
        payload: { category_id: theirs },
      });
      expect(patch.statusCode).toBe(422);
    });

    it.each([
      ['threshold 0', { alert_threshold: 0 }, 'body.alert_threshold'],
      ['threshold 1.5', { alert_threshold: 1.5 }, 'body.alert_threshold'],
      ['threshold "0"', { alert_threshold: '0.00' }, 'body.alert_threshold'],
      ['threshold with 3 decimals', { alert_threshold: '0.805' }, 'body.alert_threshold'],
      ['threshold negative', { alert_threshold: -0.5 }, 'body.alert_threshold'],
      ['amount 0', { amount: '0' }, 'body.amount'],
      ['amount negative', { amount: '-5.00' }, 'body.amount'],
      ['amount with 3 decimals', { amount: '1.234' }, 'body.amount'],
      ['amount not a number', { amount: 'lots' }, 'body.amount'],
      ['unknown period', { period: 'weekly' }, 'body.period'],
      ['empty name', { name: '  ' }, 'body.name'],
      ['category not a uuid', { category_id: 'groceries' }, 'body.category_id'],
    ])('rejects %s with 422', async (_label, override, field) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/budgets',
        headers: bearer(alice.token),
        payload: { name: 'Bad', amount: '100.00', ...override },
      });
      expect(res.statusCode).toBe(422);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect((json<{ errors: { field: string }[] }>(res).errors).map((e) => e.field)).toContain(field);
    });

    it('gets, updates, lists with pagination and deletes', async () => {
      const user = await newUser();
      const cat = await newCategory(user, 'Dining');
      const a = await createBudget(user, { name: 'A', amount: '10.00' });
      const b = await createBudget(user, { name: 'B', amount: '20.00', category_id: cat });
      await createBudget(user, { name: 'C', amount: '30.00' });

      const got = await t.app.inject({ method: 'GET', url: `/api/v1/budgets/${a.id}`, headers: bearer(user.token) });
      expect(got.statusCode).toBe(200);
      expect(json(got)).toMatchObject({ id: a.id, name: 'A', amount: '10.00' });

      const patched = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/budgets/${b.id}`,
        headers: bearer(user.token),
        payload: { amount: '25.5', alert_threshold: '0.9', category_id: null, period: 'quarterly', is_active: false },
      });
      expect(patched.statusCode).toBe(200);
      expect(json(patched)).toMatchObject({ name: 'B', amount: '25.50', alert_threshold: '0.90', category_id: null, period: 'quarterly', is_active: false });

      const bad = await t.app.inject({ method: 'PATCH', url: `/api/v1/budgets/${b.id}`, headers: bearer(user.token), payload: { alert_threshold: 1.01 } });
      expect(bad.statusCode).toBe(422);

      const page1 = await t.app.inject({ method: 'GET', url: '/api/v1/budgets?limit=2', headers: bearer(user.token) });
      const p1 = json<{ items: Budget[]; next_cursor: string | null }>(page1);
      expect(p1.items.map((x) => x.name)).toEqual(['A', 'B']);
      expect(p1.next_cursor).toEqual(expect.any(String));
      const page2 = await t.app.inject({ method: 'GET', url: `/api/v1/budgets?limit=2&cursor=${p1.next_cursor}`, headers: bearer(user.token) });
      const p2 = json<{ items: Budget[]; next_cursor: string | null }>(page2);
      expect(p2.items.map((x) => x.name)).toEqual(['C']);
      expect(p2.next_cursor).toBeNull();

      const badCursor = await t.app.inject({ method: 'GET', url: '/api/v1/budgets?cursor=not-a-cursor', headers: bearer(user.token) });
      expect(badCursor.statusCode).toBe(422);

      const del = await t.app.inject({ method: 'DELETE', url: `/api/v1/budgets/${a.id}`, headers: bearer(user.token) });
      expect(del.statusCode).toBe(204);
      expect(del.body).toBe('');
      const gone = await t.app.inject({ method: 'GET', url: `/api/v1/budgets/${a.id}`, headers: bearer(user.token) });
      expect(gone.statusCode).toBe(404);
      const again = await t.app.inject({ method: 'DELETE', url: `/api/v1/budgets/${a.id}`, headers: bearer(user.token) });
      expect(again.statusCode).toBe(404);
    });

    it("answers 404 for another user's budget on every route and lists only the caller's", async () => {
      const b = await createBudget(bob, { name: 'Bob only', amount: '50.00' });
      for (const [method, url, payload] of [
        ['GET', `/api/v1/budgets/${b.id}`, undefined],
        ['PATCH', `/api/v1/budgets/${b.id}`, { name: 'mine now' }],
        ['DELETE', `/api/v1/budgets/${b.id}`, undefined],
        ['GET', `/api/v1/budgets/${b.id}/spending`, undefined],
      ] as const) {
        const res = await t.app.inject({ method, url, headers: bearer(alice.token), ...(payload ? { payload } : {}) });
        expect(res.statusCode, `${method} ${url}`).toBe(404);
        expect(res.headers['content-type']).toContain('application/problem+json');
      }
      const still = await t.app.inject({ method: 'GET', url: `/api/v1/budgets/${b.id}`, headers: bearer(bob.token) });
      expect(json(still)).toMatchObject({ name: 'Bob only' });
      const list = await t.app.inject({ method: 'GET', url: '/api/v1/budgets?limit=200', headers: bearer(alice.token) });
      expect(json<{ items: Budget[] }>(list).items.map((x) => x.id)).not.toContain(b.id);
    });

    it('needs a token and a valid id', async () => {
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/budgets' })).statusCode).toBe(401);
      expect((await t.app.inject({ method: 'POST', url: '/api/v1/budgets/check-alerts' })).statusCode).toBe(401);
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/budgets/not-a-uuid', headers: bearer(alice.token) });
      expect(res.statusCode).toBe(422);
    });
  });

  describe('spending', () => {
    it('sums money out exactly, pending included, money in ignored, only the category', async () => {
      const user = await newUser();
      const food = await newCategory(user, 'Food');
      const rent = await newCategory(user, 'Rent');
      await addTx(user, '2024-02-03', '-0.10', food);
      await addTx(user, '2024-02-04', '-0.20', food);
      await addTx(user, '2024-02-05', '-33.33', food);
      await addTx(user, '2024-02-06', '-0.07', food);
      await addTx(user, '2024-02-19', '-10.01', food, true); // pending counts
      await addTx(user, '2024-02-10', '500.00', food); // a refund or income does not reduce spent
      await addTx(user, '2024-02-10', '-1000.00', rent);
      await addTx(user, '2024-02-11', '-2.22', null);

      const foodBudget = await createBudget(user, { name: 'Food', amount: '100.00', category_id: food });
      const res = await spending(user, foodBudget.id);
      expect(res.statusCode).toBe(200);
      expect(json(res)).toEqual({
        budget_id: foodBudget.id,
        period: 'monthly',
        period_start: '2024-02-01',
        period_end: '2024-02-29',
        amount: '100.00',
        spent: '43.71',
        remaining: '56.29',
        percent: 43.71,
        // 43.71 × 29 / 19.5 days = 65.0046… → 65.00
        projected_spent: '65.00',
      });

      const all = await createBudget(user, { name: 'All', amount: '2000.00' });
      expect(json(await spending(user, all.id))).toMatchObject({ spent: '1045.93', remaining: '954.07', percent: 52.3 });

      const over = await createBudget(user, { name: 'Rent', amount: '800.00', category_id: rent });
      expect(json(await spending(user, over.id))).toMatchObject({ spent: '1000.00', remaining: '-200.00', percent: 125 });
    });

    it('counts only transactions inside the current period', async () => {
      const user = await newUser();
      await addTx(user, '2023-12-31', '-1.00', null); // previous quarter and year
      await addTx(user, '2024-01-31', '-2.00', null); // last day of the previous month
      await addTx(user, '2024-02-01', '-4.00', null); // first day
      await addTx(user, '2024-02-29', '-8.00', null); // last day (leap day)
      await addTx(user, '2024-03-01', '-16.00', null); // next month, still this quarter
      await addTx(user, '2024-04-01', '-32.00', null); // next quarter

      const monthly = await createBudget(user, { name: 'M', amount: '100.00' });
      expect(json(await spending(user, monthly.id))).toMatchObject({ period_start: '2024-02-01', period_end: '2024-02-29', spent: '12.00' });
      const quarterly = await createBudget(user, { name: 'Q', amount: '100.00', period: 'quarterly' });
      expect(json(await spending(user, quarterly.id))).toMatchObject({ period_start: '2024-01-01', period_end: '2024-03-31', spent: '30.00' });
      const yearly = await createBudget(user, { name: 'Y', amount: '100.00', period: 'yearly' });
      expect(json(await spending(user, yearly.id))).toMatchObject({ period_start: '2024-01-01', period_end: '2024-12-31', spent: '62.00' });
    });

    it('does not count another user transactions', async () => {
      const user = await newUser();
      const other = await newUser();
      await addTx(other, '2024-02-10', '-99.00', null);
      const b = await createBudget(user, { name: 'Mine', amount: '10.00' });
      expect(json(await spending(user, b.id))).toMatchObject({ spent: '0.00', remaining: '10.00', percent: 0 });
    });
  });

  describe('check-alerts', () => {
    it('raises high, medium and low by the rules and never twice', async () => {
      const user = await newUser();
      const [a, b, c, d] = await Promise.all(['A', 'B', 'C', 'D'].map((n) => newCategory(user, n)));
      const high = await createBudget(user, { name: 'High', amount: '50.00', category_id: a });
      const medium = await createBudget(user, { name: 'Medium', amount: '100.00', category_id: b });
      const low = await createBudget(user, { name: 'Low', amount: '300.00', category_id: c });
      const calm = await createBudget(user, { name: 'Calm', amount: '300.00', category_id: d });
      await createBudget(user, { name: 'Inactive', amount: '1.00', category_id: a, is_active: false });
      await addTx(user, '2024-02-05', '-50.00', a); // 100 %
      await addTx(user, '2024-02-05', '-85.00', b); // 85 % ≥ 0.80
      await addTx(user, '2024-02-05', '-210.00', c); // 70 %, projects 312.31 > 300
      await addTx(user, '2024-02-05', '-190.00', d); // 63.3 %, projects 282.56 ≤ 300

      const res = await checkAlerts(user);
      expect(res.statusCode).toBe(200);
      const body = json<{ checked: number; alerts: Alert[] }>(res);
      expect(body.checked).toBe(4);
      const byBudget = new Map(body.alerts.map((x) => [x.budget_id, x]));
      expect(body.alerts).toHaveLength(3);
      expect(byBudget.get(high.id)).toMatchObject({
        type: 'budget_alert',
        priority: 'high',
        period_start: '2024-02-01',
        data: { spent: '50.00', amount: '50.00', percent: 100 },
        read_at: null,
      });
      expect(byBudget.get(high.id)!.message).toContain('50.00');
      expect(byBudget.get(medium.id)).toMatchObject({ priority: 'medium', data: { spent: '85.00', amount: '100.00', percent: 85 } });
      expect(byBudget.get(medium.id)!.message).toMatch(/85\.00.*100\.00/);
      expect(byBudget.get(low.id)).toMatchObject({ priority: 'low', data: { spent: '210.00', amount: '300.00', percent: 70, projected_spent: '312.31' } });
      expect(byBudget.has(calm.id)).toBe(false);

      const second = json<{ checked: number; alerts: Alert[] }>(await checkAlerts(user));
      expect(second).toEqual({ checked: 4, alerts: [] });

      // Crossing 100 % later in the period raises the next priority, once.
      await addTx(user, '2024-02-06', '-15.00', b);
      const third = json<{ alerts: Alert[] }>(await checkAlerts(user));
      expect(third.alerts.map((x) => [x.budget_id, x.priority])).toEqual([[medium.id, 'high']]);
      expect(json<{ alerts: Alert[] }>(await checkAlerts(user)).alerts).toEqual([]);

      const stored = await t.db.database.db.select().from(notifications).where(eq(notifications.userId, user.userId));
      expect(stored).toHaveLength(4);

      const logged = t
        .logs()
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.event === 'budget_alert_created' && l.user_id === user.userId);
      expect(logged.map((l) => l.priority).sort()).toEqual(['high', 'high', 'low', 'medium']);
    });

    it('BudgetAlertService.checkAll checks every user, reports each new alert once, and starts afresh each period', async () => {
      const u1 = await newUser();
      const u2 = await newUser();
      const b1 = await createBudget(u1, { name: 'Worker 1', amount: '10.00' });
      const b2 = await createBudget(u2, { name: 'Worker 2', amount: '10.00', alert_threshold: '0.5' });
      await addTx(u1, '2024-02-02', '-10.00', null);
      await addTx(u2, '2024-02-02', '-6.00', null);
      await addTx(u2, '2024-03-02', '-7.00', null);

      const seen: AlertPriority[] = [];
      const service = new BudgetAlertService(t.db.database.db, { onAlert: (p) => seen.push(p) });
      const first = await service.checkAll(NOW);
      expect(first.checked).toBeGreaterThanOrEqual(2);
      const mine = async (budgetId: string) =>
        (await t.db.database.db.select().from(notifications).where(eq(notifications.budgetId, budgetId))).map((n) => [n.periodStart, n.priority]);
      expect(await mine(b1.id)).toEqual([['2024-02-01', 'high']]);
      expect(await mine(b2.id)).toEqual([['2024-02-01', 'medium']]);
      expect(seen).toHaveLength(first.created);
      expect(seen).toEqual(expect.arrayContaining(['high', 'medium']));

      const before = seen.length;
      expect((await service.checkAll(NOW)).created).toBe(0);
      expect(seen).toHaveLength(before);

      // In March u1 has spent nothing yet; u2's 7.00 of 10.00 passes the 0.5 threshold again.
      const march = await service.checkUser(u2.userId, new Date('2024-03-15T00:00:00Z'));
      expect(march.alerts.map((n) => [n.periodStart, n.priority])).toEqual([['2024-03-01', 'medium']]);
      expect((await service.checkUser(u1.userId, new Date('2024-03-15T00:00:00Z'))).alerts).toEqual([]);
    });

    it('two concurrent checks record one alert per budget and priority', async () => {
      const user = await newUser();
      const [a, b] = await Promise.all(['A', 'B'].map((n) => newCategory(user, n)));
      const high = await createBudget(user, { name: 'High', amount: '10.00', category_id: a });
      const medium = await createBudget(user, { name: 'Medium', amount: '10.00', category_id: b });
      await addTx(user, '2024-02-02', '-12.00', a);
      await addTx(user, '2024-02-02', '-9.00', b);

      const results = await Promise.all([checkAlerts(user), checkAlerts(user), checkAlerts(user)]);
      for (const r of results) expect(r.statusCode).toBe(200);
      const alerts = results.flatMap((r) => json<{ alerts: Alert[] }>(r).alerts);
      expect(alerts.map((x) => `${x.budget_id}:${x.priority}`).sort()).toEqual([`${high.id}:high`, `${medium.id}:medium`].sort());
      const stored = await t.db.database.db.select().from(notifications).where(eq(notifications.userId, user.userId));
      expect(stored).toHaveLength(2);
    });

    it("checks only the caller's budgets", async () => {
      const user = await newUser();
      const other = await newUser();
      await createBudget(other, { name: 'Other', amount: '1.00' });
      await addTx(other, '2024-02-02', '-5.00', null);
      expect(json(await checkAlerts(user))).toEqual({ checked: 0, alerts: [] });
      const theirs = json<{ alerts: Alert[] }>(await checkAlerts(other));
      expect(theirs.alerts).toHaveLength(1);
    });

    it('an alert shows up in the notifications and can be marked read', async () => {
      const user = await newUser();
      const b = await createBudget(user, { name: 'Shown', amount: '20.00' });
      await addTx(user, '2024-02-02', '-20.00', null);
      const [alert] = json<{ alerts: Alert[] }>(await checkAlerts(user)).alerts;
      expect(alert).toMatchObject({ budget_id: b.id, priority: 'high' });

      const list = await t.app.inject({ method: 'GET', url: '/api/v1/notifications?unread_only=true', headers: bearer(user.token) });
      expect(json<{ items: Alert[] }>(list).items.map((x) => x.id)).toEqual([alert!.id]);
      const read = await t.app.inject({ method: 'POST', url: `/api/v1/notifications/${alert!.id}/read`, headers: bearer(user.token) });
      expect(read.statusCode).toBe(200);
      expect(json<Alert>(read).read_at).toEqual(expect.any(String));
      const unread = await t.app.inject({ method: 'GET', url: '/api/v1/notifications?unread_only=true', headers: bearer(user.token) });
      expect(json<{ items: Alert[] }>(unread).items).toEqual([]);
    });
  });
});
