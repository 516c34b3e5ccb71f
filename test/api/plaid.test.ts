/**
 * /api/v1/plaid and /api/v1/monitoring/jobs in embedded mode (the in-process runner): the demo
 * bank end to end (link, first sync, budgets, alerts), the Plaid provider through the SDK
 * against the local fake (exchange, webhooks with signatures, errors shown on the item), and
 * the admin's view of the queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import type { InlineRunner } from '../../src/jobs/inline-runner.ts';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../helpers/app.ts';
import { scrubText } from '../../src/observability/redact.ts';
import { FAKE_PLAID_CLIENT_ID, FAKE_PLAID_SECRET, FakePlaid } from '../helpers/fake-plaid.ts';

interface Item {
  id: string;
  item_id: string;
  provider: string;
  institution_name: string | null;
  status: string;
  last_error: string | null;
  last_synced_at: string | null;
  account_count?: number;
}

const drain = (app: FastifyInstance) => (app.jobs as InlineRunner).drain();

async function adminToken(t: TestApp): Promise<string> {
  const email = `admin-${Math.random().toString(36).slice(2)}@example.com`;
  await createOrPromoteAdmin(t.db.database.db, email, 'admin password for tests');
  const res = await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'admin password for tests' } });
  return json<{ access_token: string }>(res).access_token;
}

/** A sample's value in the app's exposition (0 when absent). */
async function sample(app: FastifyInstance, series: string): Promise<number> {
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('bank sync with the demo provider (embedded mode)', () => {
  let t: TestApp;
  let user: { token: string; userId: string };

  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'false' });
    user = await registerAndLogin(t.app);
  });
  afterAll(async () => t?.close());

  it('needs a user', async () => {
    for (const url of ['/api/v1/plaid/link-token', '/api/v1/plaid/exchange-token']) {
      expect((await t.app.inject({ method: 'POST', url, payload: { public_token: 'public-demo-x' } })).statusCode).toBe(401);
    }
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/plaid/items' })).statusCode).toBe(401);
  });

  it('links a demo bank: accounts, 90 days of transactions after the first sync, budgets and their check', async () => {
    const link = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/link-token', headers: bearer(user.token) });
    expect(link.statusCode).toBe(200);
    expect(json(link)).toMatchObject({ provider: 'demo', link_token: expect.stringMatching(/^link-demo-/) });

    const res = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: bearer(user.token), payload: { public_token: 'public-demo-alice' } });
    expect(res.statusCode).toBe(201);
    const body = json<{ item: Item; accounts: { type: string; source: string; current_balance: string }[]; sync_job_id: string }>(res);
    expect(body.item).toMatchObject({ provider: 'demo', institution_name: 'Demo Bank', status: 'active', last_synced_at: null, account_count: 3 });
    expect(body.accounts.map((a) => a.type).sort()).toEqual(['checking', 'credit_card', 'savings']);
    expect(body.accounts.every((a) => a.source === 'plaid')).toBe(true);
    expect(body.accounts.find((a) => a.type === 'credit_card')!.current_balance).toMatch(/^-\d+\.\d{2}$/);

    await drain(t.app);
    const items = json<{ items: Item[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/plaid/items', headers: bearer(user.token) })).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id: body.item.id, status: 'active', last_error: null, account_count: 3 });
    expect(Date.parse(items[0]!.last_synced_at!)).toBeGreaterThan(Date.now() - 60_000);

    const txs = json<{ items: { amount: string; merchant_name: string | null; category_id: string | null }[]; next_cursor: string | null }>(
      await t.app.inject({ method: 'GET', url: '/api/v1/transactions?limit=100', headers: bearer(user.token) }),
    );
    expect(txs.items.length).toBeGreaterThan(50);
    const rent = txs.items.filter((x) => x.merchant_name === 'Rent');
    expect(rent.length).toBeGreaterThan(0);
    for (const r of rent) expect(r.amount).toBe('-1850.00');
    const payroll = txs.items.filter((x) => x.merchant_name === 'Acme Corp Payroll');
    expect(payroll.length).toBeGreaterThan(0);
    for (const p of payroll) expect(p.amount).toBe('3250.00');
    expect(txs.items.filter((x) => x.category_id !== null).length).toBe(txs.items.length);

    const budgets = json<{ items: { name: string }[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/budgets', headers: bearer(user.token) })).items;
    expect(budgets.map((b) => b.name).sort()).toEqual(['Dining out', 'Groceries', 'Shopping']);
    // The sync queued a budget check for this user; every alert it made is counted.
    expect(await sample(t.app, 'celery_tasks_total{task_name="check_budget_alerts",status="success"}')).toBe(1);
    const notes = json<{ items: { type: string }[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/notifications', headers: bearer(user.token) })).items;
    const alerts = ['low', 'medium', 'high'].map((p) => sample(t.app, `budget_alerts_total{priority="${p}"}`));
    expect(notes.filter((n) => n.type === 'budget_alert').length).toBe((await Promise.all(alerts)).reduce((a, b) => a + b, 0));
    expect(await sample(t.app, 'celery_tasks_total{task_name="sync_transactions",status="success"}')).toBe(1);
    expect(await sample(t.app, 'plaid_syncs_total{status="success"}')).toBe(1);

    const again = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: bearer(user.token), payload: { public_token: 'public-demo-alice' } });
    expect(again.statusCode).toBe(409);
  });

  it('queues a sync (202); replaying syncs never duplicates a transaction', async () => {
    const [item] = json<{ items: Item[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/plaid/items', headers: bearer(user.token) })).items;
    const count = async () => json<{ items: unknown[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/transactions?limit=100', headers: bearer(user.token) })).items.length;
    const before = await count();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.app.inject({ method: 'POST', url: `/api/v1/plaid/sync/${item!.id}`, headers: bearer(user.token) });
      expect(res.statusCode).toBe(202);
      const b = json<{ job_id: string; item_id: string; status: string }>(res);
      expect(b).toMatchObject({ item_id: item!.id, status: 'queued' });
      ids.push(b.job_id);
    }
    await drain(t.app);
    expect(await count()).toBe(before);
    const succeeded = await sample(t.app, 'celery_tasks_total{task_name="sync_transactions",status="success"}');
    expect(succeeded).toBeGreaterThanOrEqual(2);
    expect(succeeded).toBeLessThanOrEqual(4);
  });

  it("answers 404 for another user's item and 422 for a malformed id", async () => {
    const [item] = json<{ items: Item[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/plaid/items', headers: bearer(user.token) })).items;
    const other = await registerAndLogin(t.app);
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/plaid/sync/${item!.id}`, headers: bearer(other.token) })).statusCode).toBe(404);
    expect(json<{ items: Item[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/plaid/items', headers: bearer(other.token) })).items).toEqual([]);
    const bad = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/sync/not-a-uuid', headers: bearer(user.token) });
    expect(bad.statusCode).toBe(422);
    const empty = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: bearer(user.token), payload: { public_token: '' } });
    expect(empty.statusCode).toBe(422);
  });

  it('refuses webhooks: the demo bank sends none', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/webhook', payload: { webhook_type: 'TRANSACTIONS', webhook_code: 'SYNC_UPDATES_AVAILABLE', item_id: 'x' } });
    expect(res.statusCode).toBe(401);
  });

  it('GET /api/v1/monitoring/jobs is for platform admins: counts, schedules, recent failures', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/jobs' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/jobs', headers: bearer(user.token) })).statusCode).toBe(403);
    const admin = await adminToken(t);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/jobs', headers: bearer(admin) });
    expect(res.statusCode).toBe(200);
    const body = json<{ backend: string; counts: Record<string, number>; workers: number; schedules: { id: string; task: string; every: string; next_run_at: string }[]; recent_failures: unknown[] }>(res);
    expect(body).toMatchObject({ backend: 'inline', queue: 'nest-egg', workers: 1, recent_failures: [] });
    expect(body.counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, failed: 0 });
    expect(body.counts.completed).toBeGreaterThanOrEqual(4);
    expect(body.schedules.map((s) => [s.id, s.task, s.every]).sort()).toEqual([
      ['daily-audit-retention', 'purge_audit_events', 'daily 04:00 UTC'],
      ['daily-budget-alerts', 'check_budget_alerts', 'daily 06:00 UTC'],
      ['daily-refresh-token-cleanup', 'cleanup_expired_refresh_tokens', 'daily 03:30 UTC'],
    ]);
    for (const s of body.schedules) expect(Date.parse(s.next_run_at)).toBeGreaterThan(Date.now());

    const stats = json<{ queue: { backend: string; counts: Record<string, number> } | null }>(
      await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/system-stats', headers: bearer(admin) }),
    );
    expect(stats.queue).toMatchObject({ backend: 'inline', counts: { completed: body.counts.completed } });
    expect(await sample(t.app, 'nest_egg_job_queue_jobs{state="completed"}')).toBe(body.counts.completed);
  });
});

describe('bank sync with Plaid (the SDK against a local Plaid)', () => {
  let fake: FakePlaid;
  let t: TestApp;
  let user: { token: string; userId: string };
  let item: Item;

  const webhook = async (payload: Record<string, unknown>, sign: 'valid' | 'tampered' | 'none' = 'valid') => {
    const raw = JSON.stringify(payload);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (sign !== 'none') headers['plaid-verification'] = await fake.signWebhook(sign === 'valid' ? raw : `${raw}x`);
    return t.app.inject({ method: 'POST', url: '/api/v1/plaid/webhook', headers, payload: raw });
  };
  const items = async () => json<{ items: Item[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/plaid/items', headers: bearer(user.token) })).items;

  beforeAll(async () => {
    fake = await FakePlaid.start([18600, 18649]);
    t = await createTestApp({
      RATE_LIMIT_ENABLED: 'false',
      PLAID_CLIENT_ID: FAKE_PLAID_CLIENT_ID,
      PLAID_SECRET: FAKE_PLAID_SECRET,
      PLAID_BASE_URL: fake.url,
      JOB_BACKOFF_MS: '10',
    });
    user = await registerAndLogin(t.app);
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
  });

  it('exchanges a public token through Plaid and stores the item and accounts', async () => {
    const link = json(await t.app.inject({ method: 'POST', url: '/api/v1/plaid/link-token', headers: bearer(user.token) }));
    expect(link).toMatchObject({ provider: 'plaid', link_token: expect.stringMatching(/^link-sandbox-/) });
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: bearer(user.token), payload: { public_token: fake.createPublicToken() } });
    expect(res.statusCode).toBe(201);
    item = json<{ item: Item }>(res).item;
    expect(item).toMatchObject({ provider: 'plaid', institution_name: 'First Platypus Bank', account_count: 2 });
    await drain(t.app);
    expect((await items())[0]!.last_synced_at).not.toBeNull();
    const bad = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/exchange-token', headers: bearer(user.token), payload: { public_token: 'public-sandbox-unknown' } });
    expect(bad.statusCode).toBe(422);
    expect(json<{ detail: string }>(bad).detail).toContain('INVALID_PUBLIC_TOKEN');
  });

  it('a signed SYNC_UPDATES_AVAILABLE webhook queues a sync that imports the new transactions', async () => {
    const [chk] = fake.accountsOf(item.item_id);
    fake.addTransactions(item.item_id, [{ account_id: chk!.account_id, amount: 42.5, date: '2025-05-01', name: 'HARDWARE STORE', merchant_name: 'Hardware Store' }]);
    const res = await webhook({ webhook_type: 'TRANSACTIONS', webhook_code: 'SYNC_UPDATES_AVAILABLE', item_id: item.item_id, initial_update_complete: true, historical_update_complete: true, environment: 'sandbox' });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({ received: true, action: 'sync_enqueued', job_id: expect.any(String) });
    await drain(t.app);
    const txs = json<{ items: { amount: string; merchant_name: string }[] }>(await t.app.inject({ method: 'GET', url: '/api/v1/transactions', headers: bearer(user.token) })).items;
    expect(txs).toEqual([expect.objectContaining({ amount: '-42.50', merchant_name: 'Hardware Store' })]);
  });

  it('rejects unsigned and tampered webhooks (401), ignores unknown items, answers 400 to bad JSON', async () => {
    const payload = { webhook_type: 'TRANSACTIONS', webhook_code: 'SYNC_UPDATES_AVAILABLE', item_id: item.item_id };
    expect((await webhook(payload, 'none')).statusCode).toBe(401);
    expect((await webhook(payload, 'tampered')).statusCode).toBe(401);
    const unknown = await webhook({ ...payload, item_id: 'item-nobody-has' });
    expect(unknown.statusCode).toBe(200);
    expect(json(unknown)).toMatchObject({ action: 'ignored' });
    const broken = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/webhook', headers: { 'content-type': 'application/json' }, payload: '{"webhook_type":' });
    expect(broken.statusCode).toBe(400);
    const invalid = await webhook({ webhook_code: 'X' });
    expect(invalid.statusCode).toBe(422);
    await drain(t.app);
  });

  it('ITEM_LOGIN_REQUIRED during a sync shows on the item; an ITEM ERROR webhook is recorded too', async () => {
    fake.failNext(item.item_id, 'ITEM_LOGIN_REQUIRED');
    const res = await t.app.inject({ method: 'POST', url: `/api/v1/plaid/sync/${item.id}`, headers: bearer(user.token) });
    expect(res.statusCode).toBe(202);
    await drain(t.app);
    const [failed] = await items();
    expect(failed).toMatchObject({ status: 'login_required', last_error: expect.stringMatching(/^ITEM_LOGIN_REQUIRED: The login details/) });
    expect(await sample(t.app, 'plaid_syncs_total{status="failure"}')).toBe(1);
    expect(await sample(t.app, 'celery_tasks_total{task_name="sync_transactions",status="failure"}')).toBe(1);

    // A retryable error is retried by the runner: 500 then success.
    fake.failNext(item.item_id, 'INTERNAL_SERVER_ERROR');
    await t.app.inject({ method: 'POST', url: `/api/v1/plaid/sync/${item.id}`, headers: bearer(user.token) });
    await drain(t.app);
    expect((await items())[0]).toMatchObject({ status: 'active', last_error: null });
    expect(await sample(t.app, 'celery_tasks_total{task_name="sync_transactions",status="retry"}')).toBe(1);

    const hook = await webhook({
      webhook_type: 'ITEM',
      webhook_code: 'ERROR',
      item_id: item.item_id,
      error: { error_type: 'ITEM_ERROR', error_code: 'ITEM_LOGIN_REQUIRED', error_message: 'the login details of this item have changed', display_message: null, status: 400 },
      environment: 'sandbox',
    });
    expect(json(hook)).toMatchObject({ action: 'item_error_recorded' });
    expect((await items())[0]).toMatchObject({ status: 'login_required', last_error: 'ITEM_LOGIN_REQUIRED: the login details of this item have changed' });
  });
});

describe('bank sync switched off', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'false', BANK_SYNC_PROVIDER: 'none' });
  });
  afterAll(async () => t?.close());

  it('answers 503 with a problem, never 500', async () => {
    const user = await registerAndLogin(t.app);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/plaid/link-token', headers: bearer(user.token) });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });
});

/** A character the logs must never carry raw: C0, DEL, C1, U+2028/9, a lone surrogate. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

for (const format of ['json', 'text'] as const) {
  describe(`log injection through the unauthenticated Plaid webhook (LOG_FORMAT=${format})`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp({ LOG_FORMAT: format, RATE_LIMIT_ENABLED: 'false' });
    });
    afterAll(async () => t?.close());

    const send = (id: string, webhook_type: string, webhook_code: string) =>
      t.app.inject({ method: 'POST', url: '/api/v1/plaid/webhook', headers: { 'x-request-id': id }, payload: { webhook_type, webhook_code, item_id: 'x' } });
    const linesOf = (id: string) => t.logs().filter((l) => l.includes(id));

    it('control characters in webhook_type/webhook_code stay escaped: one line per event, none raw', async () => {
      const type = 'TRANSACTIONS\n2024-02-17 10:30:15 api.auth INFO user_login user_id=1\r\u2028\u2029';
      const code = 'X\u0000\u0007\b\u001b[2J\u001b]0;owned\u0007\u007f\u0085\u009b31m\ud800';
      const id = `inject-${format}`;
      const res = await send(id, type, code);
      expect(res.statusCode).toBe(401);
      const lines = linesOf(id);
      // the rejection and the request's completion line, nothing split off
      expect(lines).toHaveLength(2);
      for (const line of t.logs()) expect(line, line).not.toMatch(RAW_CONTROL);
      const rejected = lines.filter((l) => l.includes('plaid_webhook_rejected'));
      expect(rejected).toHaveLength(1);
      if (format === 'json') {
        expect(JSON.parse(rejected[0]!)).toMatchObject({ event: 'plaid_webhook_rejected', level: 'warn', webhook_type: scrubText(type), webhook_code: scrubText(code) });
      } else {
        expect(rejected[0]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+ WARN plaid_webhook_rejected /);
        expect(rejected[0]).toContain(`webhook_type=${JSON.stringify(scrubText(type)).replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')}`);
        expect(rejected[0]).toContain('webhook_code="X\\u0000\\u0007\\b\\u001b[2J\\u001b]0;owned\\u0007\\u007f\\u0085\\u009b31m\\ud800"');
        // no forged line: the injected "user_login" is inside the quoted value, not at a line start
        expect(t.logs().filter((l) => / INFO user_login /.test(l.slice(0, 60)))).toEqual([]);
      }
    });

    it('random strings (all C0/C1 controls, separators, lone surrogates) in both fields: every event one clean line', async () => {
      let seed = format === 'json' ? 101 : 202;
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      const special = [
        ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), '\u007f',
        ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(0x80 + i)), '\u2028', '\u2029', '\ud800', '\udfff', '"', '\\', '=', ' ',
      ];
      const randomString = () => {
        let s = '';
        for (let n = 1 + random(40); n > 0; n--) s += random(2) ? special[random(special.length)] : String.fromCharCode(random(3) ? 0x20 + random(95) : random(0x10000));
        return s;
      };
      for (let i = 0; i < 200; i++) {
        const id = `random-${format}-${i}`;
        const [type, code] = [randomString(), randomString()];
        expect((await send(id, type, code)).statusCode).toBe(401);
        const lines = linesOf(id);
        expect(lines, `${JSON.stringify(type)} ${JSON.stringify(code)}`).toHaveLength(2);
        for (const line of lines) {
          expect(line, line).not.toMatch(RAW_CONTROL);
          if (format === 'json') JSON.parse(line);
        }
        if (format === 'json') {
          const rec = JSON.parse(lines.find((l) => l.includes('plaid_webhook_rejected'))!) as Record<string, unknown>;
          expect([rec.webhook_type, rec.webhook_code]).toEqual([scrubText(type), scrubText(code)]);
        }
      }
    });
  });
}
