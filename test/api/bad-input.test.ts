/**
 * The "Must show": malformed JSON, wrong types, an oversized body, a bad `limit`, a bad
 * UUID, a foreign id, an unknown route and a wrong content type each get their 4xx as
 * problem+json, never a 500; and a seeded fuzz of bodies and query strings never gets a 5xx.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
  request_id: string;
}

function expectProblem(res: LightMyRequestResponse, status: number): ProblemBody {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = json<ProblemBody>(res);
  expect(body.status).toBe(status);
  expect(typeof body.type).toBe('string');
  expect(body.title.length).toBeGreaterThan(0);
  expect(body.request_id).toBeTruthy();
  expect(body.request_id).toBe(res.headers['x-request-id']);
  return body;
}

/** A small seeded generator, so the fuzz sends the same inputs on every run. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('bad input', () => {
  let t: TestApp;
  let alice: Record<string, string>;
  let bob: Record<string, string>;
  let accountId: string;
  let txId: string;

  beforeAll(async () => {
    // These tests send hundreds of requests from one client; rate limiting has its own tests.
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'false' });
    alice = bearer((await registerAndLogin(t.app)).token);
    bob = bearer((await registerAndLogin(t.app)).token);
    const account = await t.app.inject({
      method: 'POST', url: '/api/v1/accounts', headers: alice, payload: { name: 'Checking', type: 'checking', current_balance: '10.00' },
    });
    accountId = json<{ id: string }>(account).id;
    const tx = await t.app.inject({
      method: 'POST', url: '/api/v1/transactions', headers: alice, payload: { account_id: accountId, date: '2024-02-17', amount: '-84.70' },
    });
    txId = json<{ id: string }>(tx).id;
  });
  afterAll(async () => t.close());

  const postRaw = (url: string, body: string | Buffer, contentType = 'application/json') =>
    t.app.inject({ method: 'POST', url, headers: { ...alice, 'content-type': contentType }, payload: body });

  describe('malformed JSON is a 400', () => {
    it.each([
      ['truncated', '{"account_id": '],
      ['trailing comma', '{"amount": "1.00",}'],
      ['single quotes', "{'amount': '1.00'}"],
      ['not JSON at all', 'amount=1.00'],
      ['a prototype-pollution key', '{"__proto__": {"is_admin": true}}'],
    ])('%s', async (_what, body) => {
      expectProblem(await postRaw('/api/v1/transactions', body), 400);
      expectProblem(await postRaw('/api/v1/accounts', body), 400);
    });
  });

  describe('wrong types are a 422 with field errors', () => {
    it('on a transaction', async () => {
      const res = await postRaw('/api/v1/transactions', JSON.stringify({ account_id: 123, date: true, amount: {}, pending: 'no', merchant_name: [] }));
      const body = expectProblem(res, 422);
      expect([...new Set(body.errors!.map((e) => e.field))].sort()).toEqual([
        'body.account_id', 'body.amount', 'body.date', 'body.merchant_name', 'body.pending',
      ]);
      expect(body.errors!.every((e) => e.message.length > 0)).toBe(true);
    });

    it('on an account', async () => {
      const res = await postRaw('/api/v1/accounts', JSON.stringify({ name: 5, type: null, current_balance: [1], currency: 840 }));
      expect(expectProblem(res, 422).errors!.map((e) => e.field).sort()).toEqual(['body.currency', 'body.current_balance', 'body.name', 'body.type']);
    });

    it.each([['[]'], ['"a string"'], ['42'], ['null']])('a body of %s instead of an object', async (body) => {
      expect(expectProblem(await postRaw('/api/v1/transactions', body), 422).errors!.map((e) => e.field)).toEqual(['body']);
    });
  });

  describe('a missing required field is reported as Required', () => {
    it.each([
      ['an account without name and type', '/api/v1/accounts', {}, [
        { field: 'body.name', message: 'Required' },
        { field: 'body.type', message: 'Required' },
      ]],
      ['a transaction without account_id, date and amount', '/api/v1/transactions', { description: 'x' }, [
        { field: 'body.account_id', message: 'Required' },
        { field: 'body.amount', message: 'Required' },
        { field: 'body.date', message: 'Required' },
      ]],
      ['a login without password', '/api/v1/auth/login', { email: 'someone@example.com' }, [{ field: 'body.password', message: 'Required' }]],
    ])('%s', async (_what, url, payload, expected) => {
      const body = expectProblem(await postRaw(url, JSON.stringify(payload)), 422);
      expect([...body.errors!].sort((a, b) => a.field.localeCompare(b.field))).toEqual(expected);
    });

    it('a present but wrong value keeps its own message', async () => {
      const body = expectProblem(await postRaw('/api/v1/accounts', JSON.stringify({ name: 5, type: 'checking' })), 422);
      expect(body.errors).toHaveLength(1);
      expect(body.errors![0]!.field).toBe('body.name');
      expect(body.errors![0]!.message).not.toBe('Required');
    });
  });

  it('a body over 1 MiB is a 413', async () => {
    const big = JSON.stringify({ account_id: accountId, date: '2024-02-17', amount: '1.00', description: 'x'.repeat(1_100_000) });
    expectProblem(await postRaw('/api/v1/transactions', big), 413);
    expectProblem(await postRaw('/api/v1/accounts', big), 413);
  });

  it.each([['-1'], ['0'], ['100000'], ['abc'], ['201'], ['1.5'], ['']])('limit=%s is a 422 naming the field', async (limit) => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/transactions?limit=${limit}`, headers: alice });
    expect(expectProblem(res, 422).errors!.map((e) => e.field)).toEqual(['query.limit']);
  });

  describe('a bad UUID in the path is a 422', () => {
    it.each([
      ['GET', '/api/v1/transactions/not-a-uuid'],
      ['PATCH', '/api/v1/transactions/123'],
      ['DELETE', "/api/v1/transactions/1'%20or%20'1'='1"],
      ['GET', '/api/v1/accounts/00000000-0000-0000-0000-00000000000g'],
      ['PATCH', '/api/v1/accounts/%00'],
      ['DELETE', '/api/v1/accounts/abc'],
    ] as const)('%s %s', async (method, url) => {
      const res = await t.app.inject({ method, url, headers: alice, ...(method === 'PATCH' ? { payload: {} } : {}) });
      expect(expectProblem(res, 422).errors!.map((e) => e.field)).toEqual(['params.id']);
    });
  });

  describe('a foreign or unknown id is a 404', () => {
    it.each(['GET', 'PATCH', 'DELETE'] as const)('%s of another user’s transaction and account', async (method) => {
      const opts = method === 'PATCH' ? { payload: {} } : {};
      expectProblem(await t.app.inject({ method, url: `/api/v1/transactions/${txId}`, headers: bob, ...opts }), 404);
      expectProblem(await t.app.inject({ method, url: `/api/v1/accounts/${accountId}`, headers: bob, ...opts }), 404);
      expectProblem(await t.app.inject({ method, url: `/api/v1/transactions/${crypto.randomUUID()}`, headers: alice, ...opts }), 404);
    });

    it('the owner still has both', async () => {
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/transactions/${txId}`, headers: alice })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/accounts/${accountId}`, headers: alice })).statusCode).toBe(200);
    });
  });

  it.each([
    ['GET', '/api/v1/nope'],
    ['GET', '/api/v1/transactions/a/b'],
    ['PUT', '/api/v1/transactions'],
    ['POST', '/definitely/not/here?x=1'],
  ] as const)('an unknown route (%s %s) is a 404', async (method, url) => {
    const body = expectProblem(await t.app.inject({ method, url, headers: alice }), 404);
    expect(body.detail).not.toContain('?');
  });

  it('an anonymous request is refused with 401 before its body is parsed or validated', async () => {
    for (const payload of ['{not json', '{"amount": 12}', 'x'.repeat(100)]) {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/transactions', headers: { 'content-type': 'application/json' }, payload });
      expectProblem(res, 401);
    }
  });

  it('an empty JSON body counts as no body: 422 naming the body where one is needed, accepted where none is', async () => {
    for (const empty of ['', '  \n']) {
      const body = expectProblem(await postRaw('/api/v1/transactions', empty), 422);
      expect(body.errors?.map((e) => e.field)).toEqual(['body']);
      const readAll = await postRaw('/api/v1/notifications/read-all', empty);
      expect(readAll.statusCode, readAll.body).toBe(200);
      expect(json<{ updated: number }>(readAll).updated).toBe(0);
    }
  });

  it.each([['application/xml'], ['application/x-www-form-urlencoded'], ['multipart/form-data; boundary=x'], ['image/png'], ['text/plain']])(
    'a body sent as %s is a 415',
    async (contentType) => {
      expectProblem(await postRaw('/api/v1/transactions', '<amount>1</amount>', contentType), 415);
    },
  );

  describe('fuzz (seeded): no input gets a 5xx', () => {
    const random = mulberry32(0x5eed_2024);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const strings = [
      '', ' ', 'a', '-84.70', '0.10', '1e309', '-0', '99999999999999999999.99', '1.005', '2024-02-17', '2024-02-30', '0000-01-01',
      '9999-12-31', '10000-01-01', 'null', 'true', '[]', '{}', '\u0000', 'a\u0000b', '\ud800', '😀💸', "'; drop table transactions; --",
      '%', '%_\\', '\\', '../../etc/passwd', 'x'.repeat(5000), '00000000-0000-0000-0000-000000000000', 'NaN', 'Infinity', '<script>',
    ];
    const values = (): unknown[] => [
      null, true, false, 0, -1, 1.5, 0.30000000000000004, 1e308, -1e308, Number.MAX_SAFE_INTEGER, ...strings,
      crypto.randomUUID(), accountId, txId, [], [1, 'a'], {}, { nested: { deep: [null] } },
    ];
    const value = (): unknown => pick(values());

    const body = (): { raw: string } | { payload: unknown } => {
      const r = random();
      if (r < 0.1) {
        // Random bytes, mostly not JSON.
        return { raw: Array.from({ length: Math.floor(random() * 40) }, () => String.fromCharCode(Math.floor(random() * 128))).join('') };
      }
      if (r < 0.2) return { payload: value() };
      // A plausible transaction with some fields replaced, dropped or added.
      const tx: Record<string, unknown> = {
        account_id: accountId, date: '2024-02-17', amount: '-1.00', merchant_name: 'Shop', description: 'd', category_id: null, pending: false,
      };
      for (const key of Object.keys(tx)) {
        const m = random();
        if (m < 0.25) tx[key] = value();
        else if (m < 0.35) delete tx[key];
      }
      if (random() < 0.2) tx[pick(['extra', 'user_id', 'id', 'source', '__proto__x'])] = value();
      return { payload: tx };
    };

    const queryKeys = [
      'limit', 'cursor', 'account_id', 'category_id', 'start_date', 'end_date', 'min_amount', 'max_amount', 'merchant', 'unknown',
    ];
    const cursors = () => [
      Buffer.from(JSON.stringify({ d: pick(strings), i: pick([crypto.randomUUID(), ...strings]) })).toString('base64url'),
      Buffer.from(JSON.stringify(value()) ?? 'x').toString('base64url'),
      pick(strings),
    ];
    // A lone surrogate cannot be percent-encoded; send its (invalid) UTF-8 bytes instead.
    const encode = (v: string) => {
      try {
        return encodeURIComponent(v);
      } catch {
        return '%ED%A0%80';
      }
    };
    const query = (): string => {
      const parts: string[] = [];
      const n = 1 + Math.floor(random() * 4);
      for (let i = 0; i < n; i++) {
        const key = pick(queryKeys);
        const v = key === 'cursor' && random() < 0.6 ? pick(cursors()) : String(value());
        parts.push(random() < 0.9 ? `${key}=${encode(v)}` : `${key}=${pick(['%', '%zz', '%E0%A4%A', '==', '&', '+'])}`);
      }
      return parts.join('&');
    };

    it('300 bodies against POST /api/v1/transactions', async () => {
      const seen = new Map<number, number>();
      for (let i = 0; i < 300; i++) {
        const b = body();
        const res =
          'raw' in b
            ? await postRaw('/api/v1/transactions', b.raw)
            : await t.app.inject({ method: 'POST', url: '/api/v1/transactions', headers: alice, payload: b.payload as object });
        expect(res.statusCode, `body #${i}: ${'raw' in b ? b.raw : JSON.stringify(b.payload)?.slice(0, 200)}`).toBeLessThan(500);
        if (res.statusCode >= 400) expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
      }
      // The fuzz reached the JSON parser, the validator and the database alike.
      expect([...seen.keys()].sort()).toEqual(expect.arrayContaining([201, 400, 422]));
    });

    it('300 query strings against GET /api/v1/transactions', async () => {
      const seen = new Map<number, number>();
      for (let i = 0; i < 300; i++) {
        const q = query();
        const res = await t.app.inject({ method: 'GET', url: `/api/v1/transactions?${q}`, headers: alice });
        expect(res.statusCode, `query #${i}: ${q.slice(0, 300)}`).toBeLessThan(500);
        if (res.statusCode >= 400) expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
      }
      expect([...seen.keys()].sort()).toEqual(expect.arrayContaining([200, 422]));
    });
  });
});
