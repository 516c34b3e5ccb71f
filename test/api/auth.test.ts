import { createHash } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { categories, refreshTokens, users } from '../../src/db/schema.ts';
import { DEFAULT_CATEGORIES } from '../../src/modules/categories/defaults.ts';
import { bearer, createTestApp, json, registerAndLogin, TEST_JWT_SECRET, type TestApp } from '../helpers/app.ts';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
  request_id: string;
  trace_id: string;
}

interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

let seq = 0;
const uniqueEmail = (prefix = 'user') => `${prefix}-${Date.now().toString(36)}-${++seq}@example.com`;
const PASSWORD = 'correct horse battery staple';

describe('auth API', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'false' }); // this file logs in far more often than the login policy allows
  });
  afterAll(async () => t.close());

  const post = (url: string, payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url: `/api/v1/auth${url}`, payload: payload as Record<string, unknown>, headers });
  const me = (token: string) => t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(token) });
  const login = (email: string, password = PASSWORD) => post('/login', { email, password });
  const refresh = (refreshToken: string) => post('/refresh', { refresh_token: refreshToken });
  const db = () => t.db.database.db;

  function expectProblem(res: Awaited<ReturnType<typeof me>>, status: number): ProblemBody {
    expect(res.statusCode).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = json<ProblemBody>(res);
    expect(body).toMatchObject({ status, type: 'about:blank' });
    expect(body.request_id).toBe(res.headers['x-request-id']);
    return body;
  }

  describe('register, login, me', () => {
    it('registers, logs in and reads the user back', async () => {
      const email = uniqueEmail('happy');
      const reg = await post('/register', { email, password: PASSWORD, full_name: 'Jane Saver' });
      expect(reg.statusCode).toBe(201);
      const user = json(reg);
      expect(Object.keys(user).sort()).toEqual(['created_at', 'email', 'full_name', 'id', 'is_admin']);
      expect(user).toMatchObject({ email, full_name: 'Jane Saver', is_admin: false });
      expect(new Date(user.created_at as string).toISOString()).toBe(user.created_at);

      const res = await login(email);
      expect(res.statusCode).toBe(200);
      const pair = json<TokenPair>(res);
      expect(pair.token_type).toBe('bearer');
      expect(pair.expires_in).toBe(t.config.auth.accessTokenTtlSeconds);
      expect(pair.access_token.split('.')).toHaveLength(3);
      expect(pair.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

      const who = await me(pair.access_token);
      expect(who.statusCode).toBe(200);
      expect(json(who)).toEqual(user);
    });

    it('seeds the default categories with the new user', async () => {
      const reg = await post('/register', { email: uniqueEmail('cats'), password: PASSWORD });
      const { id } = json<{ id: string }>(reg);
      const rows = await db().select({ name: categories.name }).from(categories).where(eq(categories.userId, id));
      expect(rows.map((r) => r.name).sort()).toEqual([...DEFAULT_CATEGORIES].sort());
    });

    it('normalises the email: stored trimmed and lower-cased, login in any case', async () => {
      const local = `Mixed.Case-${++seq}`;
      const reg = await post('/register', { email: `  ${local}@Example.COM `, password: PASSWORD });
      expect(reg.statusCode).toBe(201);
      expect(json(reg).email).toBe(`${local.toLowerCase()}@example.com`);
      const res = await login(`${local.toUpperCase()}@EXAMPLE.com`);
      expect(res.statusCode).toBe(200);
    });

    it('refuses the same email in another case with 409', async () => {
      const email = uniqueEmail('dup');
      expect((await post('/register', { email, password: PASSWORD })).statusCode).toBe(201);
      const again = await post('/register', { email: email.toUpperCase(), password: 'another password' });
      const body = expectProblem(again, 409);
      expect(body.detail).toMatch(/already exists/);
      const rows = await db().select({ id: users.id }).from(users).where(eq(users.email, email));
      expect(rows).toHaveLength(1);
    });

    it('lets exactly one of two concurrent registrations of one email succeed', async () => {
      const email = uniqueEmail('race');
      const results = await Promise.all([
        post('/register', { email, password: PASSWORD }),
        post('/register', { email: email.toUpperCase(), password: PASSWORD }),
      ]);
      expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409]);
    });

    it('ignores is_admin in the register body', async () => {
      const email = uniqueEmail('sneaky');
      const reg = await post('/register', { email, password: PASSWORD, is_admin: true });
      expect(reg.statusCode).toBe(201);
      expect(json(reg).is_admin).toBe(false);
      const [row] = await db().select({ isAdmin: users.isAdmin }).from(users).where(eq(users.email, email));
      expect(row?.isAdmin).toBe(false);
      const pair = json<TokenPair>(await login(email));
      expect(json(await me(pair.access_token)).is_admin).toBe(false);
    });

    it('answers a wrong password and an unknown email identically', async () => {
      const { email } = await registerAndLogin(t.app, { email: uniqueEmail('victim') });
      const wrong = await login(email, 'not the password');
      const unknown = await login(uniqueEmail('nobody'), 'not the password');
      const a = expectProblem(wrong, 401);
      const b = expectProblem(unknown, 401);
      expect(a.request_id).not.toBe(b.request_id);
      expect(a.trace_id).not.toBe(b.trace_id);
      const { request_id: _a, trace_id: _ta, ...restA } = a;
      const { request_id: _b, trace_id: _tb, ...restB } = b;
      expect(restA).toEqual(restB);
      expect(wrong.headers['content-type']).toBe(unknown.headers['content-type']);
    });

    it('answers 401 for /me without a token', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me' });
      expectProblem(res, 401);
    });

    it('answers 401 for a valid token of a deleted user', async () => {
      const { token, userId } = await registerAndLogin(t.app, { email: uniqueEmail('gone') });
      expect((await me(token)).statusCode).toBe(200);
      await db().delete(users).where(eq(users.id, userId));
      expectProblem(await me(token), 401);
    });
  });

  describe('access tokens', () => {
    const key = new TextEncoder().encode(TEST_JWT_SECRET);
    let userId: string;
    let token: string;
    beforeAll(async () => {
      ({ userId, token } = await registerAndLogin(t.app, { email: uniqueEmail('jwt') }));
    });

    const signed = (exp: number, secret = key) =>
      new SignJWT({ typ: 'access' })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(userId)
        .setIssuer('nest-egg')
        .setIssuedAt(exp - 900)
        .setExpirationTime(exp)
        .sign(secret);
    const nowSeconds = () => Math.floor(Date.now() / 1000);

    it('accepts a token with the right claims, signed with the secret (control for the cases below)', async () => {
      const res = await me(await signed(nowSeconds() + 600));
      expect(res.statusCode).toBe(200);
      expect(json(res).id).toBe(userId);
    });

    it('rejects an expired token', async () => {
      expectProblem(await me(await signed(nowSeconds() - 60)), 401);
    });

    it('rejects an `alg: none` token with otherwise valid claims', async () => {
      const unsecured = new UnsecuredJWT({ typ: 'access' })
        .setSubject(userId)
        .setIssuer('nest-egg')
        .setIssuedAt()
        .setExpirationTime('10m')
        .encode();
      expect(unsecured.endsWith('.')).toBe(true);
      expectProblem(await me(unsecured), 401);
    });

    it('rejects a token whose signature was tampered with', async () => {
      const [header, payload, signature] = token.split('.') as [string, string, string];
      const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
      expectProblem(await me(`${header}.${payload}.${flipped}`), 401);
    });

    it('rejects a token whose payload was changed under the original signature', async () => {
      const other = await registerAndLogin(t.app, { email: uniqueEmail('other') });
      const [header, , signature] = token.split('.') as [string, string, string];
      const [, otherPayload] = other.token.split('.') as [string, string];
      expectProblem(await me(`${header}.${otherPayload}.${signature}`), 401);
    });

    it('rejects a token signed with another secret', async () => {
      const foreign = new TextEncoder().encode('a-completely-different-secret-of-32-chars!');
      expectProblem(await me(await signed(nowSeconds() + 600, foreign)), 401);
    });

    it('rejects a refresh token used as a bearer token', async () => {
      const { refreshToken } = await registerAndLogin(t.app, { email: uniqueEmail('confused') });
      expectProblem(await me(refreshToken), 401);
    });
  });

  describe('refresh tokens', () => {
    it('stores only the SHA-256 hash of a refresh token', async () => {
      const { refreshToken, userId } = await registerAndLogin(t.app, { email: uniqueEmail('hash') });
      const rows = await db().select().from(refreshTokens).where(eq(refreshTokens.userId, userId));
      expect(rows).toHaveLength(1);
      expect(rows[0]!.tokenHash).toBe(createHash('sha256').update(refreshToken).digest('hex'));
      expect(JSON.stringify(rows)).not.toContain(refreshToken);
      const ttlMs = rows[0]!.expiresAt.getTime() - rows[0]!.createdAt.getTime();
      expect(Math.round(ttlMs / 86_400_000)).toBe(t.config.auth.refreshTokenTtlDays);
    });

    it('rotates: a refresh gives a new working pair and spends the old refresh token', async () => {
      const first = await registerAndLogin(t.app, { email: uniqueEmail('rotate') });
      const res = await refresh(first.refreshToken);
      expect(res.statusCode).toBe(200);
      const pair = json<TokenPair>(res);
      expect(pair.token_type).toBe('bearer');
      expect(pair.refresh_token).not.toBe(first.refreshToken);
      expect(pair.access_token).not.toBe(first.token);
      const who = await me(pair.access_token);
      expect(json(who).id).toBe(first.userId);

      const rows = await db().select().from(refreshTokens).where(eq(refreshTokens.userId, first.userId));
      expect(rows).toHaveLength(2);
      const spent = rows.find((r) => r.revokedAt !== null)!;
      const current = rows.find((r) => r.revokedAt === null)!;
      expect(spent.replacedBy).toBe(current.id);
      expect(spent.familyId).toBe(current.familyId);

      // The new one rotates again.
      expect((await refresh(pair.refresh_token)).statusCode).toBe(200);
    });

    it('revokes the whole family when a rotated token is presented again', async () => {
      const first = await registerAndLogin(t.app, { email: uniqueEmail('reuse') });
      const second = json<TokenPair>(await refresh(first.refreshToken));
      const third = json<TokenPair>(await refresh(second.refresh_token));

      // Someone replays the first (already rotated) token.
      const replay = await refresh(first.refreshToken);
      expectProblem(replay, 401);
      // The newest token of that family stops working too.
      expectProblem(await refresh(third.refresh_token), 401);
      const rows = await db().select().from(refreshTokens).where(eq(refreshTokens.userId, first.userId));
      expect(rows).toHaveLength(3);
      expect(rows.every((r) => r.revokedAt !== null)).toBe(true);
    });

    it('leaves the user\'s other sessions alone when one family is revoked', async () => {
      const email = uniqueEmail('sessions');
      const a = await registerAndLogin(t.app, { email });
      const b = json<TokenPair>(await login(email));
      await refresh(a.refreshToken);
      expectProblem(await refresh(a.refreshToken), 401); // reuse: family A revoked
      expect((await refresh(b.refresh_token)).statusCode).toBe(200);
    });

    it('lets exactly one of two concurrent uses of one refresh token succeed', async () => {
      const first = await registerAndLogin(t.app, { email: uniqueEmail('concurrent') });
      const results = await Promise.all([refresh(first.refreshToken), refresh(first.refreshToken)]);
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401]);
      // The loser looks like a replay, so the winner's new token is revoked with its family.
      const winner = json<TokenPair>(results.find((r) => r.statusCode === 200)!);
      expectProblem(await refresh(winner.refresh_token), 401);
    });

    it('refuses an expired refresh token', async () => {
      const first = await registerAndLogin(t.app, { email: uniqueEmail('expired') });
      await db()
        .update(refreshTokens)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(refreshTokens.userId, first.userId));
      expectProblem(await refresh(first.refreshToken), 401);
    });

    it('refuses an unknown refresh token', async () => {
      expectProblem(await refresh('x'.repeat(43)), 401);
    });
  });

  describe('logout', () => {
    it('revokes the session of the token and is idempotent', async () => {
      const first = await registerAndLogin(t.app, { email: uniqueEmail('logout') });
      const second = json<TokenPair>(await refresh(first.refreshToken));
      const out = await post('/logout', { refresh_token: second.refresh_token });
      expect(out.statusCode).toBe(204);
      expect(out.body).toBe('');
      expectProblem(await refresh(second.refresh_token), 401);
      const rows = await db().select().from(refreshTokens).where(eq(refreshTokens.userId, first.userId));
      // The sign-in's token and its rotation: both there, both revoked (an empty list would prove nothing).
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(rows.filter((r) => r.revokedAt === null)).toEqual([]);

      expect((await post('/logout', { refresh_token: second.refresh_token })).statusCode).toBe(204);
      expect((await post('/logout', { refresh_token: 'never-issued' })).statusCode).toBe(204);
    });
  });

  describe('input validation', () => {
    const fields = (res: Awaited<ReturnType<typeof me>>) => {
      const body = expectProblem(res, 422);
      expect(Array.isArray(body.errors)).toBe(true);
      // One field may carry more than one message; the test is about which fields are named.
      return [...new Set(body.errors!.map((e) => e.field))];
    };

    it('rejects a malformed email', async () => {
      expect(fields(await post('/register', { email: 'not-an-email', password: PASSWORD }))).toEqual(['body.email']);
      expect(fields(await post('/login', { email: 'a@', password: PASSWORD }))).toEqual(['body.email']);
    });

    it('rejects a short or an overlong password', async () => {
      expect(fields(await post('/register', { email: uniqueEmail('short'), password: 'seven77' }))).toEqual(['body.password']);
      expect(fields(await post('/register', { email: uniqueEmail('long'), password: 'x'.repeat(257) }))).toEqual(['body.password']);
    });

    it('lists every missing field', async () => {
      expect(fields(await post('/register', {})).sort()).toEqual(['body.email', 'body.password']);
      expect(fields(await post('/login', { email: uniqueEmail('nopass') }))).toEqual(['body.password']);
      expect(fields(await post('/refresh', {}))).toEqual(['body.refresh_token']);
      expect(fields(await post('/logout', {}))).toEqual(['body.refresh_token']);
    });

    it('rejects wrong types', async () => {
      const res = await post('/register', { email: 42, password: ['x'], full_name: { first: 'J' } });
      expect(fields(res).sort()).toEqual(['body.email', 'body.full_name', 'body.password']);
      expect(fields(await post('/refresh', { refresh_token: 12345 }))).toEqual(['body.refresh_token']);
    });

    it('refuses control characters in a name (Postgres text cannot hold NUL) with 422, not 500', async () => {
      expect(fields(await post('/register', { email: uniqueEmail('nul'), password: PASSWORD, full_name: 'Jane\u0000Doe' }))).toEqual(['body.full_name']);
      expect(fields(await post('/register', { email: `nul\u0000${uniqueEmail()}`, password: PASSWORD }))).toEqual(['body.email']);
      // A password is only hashed, never stored: any character may be in it.
      const email = uniqueEmail('nulpass');
      expect((await post('/register', { email, password: 'pass\u0000word' })).statusCode).toBe(201);
      expect((await login(email, 'pass\u0000word')).statusCode).toBe(200);
      expect((await login(email, 'pass')).statusCode).toBe(401);
    });

    it('answers malformed JSON with 400', async () => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        headers: { 'content-type': 'application/json' },
        payload: '{"email": "a@example.com", "password": ',
      });
      expectProblem(res, 400);
    });
  });
});
