import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_CSP, CORS_ALLOWED_HEADERS, CORS_ALLOWED_METHODS, CORS_EXPOSED_HEADERS, DOCS_CSP } from '../../src/http/headers.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';

const APP_ORIGIN = 'https://app.example.com';
const OTHER_ORIGIN = 'https://evil.example.net';
const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'access-control-max-age',
  'access-control-expose-headers',
];

describe('Cache-Control and Content-Security-Policy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('sends no-store on login and refresh', async () => {
    const { email, password, refreshToken } = await registerAndLogin(t.app);
    const login = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
    expect(login.statusCode).toBe(200);
    expect(login.headers['cache-control']).toBe('no-store');
    const refresh = await t.app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refresh_token: refreshToken } });
    expect(refresh.statusCode).toBe(200);
    expect(refresh.headers['cache-control']).toBe('no-store');
    const badLogin = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'wrong password entirely' } });
    expect(badLogin.statusCode).toBe(401);
    expect(badLogin.headers['cache-control']).toBe('no-store');
  });

  it('sends no-store on an authenticated list and on the 401 of /auth/me and of a bad token', async () => {
    const { token } = await registerAndLogin(t.app);
    const list = await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: bearer(token) });
    expect(list.statusCode).toBe(200);
    expect(list.headers['cache-control']).toBe('no-store');
    const anonymousMe = await t.app.inject({ method: 'GET', url: '/api/v1/auth/me' });
    expect(anonymousMe.statusCode).toBe(401);
    expect(anonymousMe.headers['cache-control']).toBe('no-store');
    const badToken = await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: bearer('not-a-token') });
    expect(badToken.statusCode).toBe(401);
    expect(badToken.headers['cache-control']).toBe('no-store');
  });

  it('leaves anonymous public responses cacheable', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.headers['cache-control']).toBeUndefined();
  });

  it('sends the strict CSP and the other security headers on API responses, errors included', async () => {
    for (const url of ['/health', '/api/v1/accounts', '/api/v1/nowhere']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.headers['content-security-policy']).toBe(API_CSP);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    }
    expect(API_CSP).toBe("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  });

  it('serves /docs with a policy that allows what the Swagger UI loads', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toBe(DOCS_CSP);
    // Everything the page loads is a same-origin file (script-src/style-src 'self'), none inline.
    const html = page.body;
    expect(html).not.toMatch(/<script>|<style|style="/);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets.length).toBeGreaterThan(3);
    for (const asset of assets) {
      expect(asset).toMatch(/^\.\/static\//);
      const res = await t.app.inject({ method: 'GET', url: `/docs/${asset.slice(2)}` });
      expect(res.statusCode, asset).toBe(200);
      expect(res.headers['content-security-policy']).toBe(DOCS_CSP);
    }
    const spec = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
    expect(DOCS_CSP).toContain("connect-src 'self'");
    const redirect = await t.app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(redirect.statusCode);
  });

  it('sends no CORS headers at all when CORS_ORIGINS is unset', async () => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/v1/accounts',
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'GET' },
    });
    expect(preflight.statusCode).toBe(404);
    const get = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: APP_ORIGIN } });
    for (const res of [preflight, get]) {
      for (const h of CORS_HEADERS) expect(res.headers[h], h).toBeUndefined();
      expect(res.headers.vary).toBeUndefined();
    }
  });
});

