/**
 * The real `plaid` SDK (PlaidProvider) against a local server with Plaid's API shapes: link
 * token, public-token exchange, /transactions/sync across pages with added/modified/removed,
 * Plaid's error responses (counted as sync failures, recorded on the item, retried or not), and
 * webhook signature verification.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { accounts, plaidItems, transactions, users } from '../../src/db/schema.ts';
import { InlineRunner } from '../../src/jobs/inline-runner.ts';
import { createTasks } from '../../src/jobs/tasks.ts';
import { AuditTrail } from '../../src/modules/audit/trail.ts';
import { BudgetAlertService } from '../../src/modules/budgets/alerts.ts';
import { seedDefaultCategories } from '../../src/modules/categories/defaults.ts';
import { TokenCipher } from '../../src/modules/sync/crypto.ts';
import { PlaidProvider } from '../../src/modules/sync/plaid-provider.ts';
import { ProviderError } from '../../src/modules/sync/provider.ts';
import { SyncService } from '../../src/modules/sync/service.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { createMetrics, type Metrics } from '../../src/observability/metrics.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { FAKE_PLAID_CLIENT_ID, FAKE_PLAID_SECRET, FakePlaid } from '../helpers/fake-plaid.ts';

const GROCERIES = { primary: 'FOOD_AND_DRINK', detailed: 'FOOD_AND_DRINK_GROCERIES' };
const DINING = { primary: 'FOOD_AND_DRINK', detailed: 'FOOD_AND_DRINK_RESTAURANT' };
const PAY = { primary: 'INCOME', detailed: 'INCOME_WAGES' };

describe('Plaid through the official SDK against a local Plaid', () => {
  let fake: FakePlaid;
  let tdb: TestDatabase;
  let metrics: Metrics;
  let provider: PlaidProvider;
  let service: SyncService;
  let userId: string;
  const logger = createLogger({ level: 'silent', format: 'json', destination: new PassThrough() });

  const config = (extra: Record<string, string> = {}) =>
    loadConfig({
      ENVIRONMENT: 'test',
      BANK_SYNC_PROVIDER: 'plaid',
      PLAID_CLIENT_ID: FAKE_PLAID_CLIENT_ID,
      PLAID_SECRET: FAKE_PLAID_SECRET,
      PLAID_BASE_URL: fake.url,
      PLAID_WEBHOOK_URL: 'https://nest-egg.example.com/api/v1/plaid/webhook',
      ...extra,
    }).bankSync.plaid;

  const syncs = async (status: 'success' | 'failure') =>
    (await metrics.plaidSyncs.get()).values.find((v) => v.labels.status === status)?.value ?? 0;
  const celery = async (status: string) =>
    (await metrics.celeryTasks.get()).values.find((v) => v.labels.task_name === 'sync_transactions' && v.labels.status === status)?.value ?? 0;
  const rows = (itemId: string) =>
    tdb.database.db
      .select({ externalId: transactions.externalId, amount: transactions.amount, pending: transactions.pending, description: transactions.description, categoryId: transactions.categoryId })
      .from(transactions)
      .innerJoin(accounts, eq(accounts.id, transactions.accountId))
      .where(eq(accounts.plaidItemId, itemId));

  beforeAll(async () => {
    fake = await FakePlaid.start();
    tdb = await createTestDatabase();
    const [user] = await tdb.database.db.insert(users).values({ email: `plaid-${Date.now()}@example.com`, passwordHash: 'x' }).returning();
    userId = user!.id;
    await seedDefaultCategories(tdb.database.db, userId);
  });
  afterAll(async () => {
    await tdb?.close();
    await fake?.close();
  });
  beforeEach(() => {
    metrics = createMetrics({ version: 'test', environment: 'test', processMetrics: false });
    provider = new PlaidProvider(config({ PLAID_SYNC_PAGE_SIZE: '2' }));
    service = new SyncService(tdb.database.db, {
      provider,
      cipher: new TokenCipher(randomBytes(32)),
      pageSize: 2,
      onSync: (status) => metrics.plaidSyncs.inc({ status }),
    });
  });

  async function link(): Promise<{ id: string; plaidItemId: string }> {
    const { item } = await service.linkItem(userId, fake.createPublicToken());
    return { id: item.id, plaidItemId: item.itemId };
  }

  it('creates a link token with the credentials in headers and the transactions product', async () => {
    const token = await provider.createLinkToken(userId);
    expect(token.linkToken).toMatch(/^link-sandbox-/);
    expect(Date.parse(token.expiration)).toBeGreaterThan(Date.now());
    const req = fake.requests.filter((r) => r.path === '/link/token/create').at(-1)!;
    expect(req.headers['plaid-client-id']).toBe(FAKE_PLAID_CLIENT_ID);
    expect(req.headers['plaid-version']).toBe('2020-09-14');
    expect(req.body).toMatchObject({
      client_name: 'Nest Egg',
      language: 'en',
      country_codes: ['US'],
      products: ['transactions'],
      user: { client_user_id: userId },
      webhook: 'https://nest-egg.example.com/api/v1/plaid/webhook',
    });
  });

  it('exchanges the public token: the item (token encrypted at rest) and its accounts', async () => {
    const publicToken = fake.createPublicToken({ institutionName: 'Tartan Bank' });
    const { item, accounts: created } = await service.linkItem(userId, publicToken);
    expect(item).toMatchObject({ userId, provider: 'plaid', institutionName: 'Tartan Bank', status: 'active', cursor: null });
    expect(item.accessTokenEncrypted).toMatch(/^v1\./);
    expect(item.accessTokenEncrypted).not.toContain('access-sandbox-');
    expect(created.map((a) => [a.type, a.currentBalance, a.source, a.mask]).sort()).toEqual([
      ['checking', '110.00', 'plaid', '0000'],
      ['credit_card', '-410.00', 'plaid', '3333'],
    ]);
    // The same public token cannot be exchanged twice (Plaid answers INVALID_PUBLIC_TOKEN).
    await expect(service.linkItem(userId, publicToken)).rejects.toMatchObject({ code: 'INVALID_PUBLIC_TOKEN', retryable: false });
  });

  it('syncs added, modified and removed transactions across pages, negating amounts, in one pass each', async () => {
    const { id, plaidItemId } = await link();
    const [chk, cc] = fake.accountsOf(plaidItemId);
    const ids = fake.addTransactions(plaidItemId, [
      { account_id: chk!.account_id, amount: 84.7, date: '2025-03-01', name: 'WHOLE FOODS', merchant_name: 'Whole Foods', category: GROCERIES },
      { account_id: chk!.account_id, amount: -2500, date: '2025-03-01', name: 'ACME PAYROLL', category: PAY },
      { account_id: cc!.account_id, amount: 12.34, date: '2025-03-02', name: 'CHIPOTLE', merchant_name: 'Chipotle', category: DINING, pending: true },
      { account_id: cc!.account_id, amount: 0.29, date: '2025-03-02', name: 'TINY', category: DINING },
      { account_id: cc!.account_id, amount: 40, date: '2025-03-03', name: 'HOLD', category: DINING, pending: true },
    ]);
    const first = await service.syncItem(id);
    expect(first).toMatchObject({ added: 5, modified: 0, removed: 0, pages: 3 });
    const byId = new Map((await rows(id)).map((r) => [r.externalId, r]));
    expect(byId.size).toBe(5);
    expect(byId.get(ids[0]!)).toMatchObject({ amount: '-84.70', pending: false, description: 'WHOLE FOODS' });
    expect(byId.get(ids[1]!)!.amount).toBe('2500.00');
    expect(byId.get(ids[3]!)!.amount).toBe('-0.29');
    expect(byId.get(ids[2]!)!.pending).toBe(true);
    expect(byId.get(ids[0]!)!.categoryId).not.toBeNull();

    fake.modifyTransaction(plaidItemId, ids[2]!, { pending: false, amount: 14.5 });
    fake.removeTransaction(plaidItemId, ids[4]!);
    const more = fake.addTransactions(plaidItemId, [
      { account_id: chk!.account_id, amount: 1850, date: '2025-03-04', name: 'RENT' },
      { account_id: cc!.account_id, amount: 9.99, date: '2025-03-04', name: 'SPOTIFY' },
    ]);
    fake.setBalance(plaidItemId, chk!.account_id, 2345.67);
    const second = await service.syncItem(id);
    expect(second).toMatchObject({ added: 2, modified: 1, removed: 1, pages: 2 });
    const after = new Map((await rows(id)).map((r) => [r.externalId, r]));
    expect([...after.keys()].sort()).toEqual([ids[0], ids[1], ids[2], ids[3], ...more].sort());
    expect(after.get(ids[2]!)).toMatchObject({ amount: '-14.50', pending: false });
    const [checking] = await tdb.database.db.select().from(accounts).where(and(eq(accounts.plaidItemId, id), eq(accounts.externalId, chk!.account_id)));
    expect(checking!.currentBalance).toBe('2345.67');

    // Nothing new: one page, no change, nothing duplicated by running again.
    expect(await service.syncItem(id)).toMatchObject({ added: 0, modified: 0, removed: 0, pages: 1 });
    expect(await rows(id)).toHaveLength(6);
    expect(await syncs('success')).toBe(3);
    expect(await syncs('failure')).toBe(0);
  });

  it('restarts from the first cursor when the data changes between pages', async () => {
    const { id, plaidItemId } = await link();
    const [chk] = fake.accountsOf(plaidItemId);
    fake.addTransactions(plaidItemId, [1, 2, 3, 4, 5].map((n) => ({ account_id: chk!.account_id, amount: n, date: '2025-04-01', name: `T${n}` })));
    let calls = 0;
    const mutate = (itemId: string) => {
      if (itemId !== plaidItemId || ++calls !== 2) return;
      fake.addTransactions(plaidItemId, [{ account_id: chk!.account_id, amount: 6, date: '2025-04-02', name: 'T6' }]);
    };
    fake.on('sync', mutate);
    try {
      const result = await service.syncItem(id);
      expect(result.added).toBe(6);
      // Page 2 answered TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION; the sync began again (3 pages of 2).
      expect(calls).toBe(2 + 3);
    } finally {
      fake.off('sync', mutate);
    }
    expect(await rows(id)).toHaveLength(6);
    expect(fake.liveTransactions(plaidItemId)).toHaveLength(6);
  });

  it.each([
    ['ITEM_LOGIN_REQUIRED', 400, 'login_required', false],
    ['RATE_LIMIT_EXCEEDED', 429, 'error', true],
    ['INTERNAL_SERVER_ERROR', 500, 'error', true],
  ] as const)('%s (HTTP %i) is a failed sync recorded on the item (status %s, retryable %s)', async (kind, status, itemStatus, retryable) => {
    const { id, plaidItemId } = await link();
    fake.failNext(plaidItemId, kind);
    const error = await service.syncItem(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderError);
    expect(error).toMatchObject({ httpStatus: status, retryable });
    // The SDK's error carries the request headers; ours must not.
    expect(JSON.stringify(error)).not.toContain(FAKE_PLAID_SECRET);
    const [item] = await tdb.database.db.select().from(plaidItems).where(eq(plaidItems.id, id));
    expect(item!.status).toBe(itemStatus);
    expect(item!.lastError).toMatch(kind === 'RATE_LIMIT_EXCEEDED' ? /^TRANSACTIONS_SYNC_LIMIT: / : new RegExp(`^${kind}: `));
    expect(await syncs('failure')).toBe(1);
    // The next sync succeeds and clears the error.
    await service.syncItem(id);
    const [healed] = await tdb.database.db.select().from(plaidItems).where(eq(plaidItems.id, id));
    expect(healed).toMatchObject({ status: 'active', lastError: null });
    expect(await syncs('success')).toBe(1);
  });

  describe('as a job', () => {
    async function runner() {
      const r: InlineRunner = new InlineRunner(
        createTasks({
          db: tdb.database.db,
          sync: service,
          alerts: new BudgetAlertService(tdb.database.db),
          audit: new AuditTrail(tdb.database.db, { logger }),
          auditRetentionDays: 400,
          enqueue: (task, data, opts) => r.enqueue(task, data, opts),
          logger,
        }),
        { queueName: 'plaid-test', concurrency: 2, attempts: 3, backoffMs: 10, keepCompleted: 100, keepFailed: 100, metrics, logger },
      );
      await r.start();
      return r;
    }

    it('rate limits and 5xx are retried until the sync succeeds: retry, retry, success', async () => {
      const { id, plaidItemId } = await link();
      fake.failNext(plaidItemId, 'RATE_LIMIT_EXCEEDED');
      fake.failNext(plaidItemId, 'INTERNAL_SERVER_ERROR');
      const r = await runner();
      const job = await r.enqueue('sync_transactions', { item_id: id });
      await r.drain();
      expect(r.getJob(job.id)).toMatchObject({ state: 'completed', attemptsMade: 3 });
      expect(await celery('retry')).toBe(2);
      expect(await celery('success')).toBe(1);
      expect(await syncs('failure')).toBe(2);
      expect(await syncs('success')).toBe(1);
      await r.close();
    });

    it('ITEM_LOGIN_REQUIRED fails the job at once: no retry, item marked login_required', async () => {
      const { id, plaidItemId } = await link();
      fake.failNext(plaidItemId, 'ITEM_LOGIN_REQUIRED', 5);
      const before = fake.count('/transactions/sync');
      const r = await runner();
      const job = await r.enqueue('sync_transactions', { item_id: id });
      await r.drain();
      expect(r.getJob(job.id)).toMatchObject({ state: 'failed', attemptsMade: 1 });
      expect(fake.count('/transactions/sync') - before).toBe(1);
      expect(await celery('failure')).toBe(1);
      expect(await celery('retry')).toBe(0);
      const [item] = await tdb.database.db.select().from(plaidItems).where(eq(plaidItems.id, id));
      expect(item!.status).toBe('login_required');
      await r.close();
    });
  });

  describe('webhook verification (Plaid-Verification, ES256)', () => {
    const body = JSON.stringify({ webhook_type: 'TRANSACTIONS', webhook_code: 'SYNC_UPDATES_AVAILABLE', item_id: 'item-x', initial_update_complete: true, historical_update_complete: true, environment: 'sandbox' });

    it('accepts a correctly signed body and fetches the key once', async () => {
      const headers = { 'plaid-verification': await fake.signWebhook(body) };
      const before = fake.count('/webhook_verification_key/get');
      expect(await provider.verifyWebhook(body, headers)).toBe(true);
      expect(await provider.verifyWebhook(body, { 'plaid-verification': await fake.signWebhook(body) })).toBe(true);
      expect(fake.count('/webhook_verification_key/get') - before).toBe(1);
    });

    it('rejects a missing header, a changed body, an old token, an unknown key and another algorithm', async () => {
      expect(await provider.verifyWebhook(body, {})).toBe(false);
      expect(await provider.verifyWebhook(`${body} `, { 'plaid-verification': await fake.signWebhook(body) })).toBe(false);
      const old = Math.floor(Date.now() / 1000) - 6 * 60;
      expect(await provider.verifyWebhook(body, { 'plaid-verification': await fake.signWebhook(body, { iat: old }) })).toBe(false);
      expect(await provider.verifyWebhook(body, { 'plaid-verification': await fake.signWebhook(body, { kid: 'unknown-kid' }) })).toBe(false);
      const hs = `${Buffer.from(JSON.stringify({ alg: 'HS256', kid: fake.keyId, typ: 'JWT' })).toString('base64url')}.e30.sig`;
      expect(await provider.verifyWebhook(body, { 'plaid-verification': hs })).toBe(false);
    });

    it('accepts anything when PLAID_WEBHOOK_VERIFICATION=false', async () => {
      const open = new PlaidProvider(config({ PLAID_WEBHOOK_VERIFICATION: 'false' }));
      expect(await open.verifyWebhook(body, {})).toBe(true);
    });
  });
});
