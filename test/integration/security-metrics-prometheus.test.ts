/**
 * The security signals in a real Prometheus scrape (issue 16): an API on a real port, scraped every
 * second by the real Prometheus binary loaded with the committed alert rules; sign-ins that succeed,
 * fail, lock and are throttled, a refresh-token replay and an admin 403 move
 * auth_login_attempts_total{outcome} and security_events_total{type} as Prometheus sees them, and
 * the security alerts' expressions evaluate there.
 */
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { TEST_JWT_SECRET } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { freePort, startPrometheus, type RunningPrometheus, type Sample } from '../helpers/prometheus.ts';
import { servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('security metrics in Prometheus', 'prometheus');
const JOB = 'nestegg-api';
const RULES = fileURLToPath(new URL('../../deploy/prometheus/alerts.yml', import.meta.url));

describe.skipIf(!ok)('security counters scraped by a real Prometheus', () => {
  let app: FastifyInstance;
  let db: TestDatabase;
  let prom: RunningPrometheus;
  let port: number;

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const byLabel = (samples: Sample[], label: string) => Object.fromEntries(samples.map((s) => [s.metric[label]!, s.value]));

  beforeAll(async () => {
    const config = loadConfig({
      ENVIRONMENT: 'test', LOG_LEVEL: 'warn', LOG_FORMAT: 'json', DATA_DIR: 'memory://', JWT_SECRET: TEST_JWT_SECRET,
      LOGIN_THROTTLE_FAILURES: '3', LOGIN_THROTTLE_BASE_SECONDS: '60', LOGIN_THROTTLE_MAX_SECONDS: '120',
    });
    db = await createTestDatabase();
    app = await buildApp(config, { logger: createLogger({ ...config.log, destination: new PassThrough().resume() }), database: db.database, jwtSecret: TEST_JWT_SECRET });
    port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    prom = await startPrometheus({ targets: [{ job: JOB, address: `127.0.0.1:${port}` }], ruleFiles: [RULES], port: await freePort() });
  }, 90_000);

  afterAll(async () => {
    await prom?.stop();
    await app?.close();
    await db?.close();
  });

  it('every outcome and event type is exported from the start, and each moves with its event', async () => {
    const before = await prom.waitForQuery(`auth_login_attempts_total{job="${JOB}"}`, (s) => s.length === 4);
    expect(byLabel(before, 'outcome')).toEqual({ success: 0, bad_credentials: 0, locked: 0, throttled: 0 });

    const email = 'signals@example.com';
    const password = 'correct horse battery staple';
    expect((await post('/api/v1/auth/register', { email, password })).status).toBe(201);
    const first = await post('/api/v1/auth/login', { email, password });
    expect(first.status).toBe(200);
    const { access_token, refresh_token } = (await first.json()) as { access_token: string; refresh_token: string };
    // A refresh spends the token; presenting it again is reuse.
    expect((await post('/api/v1/auth/refresh', { refresh_token })).status).toBe(200);
    expect((await post('/api/v1/auth/refresh', { refresh_token })).status).toBe(401);
    // A non-admin at an admin route.
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/monitoring/rate-limits`, { headers: { authorization: `Bearer ${access_token}` } })).status).toBe(403);
    // 2 bad, the 3rd locks, then 2 throttled.
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await post('/api/v1/auth/login', { email, password: `wrong ${i}` })).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);

    const attempts = await prom.waitForQuery(`auth_login_attempts_total{job="${JOB}"}`, (s) => byLabel(s, 'outcome').throttled === 2);
    expect(byLabel(attempts, 'outcome')).toEqual({ success: 1, bad_credentials: 2, locked: 1, throttled: 2 });
    const events = await prom.waitForQuery(`security_events_total{job="${JOB}"}`, (s) => byLabel(s, 'type').login_throttled === 2);
    expect(byLabel(events, 'type')).toEqual({ login_throttled: 2, account_locked: 1, refresh_token_reuse: 1, admin_denied: 1 });

    // The security alerts' expressions run on these series; RefreshTokenReuse (no `for`) fires.
    const reuse = await prom.waitForQuery(`ALERTS{alertname="RefreshTokenReuse", alertstate="firing"}`, (s) => s.length === 1, 30_000);
    expect(reuse[0]!.metric).toMatchObject({ job: JOB, severity: 'warning' });
  }, 90_000);
});
