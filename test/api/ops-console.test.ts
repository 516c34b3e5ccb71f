/**
 * The operator console's server side through app.inject(): the page and its assets under the
 * console's CSP, sign-in (admins only, the login defences, audited), the session cookie's flags,
 * the CSRF defences (a cross-site form post, a missing or wrong token), the idle timeout, and each
 * view and action of /ops/api — unblocking a rate-limited client, retrying and discarding a failed
 * job, this replica's last 5xx answers and security events, the audit trail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { eq } from 'drizzle-orm';
import { users } from '../../src/db/schema.ts';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import type { InlineRunner } from '../../src/jobs/inline-runner.ts';
import { CONSOLE_CSP } from '../../src/routes/ops/index.ts';
import { createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

const ADMIN_PASSWORD = 'console admin password';

interface Signed {
  cookie: string;
  csrf: string;
  setCookie: string;
}

function cookieOf(res: LightMyRequestResponse): string {
  const header = res.headers['set-cookie'];
  const raw = Array.isArray(header) ? header[0]! : String(header);
  return raw;
}

async function signIn(t: TestApp, email: string, password = ADMIN_PASSWORD, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/ops/api/session', headers: { 'content-type': 'application/json', ...headers }, payload: { email, password } });
}

async function signedIn(t: TestApp, email: string): Promise<Signed> {
  const res = await signIn(t, email);
  expect(res.statusCode).toBe(200);
  const setCookie = cookieOf(res);
  return { cookie: setCookie.split(';')[0]!, csrf: json<{ csrf_token: string }>(res).csrf_token, setCookie };
}

const newAdmin = async (t: TestApp) => {
  const email = `ops-${Math.random().toString(36).slice(2)}@example.com`;
  const { id } = await createOrPromoteAdmin(t.db.database.db, email, ADMIN_PASSWORD);
  return { email, id };
};

describe('the operator console (test environment: Secure cookie)', () => {
  let t: TestApp;
  let admin: { email: string; id: string };
  let s: Signed;

  const get = (url: string, extra: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers: { cookie: s.cookie, ...extra } });
  const post = (url: string, payload: unknown = {}, extra: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url, headers: { cookie: s.cookie, 'x-csrf-token': s.csrf, 'content-type': 'application/json', ...extra }, payload: JSON.stringify(payload) });

  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_POLICIES: 'anonymous=3/60', JOB_ATTEMPTS: '1', OPS_SESSION_IDLE_SECONDS: '60' });
    admin = await newAdmin(t);
    s = await signedIn(t, admin.email);
  });
  afterAll(async () => t?.close());

  it('serves the page and its assets under the console CSP; nothing else under /ops/assets', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/ops' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    expect(CONSOLE_CSP).not.toContain('unsafe-inline');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain('<script type="module" src="/ops/assets/app.js"></script>');
    expect(page.body).not.toMatch(/<script>|<style|style=/);
    const js = await t.app.inject({ method: 'GET', url: '/ops/assets/app.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    const again = await t.app.inject({ method: 'GET', url: '/ops/assets/app.js', headers: { 'if-none-match': String(js.headers.etag) } });
    expect(again.statusCode).toBe(304);
    expect((await t.app.inject({ method: 'GET', url: '/ops/assets/app.css' })).headers['content-type']).toMatch(/^text\/css/);
    for (const url of ['/ops/assets/LICENSES.txt', '/ops/assets/..%2f..%2fconfig.ts', '/ops/assets/index.html']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
  });

  it('says who is signed in, and refuses every view without a session (401 problem)', async () => {
    const anonymous = await t.app.inject({ method: 'GET', url: '/ops/api/session' });
    expect(json(anonymous)).toEqual({ signed_in: false });
    for (const url of ['/ops/api/overview', '/ops/api/history', '/ops/api/rate-limits', '/ops/api/jobs', '/ops/api/errors', '/ops/api/security', '/ops/api/audit']) {
      const res = await t.app.inject({ method: 'GET', url, headers: { cookie: 'nest_egg_ops=forged; __Secure-nest_egg_ops=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
      expect(res.statusCode, url).toBe(401);
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    }
    // The router decodes percent-escapes: `/ops/%61pi/…` is `/ops/api/…`, and is refused the same way.
    for (const [method, url] of [['GET', '/ops/%61pi/audit'], ['GET', '/ops/%61pi/errors'], ['POST', '/ops/%61pi/rate-limits/reset'], ['DELETE', '/ops/%61pi/session'], ['GET', '/%6Fps/api/overview']] as const) {
      const res = await t.app.inject({ method, url, headers: { 'content-type': 'application/json' }, payload: method === 'GET' ? undefined : '{"client_id":"x"}' });
      expect(res.statusCode, `${method} ${url}`).toBe(401);
    }
    const me = json<{ signed_in: boolean; user: { email: string }; replica: { pid: number }; mode: string }>(await get('/ops/api/session'));
    expect(me).toMatchObject({ signed_in: true, user: { email: admin.email }, replica: { pid: process.pid }, mode: 'embedded' });
  });

  it('sets the session cookie httpOnly, Secure, SameSite=Strict, Path=/ops, for the session TTL', () => {
    const attrs = s.setCookie.split(';').map((p) => p.trim());
    expect(attrs[0]).toMatch(/^__Secure-nest_egg_ops=[A-Za-z0-9_-]{43}$/);
    expect(attrs).toEqual(expect.arrayContaining(['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/ops', 'Max-Age=14400']));
  });

  it('refuses a user who is not a platform admin (403, audited, a security event) and wrong passwords (401)', async () => {
    const user = await registerAndLogin(t.app);
    const refused = await signIn(t, user.email, user.password);
    expect(refused.statusCode).toBe(403);
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(json<{ detail: string }>(refused).detail).toMatch(/platform admins/);
    const wrong = await signIn(t, admin.email, 'not the password');
    expect(wrong.statusCode).toBe(401);
    const audit = json<{ items: { action: string; outcome: string; actor: string }[] }>(await get('/ops/api/audit?action=ops.sign_in'));
    expect(audit.items.slice(0, 3).map((i) => [i.outcome, i.actor])).toEqual([
      ['failure', admin.id],
      ['denied', user.userId],
      ['success', admin.id],
    ]);
    const security = json<{ events: { type: string; details: { user_id?: string; ip?: string } }[] }>(await get('/ops/api/security'));
    expect(security.events[0]).toMatchObject({ type: 'admin_denied', details: { user_id: user.userId, ip: '127.0.0.0/24' } });
  });

  it('refuses a cross-site form post to a console action, and a call without the CSRF token', async () => {
    const form = await t.app.inject({
      method: 'POST',
      url: '/ops/api/rate-limits/reset',
      headers: { cookie: s.cookie, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'client_id=127.0.0.1',
    });
    expect(form.statusCode).toBe(403);
    expect(json<{ detail: string }>(form).detail).toMatch(/Cross-site/);
    // An old browser that sends no Sec-Fetch-Site still sends its Origin.
    expect((await post('/ops/api/rate-limits/reset', { client_id: '127.0.0.1' }, { origin: 'https://evil.example' })).statusCode).toBe(403);
    expect((await post('/ops/api/rate-limits/reset', { client_id: '127.0.0.1' }, { 'x-csrf-token': 'wrong' })).statusCode).toBe(403);
    const noToken = await t.app.inject({ method: 'POST', url: '/ops/api/jobs/1/retry', headers: { cookie: s.cookie, 'content-type': 'application/json' }, payload: '{}' });
    expect(noToken.statusCode).toBe(403);
    expect(json<{ detail: string }>(noToken).detail).toMatch(/CSRF/);
    // Sign-in from another site is refused too (login CSRF).
    expect((await signIn(t, admin.email, ADMIN_PASSWORD, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    // Behind a TLS-terminating proxy (no TRUST_PROXY) the browser's https Origin names our host: accepted.
    expect((await post('/ops/api/rate-limits/reset', { client_id: '192.0.2.2' }, { origin: 'https://console.example.com', host: 'console.example.com' })).statusCode).toBe(200);
    expect((await post('/ops/api/rate-limits/reset', { client_id: '192.0.2.2' }, { origin: 'https://evil.example.com', host: 'console.example.com' })).statusCode).toBe(403);
    expect((await post('/ops/api/rate-limits/reset', { client_id: '192.0.2.2' }, { origin: 'null' })).statusCode).toBe(403);
    // The same call from the console's own origin passes.
    const same = await post('/ops/api/rate-limits/reset', { client_id: '192.0.2.1' }, { origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' });
    expect(same.statusCode).toBe(200);
    const resets = json<{ items: { action: string }[] }>(await get('/ops/api/audit?action=ops.rate_limit_reset'));
    expect(resets.items).toHaveLength(2);
  });

  it('unblocks a rate-limited client: its next request is admitted, and the reset is audited', async () => {
    const probe = () => t.app.inject({ method: 'GET', url: '/api/v1/categories', remoteAddress: '198.51.100.7' });
    for (let i = 0; i < 3; i++) expect((await probe()).statusCode).toBe(401);
    expect((await probe()).statusCode).toBe(429);
    const limits = json<{ current_active_limits: { client_id: string; blocked: boolean; endpoint: string }[]; store: string }>(await get('/ops/api/rate-limits'));
    expect(limits.store).toBe('memory');
    expect(limits.current_active_limits).toContainEqual(expect.objectContaining({ client_id: '198.51.100.7', blocked: true, endpoint: '/api/v1' }));
    const reset = await post('/ops/api/rate-limits/reset', { client_id: '198.51.100.7', endpoint: '/api/v1' });
    expect(json(reset)).toEqual({ reset: 1 });
    expect((await probe()).statusCode).toBe(401);
    const audit = json<{ items: { action: string; actor: string; target_id: string; details: Record<string, unknown> }[] }>(await get('/ops/api/audit?action=ops.rate_limit_reset'));
    expect(audit.items[0]).toMatchObject({ actor: admin.id, target_id: '198.51.100.7', details: { endpoint: '/api/v1', windows_reset: 1 } });
    expect(json(await post('/ops/api/rate-limits/reset', { client_id: '203.0.113.9' }))).toEqual({ reset: 0 });
    expect((await post('/ops/api/rate-limits/reset', { endpoint: '/api/v1' })).statusCode).toBe(422);
  });

  it('retries and discards failed jobs (404 unknown, 409 not failed), audited', async () => {
    const runner = t.app.jobs as InlineRunner;
    const first = await runner.enqueue('sync_transactions', { item_id: 'not-a-uuid' });
    const second = await runner.enqueue('sync_transactions', { item_id: 'not-a-uuid' });
    await runner.drain();
    const jobs = json<{ recent_failures: { id: string; failed_reason: string }[]; counts: { failed: number } }>(await get('/ops/api/jobs'));
    expect(jobs.recent_failures.map((f) => f.id)).toEqual(expect.arrayContaining([first.id, second.id]));
    expect(jobs.counts.failed).toBe(2);
    expect(json(await post(`/ops/api/jobs/${first.id}/retry`))).toEqual({ id: first.id, state: 'waiting' });
    await runner.drain();
    expect(runner.getJob(first.id)).toMatchObject({ state: 'failed', attemptsMade: 1 });
    expect(json(await post(`/ops/api/jobs/${second.id}/discard`))).toEqual({ id: second.id, discarded: true });
    expect(runner.getJob(second.id)).toBeUndefined();
    expect((await post(`/ops/api/jobs/${second.id}/discard`)).statusCode).toBe(404);
    const done = await runner.enqueue('cleanup_expired_refresh_tokens', {});
    await runner.drain();
    expect((await post(`/ops/api/jobs/${done.id}/retry`)).statusCode).toBe(409);
    const audit = json<{ items: { action: string; outcome: string; target_id: string }[] }>(await get('/ops/api/audit?actor=' + admin.id));
    expect(audit.items.filter((i) => i.action.startsWith('ops.job_')).map((i) => [i.action, i.outcome, i.target_id])).toEqual([
      ['ops.job_retry', 'failure', done.id],
      ['ops.job_discard', 'failure', second.id],
      ['ops.job_discard', 'success', second.id],
      ['ops.job_retry', 'success', first.id],
    ]);
  });

  it("shows a failed job's data scrubbed as log lines are", async () => {
    const runner = t.app.jobs as InlineRunner;
    const job = await runner.enqueue('sync_transactions', { item_id: 'jane.doe@example.com', access_token: 'access-sandbox-4f1c2b9e-0000-4000-8000-1234567890ab' });
    await runner.drain();
    const res = await get('/ops/api/jobs');
    expect(res.body).not.toContain('jane.doe@example.com');
    expect(res.body).not.toContain('access-sandbox-4f1c2b9e');
    const failure = json<{ recent_failures: { id: string; data: Record<string, unknown> }[] }>(res).recent_failures.find((f) => f.id === job.id);
    expect(failure!.data).toMatchObject({ access_token: '[REDACTED]' });
    await post(`/ops/api/jobs/${job.id}/discard`);
  });

  it('lists the last 5xx answers with request and trace ids, the message scrubbed', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/dev/test-sentry',
      headers: { 'x-request-id': 'ops-5xx-check', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    expect(res.statusCode).toBe(500);
    const errors = json<{ errors: Record<string, unknown>[] }>(await get('/ops/api/errors'));
    expect(errors.errors[0]).toMatchObject({
      method: 'POST',
      route: '/api/v1/dev/test-sentry',
      status: 500,
      request_id: 'ops-5xx-check',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      sentry_event_id: null,
      sentry_url: null,
      trace_url: null,
    });
  });

  it('shows the overview and the sampled hour of this process', async () => {
    interface Overview {
      readiness: { status: string; checks: unknown[] };
      database: { mode: string };
      redis: unknown;
      queue: unknown;
      process: { rss_bytes: number };
    }
    const overview = json<Overview>(await get('/ops/api/overview'));
    expect(overview.readiness.status).toBe('ready');
    expect(overview.readiness.checks).toContainEqual(expect.objectContaining({ name: 'database', required: true, status: 'ok' }));
    expect(overview.database.mode).toBe(t.db.database.mode);
    expect(overview.redis).toEqual({ configured: false });
    expect(overview.queue).toMatchObject({ backend: 'inline' });
    expect(overview.process.rss_bytes).toBeGreaterThan(0);
    const metrics = json<{ metrics_enabled: boolean; interval_seconds: number; window_seconds: number; points: unknown[] }>(await get('/ops/api/history'));
    expect(metrics).toMatchObject({ metrics_enabled: true, interval_seconds: 10, window_seconds: 3600 });
    expect(Array.isArray(metrics.points)).toBe(true);
  });

  it('ends a session after its idle timeout, but not because of the auto-refresh; sign-out ends it at once', async () => {
    const other = await signedIn(t, admin.email);
    const clock = Date.now;
    try {
      Date.now = () => clock() + 45_000;
      // An auto-refresh read 45 s in: answered, but the idle clock is not restarted.
      expect((await t.app.inject({ method: 'GET', url: '/ops/api/overview', headers: { cookie: other.cookie, 'x-console-refresh': 'auto' } })).statusCode).toBe(200);
      Date.now = () => clock() + 61_000;
      expect((await t.app.inject({ method: 'GET', url: '/ops/api/overview', headers: { cookie: other.cookie } })).statusCode).toBe(401);
    } finally {
      Date.now = clock;
    }
    const out = await t.app.inject({ method: 'DELETE', url: '/ops/api/session', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } });
    expect(out.statusCode).toBe(204);
    expect(cookieOf(out)).toMatch(/Max-Age=0/);
    expect((await get('/ops/api/overview')).statusCode).toBe(401);
  });
});

describe('console sessions and the account behind them', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t?.close());

  it('signing in again ends the session the browser had', async () => {
    const admin = await newAdmin(t);
    const first = await signedIn(t, admin.email);
    const again = await signIn(t, admin.email, ADMIN_PASSWORD, { cookie: first.cookie });
    expect(again.statusCode).toBe(200);
    expect(cookieOf(again).split(';')[0]).not.toBe(first.cookie);
    expect((await t.app.inject({ method: 'GET', url: '/ops/api/overview', headers: { cookie: first.cookie } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/ops/api/overview', headers: { cookie: cookieOf(again).split(';')[0]! } })).statusCode).toBe(200);
  });

  it('an admin who is demoted loses the console at the next request, and the page is told to sign in', async () => {
    const admin = await newAdmin(t);
    const s = await signedIn(t, admin.email);
    await t.db.database.db.update(users).set({ isAdmin: false }).where(eq(users.id, admin.id));
    expect(json(await t.app.inject({ method: 'GET', url: '/ops/api/session', headers: { cookie: s.cookie } }))).toEqual({ signed_in: false });
    await t.db.database.db.update(users).set({ isAdmin: true }).where(eq(users.id, admin.id));
    // The session was ended, not merely refused once.
    expect((await t.app.inject({ method: 'GET', url: '/ops/api/audit', headers: { cookie: s.cookie } })).statusCode).toBe(401);
  });
});

describe('the operator console in development (no Secure cookie: plain http on localhost)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ENVIRONMENT: 'development' });
  });
  afterAll(async () => t?.close());

  it('names the cookie without the __Secure- prefix and leaves Secure off', async () => {
    const admin = await newAdmin(t);
    const { setCookie } = await signedIn(t, admin.email);
    expect(setCookie).toMatch(/^nest_egg_ops=/);
    expect(setCookie).not.toMatch(/Secure/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
  });
});

describe('OPS_CONSOLE_ENABLED=false', () => {
  it('serves no console at all', async () => {
    const t = await createTestApp({ OPS_CONSOLE_ENABLED: 'false' });
    try {
      expect((await t.app.inject({ method: 'GET', url: '/ops' })).statusCode).toBe(404);
      expect((await t.app.inject({ method: 'GET', url: '/ops/api/session' })).statusCode).toBe(404);
    } finally {
      await t.close();
    }
  });
});
