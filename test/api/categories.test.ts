import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CATEGORIES } from '../../src/modules/categories/defaults.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

interface Category {
  id: string;
  name: string;
  is_default: boolean;
  created_at: string;
}

describe('categories', () => {
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

  const list = async (headers: Record<string, string>) => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/categories', headers });
    expect(res.statusCode).toBe(200);
    return json<{ items: Category[] }>(res).items;
  };
  const create = (headers: Record<string, string>, name: unknown) =>
    t.app.inject({ method: 'POST', url: '/api/v1/categories', headers, payload: { name } });
  // Case-insensitive, by code point (the service sorts with the C collation, the same everywhere).
  const byName = (a: string, b: string) => (a.toLowerCase() < b.toLowerCase() ? -1 : a.toLowerCase() > b.toLowerCase() ? 1 : 0);

  it('a new user has the default set, sorted by name', async () => {
    const items = await list(bob);
    expect(items.map((c) => c.name)).toEqual([...DEFAULT_CATEGORIES].sort(byName));
    expect(items.every((c) => c.is_default)).toBe(true);
  });

  it('creates a category that then appears in its sorted place', async () => {
    const res = await create(alice, '  Pets ');
    expect(res.statusCode).toBe(201);
    const pets = json<Category>(res);
    expect(pets).toMatchObject({ name: 'Pets', is_default: false });
    const lower = json<Category>(await create(alice, 'anniversary gifts'));
    const names = (await list(alice)).map((c) => c.name);
    expect(names).toEqual([...DEFAULT_CATEGORIES, 'Pets', 'anniversary gifts'].sort(byName));
    expect(names.indexOf(lower.name)).toBe(0);
  });

  it('answers 409 for a name the user already has, in any case', async () => {
    for (const name of ['GROCERIES', 'groceries', 'pets', 'PETS']) {
      const res = await create(alice, name);
      expect(res.statusCode, name).toBe(409);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(json(res)).toMatchObject({ status: 409, title: 'Conflict' });
    }
    const names = (await list(alice)).map((c) => c.name.toLowerCase());
    expect(names.filter((n) => n === 'pets')).toHaveLength(1);
    expect(names.filter((n) => n === 'groceries')).toHaveLength(1);
  });

  it('names are per user: another user may use the same one and does not see it', async () => {
    expect((await create(bob, 'Pets')).statusCode).toBe(201);
    const aliceIds = new Set((await list(alice)).map((c) => c.id));
    const bobItems = await list(bob);
    expect(bobItems.some((c) => aliceIds.has(c.id))).toBe(false);
    expect(bobItems.map((c) => c.name)).not.toContain('anniversary gifts');
  });

  it.each([[''], ['   '], ['x'.repeat(101)], [42], [null], ['a\u0000b']])('rejects the name %j with 422', async (name) => {
    const res = await create(alice, name);
    expect(res.statusCode).toBe(422);
    expect(json<{ errors: { field: string }[] }>(res).errors[0]?.field).toBe('body.name');
  });

  it('requires a bearer token', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/categories' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/categories', payload: { name: 'Z' } })).statusCode).toBe(401);
  });
});
