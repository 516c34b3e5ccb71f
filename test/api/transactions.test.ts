import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { fromCents, toCents } from '../../src/lib/money.ts';
import { encodeCursor } from '../../src/lib/cursor.ts';
import { TransactionService } from '../../src/modules/transactions/service.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

interface Tx {
  id: string;
  account_id: string;
  date: string;
  amount: string;
  merchant_name: string | null;
  description: string | null;
  category_id: string | null;
  pending: boolean;
  created_at: string;
  updated_at: string;
}
interface Page {
  items: Tx[];
  next_cursor: string | null;
}
interface ProblemBody {
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
}
type Headers = Record<string, string>;

/** The order the API promises: date descending, then id descending (uuid order is its hex order). */
const newestFirst = (a: Tx, b: Tx) => (a.date !== b.date ? (a.date < b.date ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
const fieldsOf = (p: ProblemBody) => (p.errors ?? []).map((e) => e.field).sort();

describe('transactions', () => {
  let t: TestApp;
  let alice: Headers;
  let bob: Headers;

  const post = (headers: Headers, url: string, payload: unknown) => t.app.inject({ method: 'POST', url, headers, payload: payload as object });
  const newAccount = async (headers: Headers, name = 'Checking') =>
    json<{ id: string }>(await post(headers, '/api/v1/accounts', { name, type: 'checking', current_balance: '0' })).id;
  const newTx = async (headers: Headers, payload: Record<string, unknown>) => {
    const res = await post(headers, '/api/v1/transactions', payload);
    expect(res.statusCode, res.body).toBe(201);
    return json<Tx>(res);
  };
  const listPage = async (headers: Headers, query: string) => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/transactions?${query}`, headers });
    expect(res.statusCode, res.body).toBe(200);
    return json<Page>(res);
  };
  const categoryId = async (headers: Headers, name: string) => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/categories', headers });
    const found = json<{ items: { id: string; name: string }[] }>(res).items.find((c) => c.name === name);
    if (!found) throw new Error(`no category ${name}`);
    return found.id;
  };

  beforeAll(async () => {
    // These tests send hundreds of requests from one client; rate limiting has its own tests.
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'false' });
    alice = bearer((await registerAndLogin(t.app)).token);
    bob = bearer((await registerAndLogin(t.app)).token);
  });
  afterAll(async () => t.close());

  describe('CRUD', () => {
    it('creates, reads, patches and deletes a transaction', async () => {
      const checking = await newAccount(alice);
      const savings = await newAccount(alice, 'Savings');
      const groceries = await categoryId(alice, 'Groceries');
      const created = await newTx(alice, {
        account_id: checking, date: '2024-02-17', amount: '-84.70', merchant_name: 'Whole Foods', description: 'weekly shop', category_id: groceries,
      });
      expect(created).toMatchObject({
        account_id: checking, date: '2024-02-17', amount: '-84.70', merchant_name: 'Whole Foods', description: 'weekly shop',
        category_id: groceries, pending: false,
      });
      expect(Object.keys(created).sort()).toEqual(
        ['account_id', 'amount', 'category_id', 'created_at', 'date', 'description', 'id', 'merchant_name', 'pending', 'updated_at'],
      );

      const url = `/api/v1/transactions/${created.id}`;
      const got = await t.app.inject({ method: 'GET', url, headers: alice });
      expect(got.statusCode).toBe(200);
      expect(json<Tx>(got)).toEqual(created);

      const patched = await t.app.inject({
        method: 'PATCH', url, headers: alice, payload: { amount: '-90', pending: true, category_id: null, merchant_name: null },
      });
      expect(patched.statusCode).toBe(200);
      expect(json<Tx>(patched)).toMatchObject({
        id: created.id, account_id: checking, date: '2024-02-17', amount: '-90.00', merchant_name: null, description: 'weekly shop',
        category_id: null, pending: true,
      });

      const moved = await t.app.inject({ method: 'PATCH', url, headers: alice, payload: { account_id: savings, date: '2024-02-18' } });
      expect(json<Tx>(moved)).toMatchObject({ account_id: savings, date: '2024-02-18', amount: '-90.00', pending: true });

      const del = await t.app.inject({ method: 'DELETE', url, headers: alice });
      expect(del.statusCode).toBe(204);
      expect(del.body).toBe('');
      expect((await t.app.inject({ method: 'GET', url, headers: alice })).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'DELETE', url, headers: alice })).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'PATCH', url, headers: alice, payload: { pending: false } })).statusCode).toBe(404);
    });

    it.each([
      [{ date: '2024-02-30', amount: '1' }, ['body.date']],
      [{ date: '02/17/2024', amount: '1' }, ['body.date']],
      [{ date: '2024-02-17', amount: 'abc' }, ['body.amount']],
      [{ date: '2024-02-17', amount: '1.001' }, ['body.amount']],
      [{ date: '2024-02-17', amount: '1', pending: 'yes' }, ['body.pending']],
      [{ date: '2024-02-17', amount: '1', category_id: 'groceries' }, ['body.category_id']],
      [{ amount: '1' }, ['body.date']],
      [{ date: 20240217, amount: null }, ['body.amount', 'body.date']],
    ])('rejects %j with field errors %j', async (fields, expected) => {
      const account = await newAccount(alice);
      const res = await post(alice, '/api/v1/transactions', { account_id: account, ...fields });
      expect(res.statusCode).toBe(422);
      expect(fieldsOf(json<ProblemBody>(res))).toEqual(expected);
    });

    it('requires a bearer token', async () => {
      expect((await t.app.inject({ method: 'GET', url: '/api/v1/transactions' })).statusCode).toBe(401);
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/transactions/${crypto.randomUUID()}` })).statusCode).toBe(401);
    });
  });

  describe('money is exact', () => {
    it('"-84.70" round-trips through create, get, list and patch', async () => {
      const account = await newAccount(alice);
      const tx = await newTx(alice, { account_id: account, date: '2024-01-01', amount: '-84.70' });
      expect(tx.amount).toBe('-84.70');
      expect(json<Tx>(await t.app.inject({ method: 'GET', url: `/api/v1/transactions/${tx.id}`, headers: alice })).amount).toBe('-84.70');
      expect((await listPage(alice, `account_id=${account}`)).items.map((i) => i.amount)).toEqual(['-84.70']);
      const p = await t.app.inject({ method: 'PATCH', url: `/api/v1/transactions/${tx.id}`, headers: alice, payload: { amount: '-84.7' } });
      expect(json<Tx>(p).amount).toBe('-84.70');
    });

    it('"0.10" + "0.20" is exactly "0.30", and the amount filter compares exactly', async () => {
      const account = await newAccount(alice);
      await newTx(alice, { account_id: account, date: '2024-01-02', amount: '0.10' });
      await newTx(alice, { account_id: account, date: '2024-01-03', amount: 0.2 });
      await newTx(alice, { account_id: account, date: '2024-01-04', amount: '0.30' });
      const items = (await listPage(alice, `account_id=${account}`)).items;
      expect(items.map((i) => i.amount)).toEqual(['0.30', '0.20', '0.10']);
      const [thirty, twenty, ten] = items.map((i) => toCents(i.amount));
      expect(fromCents(ten! + twenty!)).toBe('0.30');
      expect(ten! + twenty!).toBe(thirty);
      const exact = await listPage(alice, `account_id=${account}&min_amount=0.30&max_amount=0.3`);
      expect(exact.items.map((i) => i.amount)).toEqual(['0.30']);
    });

    it('keeps the largest amounts exact and refuses what numeric(14,2) cannot hold', async () => {
      const account = await newAccount(alice);
      for (const amount of ['999999999999.99', '-999999999999.99', '0.01', '-0.01', '0.00']) {
        expect((await newTx(alice, { account_id: account, date: '2024-01-05', amount })).amount).toBe(amount);
      }
      for (const amount of ['1000000000000.00', 0.30000000000000004, 1e21, '1e3', '0.001']) {
        const res = await post(alice, '/api/v1/transactions', { account_id: account, date: '2024-01-05', amount });
        expect(res.statusCode, String(amount)).toBe(422);
        expect(fieldsOf(json<ProblemBody>(res))).toEqual(['body.amount']);
      }
    });
  });

  describe('ownership', () => {
    let aliceAccount: string;
    let aliceTx: Tx;
    let aliceCategory: string;
    let bobAccount: string;

    beforeAll(async () => {
      aliceAccount = await newAccount(alice);
      aliceCategory = await categoryId(alice, 'Dining');
      aliceTx = await newTx(alice, { account_id: aliceAccount, date: '2024-02-01', amount: '-20.00', category_id: aliceCategory });
      bobAccount = await newAccount(bob);
    });

    it('another user gets 404 for GET, PATCH and DELETE, and the row is left intact', async () => {
      const url = `/api/v1/transactions/${aliceTx.id}`;
      for (const [method, payload] of [['GET'], ['PATCH', { amount: '0' }], ['DELETE']] as const) {
        const res = await t.app.inject({ method, url, headers: bob, ...(payload ? { payload } : {}) });
        expect(res.statusCode, method).toBe(404);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
      expect(json<Tx>(await t.app.inject({ method: 'GET', url, headers: alice }))).toEqual(aliceTx);
    });

    it('another user cannot create a transaction on the account (422 on body.account_id, same as for an unknown id)', async () => {
      const foreign = await post(bob, '/api/v1/transactions', { account_id: aliceAccount, date: '2024-02-02', amount: '-1' });
      const unknown = await post(bob, '/api/v1/transactions', { account_id: crypto.randomUUID(), date: '2024-02-02', amount: '-1' });
      expect(foreign.statusCode).toBe(422);
      expect(fieldsOf(json<ProblemBody>(foreign))).toEqual(['body.account_id']);
      const strip = (p: ProblemBody & { request_id?: string; trace_id?: string }) => ({ ...p, request_id: undefined, trace_id: undefined });
      expect(strip(json<ProblemBody>(foreign))).toEqual(strip(json<ProblemBody>(unknown)));
      expect((await listPage(alice, `account_id=${aliceAccount}`)).items.map((i) => i.id)).toEqual([aliceTx.id]);
    });

    it('another user cannot use the category, nor move a transaction onto the account', async () => {
      const withCategory = await post(bob, '/api/v1/transactions', { account_id: bobAccount, date: '2024-02-02', amount: '-1', category_id: aliceCategory });
      expect(withCategory.statusCode).toBe(422);
      expect(fieldsOf(json<ProblemBody>(withCategory))).toEqual(['body.category_id']);

      const own = await newTx(bob, { account_id: bobAccount, date: '2024-02-02', amount: '-1' });
      const move = await t.app.inject({ method: 'PATCH', url: `/api/v1/transactions/${own.id}`, headers: bob, payload: { account_id: aliceAccount } });
      expect(move.statusCode).toBe(422);
      expect(fieldsOf(json<ProblemBody>(move))).toEqual(['body.account_id']);
      const recategorise = await t.app.inject({ method: 'PATCH', url: `/api/v1/transactions/${own.id}`, headers: bob, payload: { category_id: aliceCategory } });
      expect(fieldsOf(json<ProblemBody>(recategorise))).toEqual(['body.category_id']);
      expect(json<Tx>(await t.app.inject({ method: 'GET', url: `/api/v1/transactions/${own.id}`, headers: bob }))).toEqual(own);
    });

    it('the list shows only the caller’s rows, even when filtering by a foreign account', async () => {
      const bobs = await listPage(bob, 'limit=200');
      expect(bobs.items.length).toBeGreaterThan(0);
      expect(bobs.items.every((i) => i.account_id === bobAccount)).toBe(true);
      expect((await listPage(bob, `account_id=${aliceAccount}`)).items).toEqual([]);
      expect((await listPage(bob, `category_id=${aliceCategory}`)).items).toEqual([]);
    });
  });

  describe('list filters', () => {
    let u: Headers;
    let seeded: Tx[];
    let checking: string;
    let savings: string;
    let dining: string;
    let groceries: string;

    beforeAll(async () => {
      u = bearer((await registerAndLogin(t.app)).token);
      checking = await newAccount(u, 'Checking');
      savings = await newAccount(u, 'Savings');
      dining = await categoryId(u, 'Dining');
      groceries = await categoryId(u, 'Groceries');
      const rows: [string, string, string, string | null, string | null][] = [
        [checking, '2024-01-05', '-84.70', 'Whole Foods Market', groceries],
        [checking, '2024-01-05', '-12.50', 'Starbucks', dining],
        [checking, '2024-01-20', '2500.00', 'ACME Payroll', null],
        [savings, '2024-02-01', '100.00', null, null],
        [savings, '2024-02-14', '-45.00', 'starbucks reserve', dining],
        [checking, '2024-02-29', '-0.10', '50% Off Store', null],
        [checking, '2024-03-01', '-0.20', '500 Store', groceries],
        [checking, '2024-03-01', '-30.00', 'abc Diner', dining],
        [checking, '2024-03-02', '-5.00', 'a_c Cafe', null],
        [checking, '2024-03-15', '0.30', 'Refund\\Co', null],
      ];
      seeded = [];
      for (const [account_id, date, amount, merchant_name, category_id] of rows) {
        seeded.push(await newTx(u, { account_id, date, amount, merchant_name, category_id }));
      }
    });

    const expectFilter = async (query: string, keep: (tx: Tx) => boolean) => {
      const page = await listPage(u, `limit=200&${query}`);
      const expected = seeded.filter(keep).sort(newestFirst);
      expect(expected.length, `the seed data exercises ${query}`).toBeGreaterThan(0);
      expect(expected.length, `the filter ${query} excludes something`).toBeLessThan(seeded.length);
      expect(page.items.map((i) => i.id), query).toEqual(expected.map((i) => i.id));
      expect(page.next_cursor).toBeNull();
    };

    it('without filters returns every row, newest first', async () => {
      const page = await listPage(u, 'limit=200');
      expect(page.items.map((i) => i.id)).toEqual([...seeded].sort(newestFirst).map((i) => i.id));
    });

    it('account_id', () => expectFilter(`account_id=${savings}`, (x) => x.account_id === savings));
    it('category_id', () => expectFilter(`category_id=${dining}`, (x) => x.category_id === dining));
    it('start_date (inclusive)', () => expectFilter('start_date=2024-02-01', (x) => x.date >= '2024-02-01'));
    it('end_date (inclusive)', () => expectFilter('end_date=2024-01-20', (x) => x.date <= '2024-01-20'));
    it('a date range', () => expectFilter('start_date=2024-02-01&end_date=2024-03-01', (x) => x.date >= '2024-02-01' && x.date <= '2024-03-01'));
    it('a one-day range', () => expectFilter('start_date=2024-03-01&end_date=2024-03-01', (x) => x.date === '2024-03-01'));
    it('min_amount', () => expectFilter('min_amount=0', (x) => toCents(x.amount) >= 0n));
    it('max_amount (inclusive)', () => expectFilter('max_amount=-30.00', (x) => toCents(x.amount) <= -3000n));
    it('an amount range', () => expectFilter('min_amount=-0.20&max_amount=0.30', (x) => toCents(x.amount) >= -20n && toCents(x.amount) <= 30n));
    it('merchant, case-insensitive substring', () => expectFilter('merchant=STARBUCKS', (x) => /starbucks/i.test(x.merchant_name ?? '')));
    it('merchant: % is literal', () => expectFilter('merchant=50%25', (x) => x.merchant_name === '50% Off Store'));
    it('merchant: a lone % is literal', () => expectFilter('merchant=%25', (x) => x.merchant_name === '50% Off Store'));
    it('merchant: _ is literal', () => expectFilter('merchant=a_c', (x) => x.merchant_name === 'a_c Cafe'));
    it('merchant: backslash is literal', () => expectFilter('merchant=d%5CC', (x) => x.merchant_name === 'Refund\\Co'));
    it('filters combine', () =>
      expectFilter(`account_id=${checking}&category_id=${dining}&start_date=2024-03-01`, (x) => x.merchant_name === 'abc Diner'));
    it('category_id of groceries with an amount ceiling', () =>
      expectFilter(`category_id=${groceries}&max_amount=-1`, (x) => x.merchant_name === 'Whole Foods Market'));

    it.each([
      ['start_date=2024-03-02&end_date=2024-03-01', 'query.end_date'],
      ['min_amount=1&max_amount=0.99', 'query.max_amount'],
      ['start_date=2024-02-30', 'query.start_date'],
      ['min_amount=ten', 'query.min_amount'],
      ['account_id=abc', 'query.account_id'],
      ['merchant=', 'query.merchant'],
    ])('rejects %s with 422 on %s', async (query, field) => {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/transactions?${query}`, headers: u });
      expect(res.statusCode).toBe(422);
      expect(fieldsOf(json<ProblemBody>(res))).toEqual([field]);
    });
  });

  describe('cursor pagination', () => {
    let u: Headers;
    let all: Tx[];
    let accounts: string[];

    beforeAll(async () => {
      u = bearer((await registerAndLogin(t.app)).token);
      accounts = [await newAccount(u, 'A'), await newAccount(u, 'B')];
      // 23 rows; several share a date so the id tie-break matters (5 on one day, 4 on another).
      const dates = [
        ...Array(5).fill('2024-05-01'), ...Array(4).fill('2024-04-30'), ...Array(3).fill('2024-04-15'),
        '2024-04-01', '2024-03-31', '2024-03-01', '2024-02-29', '2024-02-01', '2024-01-31', '2024-01-01', '2023-12-31', '2023-12-01',
        '2023-06-15', '2023-06-15',
      ] as string[];
      all = [];
      for (const [i, date] of dates.entries()) {
        all.push(await newTx(u, { account_id: accounts[i % 2], date, amount: fromCents(BigInt(-(i + 1) * 101)), merchant_name: `M${i}` }));
      }
      all.sort(newestFirst);
    });

    const walk = async (query: string, limit: number) => {
      const ids: string[] = [];
      const sizes: number[] = [];
      let cursor: string | null = null;
      for (let guard = 0; guard < 100; guard++) {
        const page: Page = await listPage(u, `limit=${limit}&${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        ids.push(...page.items.map((i) => i.id));
        sizes.push(page.items.length);
        cursor = page.next_cursor;
        if (!cursor) return { ids, sizes };
      }
      throw new Error('pagination did not end');
    };

    it.each([1, 4, 5, 23, 50])('limit=%i visits every row exactly once, newest first', async (limit) => {
      const { ids, sizes } = await walk('', limit);
      expect(ids).toEqual(all.map((x) => x.id));
      expect(new Set(ids).size).toBe(all.length);
      expect(sizes.length).toBe(Math.ceil(all.length / limit));
      // Every page but the last is full, and the last holds the rest (also when there is one page only).
      expect(sizes).toEqual([...Array<number>(sizes.length - 1).fill(limit), all.length - limit * (sizes.length - 1)]);
    });

    it('the default limit is 50 and one page holds all 23 rows with next_cursor null', async () => {
      const page = await listPage(u, '');
      expect(page.items).toHaveLength(23);
      expect(page.next_cursor).toBeNull();
    });

    it('pages through a filtered list', async () => {
      const { ids } = await walk(`account_id=${accounts[1]}`, 3);
      expect(ids).toEqual(all.filter((x) => x.account_id === accounts[1]).map((x) => x.id));
    });

    it('a row added at the top during the walk neither repeats nor skips the others', async () => {
      const first = await listPage(u, 'limit=6');
      const added = await newTx(u, { account_id: accounts[0], date: '2025-01-01', amount: '1.00' });
      const ids = first.items.map((i) => i.id);
      let cursor = first.next_cursor;
      while (cursor) {
        const page = await listPage(u, `limit=6&cursor=${encodeURIComponent(cursor)}`);
        ids.push(...page.items.map((i) => i.id));
        cursor = page.next_cursor;
      }
      expect(ids).toEqual(all.map((x) => x.id));
      await t.app.inject({ method: 'DELETE', url: `/api/v1/transactions/${added.id}`, headers: u });
    });

    it('the list query reads transactions_user_date_idx in order, without sorting', async () => {
      const { db } = t.db.database;
      const query = new TransactionService(db).listQuery(crypto.randomUUID(), {
        limit: 50,
        cursor: encodeCursor({ d: '2024-04-30', i: crypto.randomUUID() }),
        merchant: 'm1',
      });
      const plan = await db.transaction(async (tx) => {
        // The test tables are tiny; without this the planner may prefer a sequential scan.
        await tx.execute(sql`set local enable_seqscan = off`);
        const r = await tx.execute(sql`explain ${query}`);
        return (r as unknown as { rows: Record<string, string>[] }).rows.map((row) => Object.values(row)[0]).join('\n');
      });
      expect(plan).toContain('transactions_user_date_idx');
      expect(plan).toMatch(/Index Cond: .*ROW\(date, id\) < ROW/);
      expect(plan).not.toMatch(/\bSort\b/);
    });

    it.each([
      ['not base64 JSON', 'abc'],
      ['empty JSON object', Buffer.from('{}').toString('base64url')],
      ['a bad date', Buffer.from(JSON.stringify({ d: '2024-13-01', i: crypto.randomUUID() })).toString('base64url')],
      ['a bad id', Buffer.from(JSON.stringify({ d: '2024-01-01', i: "x' or 1=1" })).toString('base64url')],
      ['numbers instead of strings', Buffer.from(JSON.stringify({ d: 20240101, i: 1 })).toString('base64url')],
      ['JSON null', Buffer.from('null').toString('base64url')],
      ['too long', 'a'.repeat(600)],
    ])('an invalid cursor (%s) is a 422 problem', async (_what, cursor) => {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/transactions?cursor=${encodeURIComponent(cursor)}`, headers: u });
      expect(res.statusCode).toBe(422);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(fieldsOf(json<ProblemBody>(res))).toEqual(['query.cursor']);
    });

    it.each([['0'], ['-1'], ['201'], ['1.5'], ['abc']])('limit=%s is a 422 problem; 200 is allowed', async (limit) => {
      const res = await t.app.inject({ method: 'GET', url: `/api/v1/transactions?limit=${limit}`, headers: u });
      expect(res.statusCode).toBe(422);
      expect(fieldsOf(json<ProblemBody>(res))).toEqual(['query.limit']);
      expect((await listPage(u, 'limit=200')).items).toHaveLength(23);
    });
  });
});