describe('CORS', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ CORS_ORIGINS: `${APP_ORIGIN}, http://localhost:5173`, RATE_LIMIT_ENABLED: 'true' });
  });
  afterAll(async () => t.close());

  const preflight = (origin: string, url = '/api/v1/accounts') =>
    t.app.inject({
      method: 'OPTIONS',
      url,
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });

  it('answers a preflight from an allowed origin with 204 and every header, without auth or rate limit', async () => {
    const res = await preflight(APP_ORIGIN);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': APP_ORIGIN,
      'access-control-allow-methods': CORS_ALLOWED_METHODS,
      'access-control-allow-headers': CORS_ALLOWED_HEADERS,
      'access-control-max-age': '600',
      vary: 'Origin',
    });
    expect(CORS_ALLOWED_HEADERS).toBe('Authorization, Content-Type, X-Request-ID');
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers['x-request-id']).toBeDefined();
    expect(res.headers.ratelimit).toBeUndefined();
    expect((await preflight('http://localhost:5173', '/api/v1/transactions/123')).headers['access-control-allow-origin']).toBe('http://localhost:5173');
  });

  it('answers a preflight from a refused origin with 204 and no CORS header', async () => {
    const res = await preflight(OTHER_ORIGIN);
    expect(res.statusCode).toBe(204);
    for (const h of CORS_HEADERS) expect(res.headers[h], h).toBeUndefined();
    expect(res.headers.vary).toBe('Origin');
    // A near miss is refused too: origins are compared exactly.
    expect((await preflight(`${APP_ORIGIN}:8443`)).headers['access-control-allow-origin']).toBeUndefined();
    expect((await preflight('http://app.example.com')).headers['access-control-allow-origin']).toBeUndefined();
  });

  it('gives an actual request from an allowed origin ACAO, Vary and the exposed headers', async () => {
    const { token } = await registerAndLogin(t.app);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: { ...bearer(token), origin: APP_ORIGIN } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(res.headers.vary).toBe('Origin');
    expect(res.headers['access-control-expose-headers']).toBe(CORS_EXPOSED_HEADERS);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    expect(res.headers['cache-control']).toBe('no-store');
    // An error answer is readable by the front end too.
    const unauthorized = await t.app.inject({ method: 'GET', url: '/api/v1/accounts', headers: { origin: APP_ORIGIN } });
    expect(unauthorized.statusCode).toBe(401);
    expect(unauthorized.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
  });

  it('gives a request from a refused origin or without Origin no CORS header', async () => {
    for (const headers of [{ origin: OTHER_ORIGIN }, {}]) {
      const res = await t.app.inject({ method: 'GET', url: '/health', headers });
      expect(res.statusCode).toBe(200);
      for (const h of CORS_HEADERS) expect(res.headers[h], h).toBeUndefined();
      expect(res.headers.vary).toBe('Origin');
    }
  });

  it('answers a plain OPTIONS (no preflight) as an unknown route, in problem+json', async () => {
    const res = await t.app.inject({ method: 'OPTIONS', url: '/api/v1/accounts' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(json(res)).toMatchObject({ status: 404 });
  });

  it('counts preflights under one bounded endpoint label, never as a 404', async () => {
    await preflight(APP_ORIGIN, '/api/v1/a');
    await preflight(OTHER_ORIGIN, '/api/v1/b/c');
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    const lines = metrics.body.split('\n').filter((l) => l.startsWith('http_requests_total{') && l.includes('method="OPTIONS"'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toContain('endpoint="/*"');
    expect(lines.some((l) => l.includes('endpoint="/*"') && l.includes('status="204"'))).toBe(true);
  });
});

describe('CORS with credentials', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ CORS_ORIGINS: APP_ORIGIN, CORS_ALLOW_CREDENTIALS: 'true' });
  });
  afterAll(async () => t.close());

  it('sends Access-Control-Allow-Credentials to an allowed origin only', async () => {
    const allowed = await t.app.inject({ method: 'OPTIONS', url: '/api/v1/accounts', headers: { origin: APP_ORIGIN, 'access-control-request-method': 'GET' } });
    expect(allowed.headers['access-control-allow-credentials']).toBe('true');
    const get = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: APP_ORIGIN } });
    expect(get.headers['access-control-allow-credentials']).toBe('true');
    const refused = await t.app.inject({ method: 'GET', url: '/health', headers: { origin: OTHER_ORIGIN } });
    expect(refused.headers['access-control-allow-credentials']).toBeUndefined();
  });
});
