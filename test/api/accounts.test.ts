import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

interface Account {
  id: string;
  name: string;
  type: string;
  institution: string | null;
  mask: string | null;
  current_balance: string;
  currency: string;
  source: string;
  created_at: string;
  updated_at: string;
}

describe('accounts', () => {
  let t: TestApp;
  let alice: Record<string, string>;
  let bob: Record<string, string>;

  beforeAll(async () => {
    // These tests send hundreds of requests from one client; rate limiting has its own tests.
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'false' });
    alice = bearer((await registerAndLogin(t.app)).token);
    bob = bearer((await registerAndLogin(t.app)).token);
  });
  afterAll(async () => t.close());

  const create = (headers: Record<string, string>, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: '/api/v1/accounts', headers, payload });

  it('creates a manual account and normalises money and currency', async () => {
    const res = await create(alice, {
      name: 'Everyday Checking', type: 'checking', institution: 'First Bank', mask: '4321', current_balance: '1520.5', currency: 'eur',
    });
    expect(res.statusCode).toBe(201);
    const a = json<Account>(res);
    expect(a).toMatchObject({
      name: 'Everyday Checking', type: 'checking', institution: 'First Bank', mask: '4321',
      current_balance: '1520.50', currency: 'EUR', source: 'manual',
    });
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(a.created_at).toISOString()).toBe(a.created_at);
  });

  it('defaults currency to USD and leaves optional fields null', async () => {
    const res = await create(alice, { name: 'Card', type: 'credit_card', current_balance: '-84.70' });
    expect(res.statusCode).toBe(201);
    expect(json<Account>(res)).toMatchObject({ currency: 'USD', institution: null, mask: null, current_balance: '-84.70', source: 'manual' });
  });

  it.each([
    [{ type: 'checking', current_balance: '1' }, 'body.name'],
    [{ name: '   ', type: 'checking', current_balance: '1' }, 'body.name'],
    [{ name: 'A', type: 'brokerage', current_balance: '1' }, 'body.type'],
    [{ name: 'A', type: 'checking', current_balance: '1.234' }, 'body.current_balance'],
    [{ name: 'A', type: 'checking', current_balance: 1.5, mask: '12345' }, 'body.mask'],
    [{ name: 'A', type: 'checking', current_balance: 1.5, mask: '1' }, 'body.mask'],
    [{ name: 'A', type: 'checking', current_balance: 1.5, mask: '12a4' }, 'body.mask'],
    [{ name: 'A', type: 'checking', current_balance: '1', currency: 'US' }, 'body.currency'],
    [{ name: 'A', type: 'checking', current_balance: '1', currency: 'U$D' }, 'body.currency'],
    [{ name: 'A', type: 'checking', current_balance: '1', source: 'plaid', institution: 7 }, 'body.institution'],
  ])('rejects %j with a field error on %s', async (payload, field) => {
    const res = await create(alice, payload);
    expect(res.statusCode).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(json<{ errors: { field: string }[] }>(res).errors.map((e) => e.field)).toContain(field);
  });

  it('creates an account without current_balance at "0.00"', async () => {
    const res = await create(alice, { name: 'New Savings', type: 'savings' });
    expect(res.statusCode, res.body).toBe(201);
    const a = json<Account>(res);
    expect(a).toMatchObject({ name: 'New Savings', current_balance: '0.00', currency: 'USD' });
    const got = await t.app.inject({ method: 'GET', url: `/api/v1/accounts/${a.id}`, headers: alice });
    expect(json<Account>(got).current_balance).toBe('0.00');
  });

  it('says a missing name is required', async () => {
    const res = await create(alice, { type: 'checking' });
    expect(res.statusCode).toBe(422);
    expect(json<{ errors: { field: string; message: string }[] }>(res).errors).toEqual([{ field: 'body.name', message: 'Required' }]);
  });

  it('the OpenAPI document shows current_balance optional with its "0.00" default', async () => {
    const doc = json<{ paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: Record<string, unknown> }> } }>> }>(
      await t.app.inject({ method: 'GET', url: '/docs/json' }),
    );
    const schema = (doc.paths['/api/v1/accounts/'] ?? doc.paths['/api/v1/accounts'])!.post!.requestBody.content['application/json']!.schema as {
      required?: string[];
      properties: Record<string, { default?: unknown }>;
    };
    expect(schema.required).toEqual(expect.arrayContaining(['name', 'type']));
    expect(schema.required ?? []).not.toContain('current_balance');
    expect(schema.properties.current_balance!.default).toBe('0.00');
  });

  it('ignores a client-sent source: API accounts are always manual', async () => {
    const res = await create(alice, { name: 'Sneaky', type: 'other', current_balance: '0', source: 'plaid' });
    expect(res.statusCode).toBe(201);
    expect(json<Account>(res).source).toBe('manual');
  });

  it('lists only the caller’s accounts; gets one by id', async () => {
    const mine = json<Account>(await create(alice, { name: 'Savings', type: 'savings', current_balance: '10' }));
    const theirs = json<Account>(await create(bob, { name: 'Bob Savings', type: 'savings', current_balance: '10' }));
    const list = json<{ items: Account[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: alice }));
    const ids = list.items.map((a) => a.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    const bobList = json<{ items: Account[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: bob }));
    expect(bobList.items.map((a) => a.id)).toEqual([theirs.id]);

    const one = await t.app.inject({ method: 'GET', url: `/api/v1/accounts/${mine.id}`, headers: alice });
    expect(one.statusCode).toBe(200);
    expect(json<Account>(one)).toEqual(mine);
  });

  it('patches only the fields sent; null clears institution and mask', async () => {
    const a = json<Account>(await create(alice, { name: 'Old', type: 'checking', institution: 'X', mask: '99', current_balance: '5.00' }));
    const res = await t.app.inject({ method: 'PATCH', url: `/api/v1/accounts/${a.id}`, headers: alice, payload: { name: 'New', current_balance: '0.10' } });
    expect(res.statusCode).toBe(200);
    const b = json<Account>(res);
    expect(b).toMatchObject({ id: a.id, name: 'New', type: 'checking', institution: 'X', mask: '99', current_balance: '0.10', currency: 'USD' });
    expect(Date.parse(b.updated_at)).toBeGreaterThanOrEqual(Date.parse(a.updated_at));

    const cleared = json<Account>(
      await t.app.inject({ method: 'PATCH', url: `/api/v1/accounts/${a.id}`, headers: alice, payload: { institution: null, mask: null } }),
    );
    expect(cleared).toMatchObject({ name: 'New', institution: null, mask: null, current_balance: '0.10' });

    const bad = await t.app.inject({ method: 'PATCH', url: `/api/v1/accounts/${a.id}`, headers: alice, payload: { type: 'nope', name: null } });
    expect(bad.statusCode).toBe(422);
    expect(json<{ errors: { field: string }[] }>(bad).errors.map((e) => e.field).sort()).toEqual(['body.name', 'body.type']);
  });

  it('another user gets 404 for GET, PATCH and DELETE of an account that is not theirs, and it is left intact', async () => {
    const a = json<Account>(await create(alice, { name: 'Private', type: 'investment', current_balance: '1000.00' }));
    const url = `/api/v1/accounts/${a.id}`;
    for (const [method, payload] of [['GET'], ['PATCH', { name: 'Hijacked' }], ['DELETE']] as const) {
      const res = await t.app.inject({ method, url, headers: bob, ...(payload ? { payload } : {}) });
      expect(res.statusCode, method).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const still = await t.app.inject({ method: 'GET', url, headers: alice });
    expect(still.statusCode).toBe(200);
    expect(json<Account>(still)).toEqual(a);
  });

  it('deletes an account with 204 and its transactions go with it', async () => {
    const doomed = json<Account>(await create(alice, { name: 'Doomed', type: 'checking', current_balance: '0' }));
    const kept = json<Account>(await create(alice, { name: 'Kept', type: 'checking', current_balance: '0' }));
    const tx = async (accountId: string) =>
      json<{ id: string }>(
        await t.app.inject({
          method: 'POST', url: '/api/v1/transactions', headers: alice,
          payload: { account_id: accountId, date: '2024-03-01', amount: '-1.00' },
        }),
      ).id;
    const gone = [await tx(doomed.id), await tx(doomed.id)];
    const stays = await tx(kept.id);

    const del = await t.app.inject({ method: 'DELETE', url: `/api/v1/accounts/${doomed.id}`, headers: alice });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');

    expect((await t.app.inject({ method: 'GET', url: `/api/v1/accounts/${doomed.id}`, headers: alice })).statusCode).toBe(404);
    for (const id of gone) {
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/transactions/${id}`, headers: alice })).statusCode).toBe(404);
    }
    expect((await t.app.inject({ method: 'GET', url: `/api/v1/transactions/${stays}`, headers: alice })).statusCode).toBe(200);
    const again = await t.app.inject({ method: 'DELETE', url: `/api/v1/accounts/${doomed.id}`, headers: alice });
    expect(again.statusCode).toBe(404);
  });

  it('requires a bearer token', async () => {
    for (const [method, url] of [['GET', '/api/v1/accounts'], ['POST', '/api/v1/accounts'], ['GET', `/api/v1/accounts/${crypto.randomUUID()}`]] as const) {
      const payload = { name: 'A', type: 'checking', current_balance: '1' };
      const res = await t.app.inject({ method, url, ...(method === 'POST' ? { payload } : {}) });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
    }
  });
});
