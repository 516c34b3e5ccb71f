/**
 * Replicas that agree on their secrets (issue 15): in server mode (DATABASE_URL) outside production,
 * three API replicas and a worker on one Postgres and Redis started without JWT_SECRET and
 * TOKEN_ENCRYPTION_KEY all refuse to start, each with the one clear line naming the variables; given
 * the shared secrets, a token from one replica works on the others and a demo bank linked on one
 * replica syncs on the worker. A sync job that cannot open its bank token fails at once and the
 * item says why.
 */
import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plaidItems } from '../../src/db/schema.ts';
import { TokenCipher } from '../../src/modules/sync/crypto.ts';
import { startReplicaBackends, type ReplicaBackends } from '../helpers/replicas.ts';
import { CHILD_JWT_SECRET, CHILD_TOKEN_KEY, freePort, request, runCli, sleep, spawnCli, startServer, type CliProcess, type ServerProcess } from '../helpers/server.ts';
import { servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('replicas sharing secrets', 'postgres', 'redis');

const MISSING_BOTH =
  'Invalid configuration: JWT_SECRET and TOKEN_ENCRYPTION_KEY are required with DATABASE_URL (every API replica and worker must share them; make each with `openssl rand -base64 32`)';

describe.skipIf(!ok)('replicas on one Postgres and Redis', () => {
  let backends: ReplicaBackends;
  const servers: ServerProcess[] = [];
  let worker: CliProcess | undefined;

  const serverMode = () => ({
    ...backends.env(),
    ENVIRONMENT: 'development',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    BANK_SYNC_PROVIDER: 'demo',
  });

  beforeAll(async () => {
    backends = await startReplicaBackends('secrets');
  });

  afterAll(async () => {
    await worker?.stop(10_000).catch(() => undefined);
    for (const s of servers) await s.stop().catch(() => undefined);
    await backends?.close();
  }, 60_000);

  it('without the secrets none starts: three API replicas and a worker each exit 2 with one clear line', async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const runs = await Promise.all([
      ...ports.slice(0, 3).map((port) => runCli(['serve'], { ...serverMode(), PORT: String(port) })),
      runCli(['worker'], { ...serverMode(), WORKER_PORT: String(ports[3]) }),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr.trim()).toBe(MISSING_BOTH);
    }
    // One secret given: the line names only the other.
    const half = await runCli(['serve'], { ...serverMode(), PORT: String(ports[0]), JWT_SECRET: CHILD_JWT_SECRET });
    expect(half.code).toBe(2);
    expect(half.stderr.trim()).toMatch(/^Invalid configuration: TOKEN_ENCRYPTION_KEY is required with DATABASE_URL /);
  }, 120_000);

  it('with the shared secrets a token from one replica works on the others and a demo bank linked on one syncs on the worker', async () => {
    const shared = { ...serverMode(), JWT_SECRET: CHILD_JWT_SECRET, TOKEN_ENCRYPTION_KEY: CHILD_TOKEN_KEY };
    servers.push(...(await Promise.all([0, 1, 2].map(() => startServer({ env: shared })))));
    worker = spawnCli(['worker'], { ...shared, WORKER_PORT: String(await freePort()) });
    await worker.waitForLog('worker_started', 60_000);
    const [a, b, c] = servers as [ServerProcess, ServerProcess, ServerProcess];
    const json = { 'content-type': 'application/json' };

    const email = `replica-${randomBytes(4).toString('hex')}@example.com`;
    const password = 'correct horse battery staple';
    expect((await request(`${a.url}/api/v1/auth/register`, { method: 'POST', headers: json, body: JSON.stringify({ email, password }) })).status).toBe(201);
    const login = await request(`${a.url}/api/v1/auth/login`, { method: 'POST', headers: json, body: JSON.stringify({ email, password }) });
    const token = (JSON.parse(login.body) as { access_token: string }).access_token;
    const auth = { authorization: `Bearer ${token}` };
    for (const s of [b, c]) {
      const me = await request(`${s.url}/api/v1/auth/me`, { headers: auth });
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toMatchObject({ email });
    }

    const linked = await request(`${b.url}/api/v1/plaid/exchange-token`, {
      method: 'POST',
      headers: { ...json, ...auth },
      body: JSON.stringify({ public_token: 'public-demo-replicas' }),
    });
    expect(linked.status, linked.body).toBe(201);
    let items: { status: string; last_synced_at: string | null; last_error: string | null }[] = [];
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(250)) {
      items = (JSON.parse((await request(`${c.url}/api/v1/plaid/items`, { headers: auth })).body) as { items: typeof items }).items;
      if (items[0]?.last_synced_at) break;
    }
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ status: 'active', last_error: null });
    expect(items[0]!.last_synced_at).not.toBeNull();
    expect(await worker.waitForLog('task_succeeded', 10_000, (l) => l.task_name === 'sync_transactions')).toBeDefined();
    const accounts = JSON.parse((await request(`${a.url}/api/v1/accounts`, { headers: auth })).body) as { items: unknown[] };
    expect(accounts.items.length).toBeGreaterThan(0);

    // A token sealed with another key: the worker's job fails at once (no retry), says why, and the item shows it.
    const [item] = await backends.database.db.select().from(plaidItems);
    const foreign = new TokenCipher(randomBytes(32)).encrypt('access-demo-foreign', item!.itemId);
    await backends.database.db.update(plaidItems).set({ accessTokenEncrypted: foreign }).where(eq(plaidItems.id, item!.id));
    const sync = await request(`${a.url}/api/v1/plaid/sync/${item!.id}`, { method: 'POST', headers: auth });
    expect(sync.status, sync.body).toBe(202);
    let failed: { status: string; last_error: string | null } | undefined;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(250)) {
      failed = (JSON.parse((await request(`${b.url}/api/v1/plaid/items`, { headers: auth })).body) as { items: (typeof failed)[] }).items[0];
      if (failed?.status === 'error') break;
    }
    expect(failed).toMatchObject({ status: 'error' });
    expect(failed!.last_error).toMatch(/^TOKEN_UNREADABLE: /);
    // The item's status is in Postgres before the worker's buffered log lines reach the pipe: wait for them.
    expect(await worker.waitForLog('bank_sync_failed', 10_000, (l) => l.error_code === 'TOKEN_UNREADABLE')).toMatchObject({ retryable: false });
    expect(await worker.waitForLog('task_failed', 10_000, (l) => l.task_name === 'sync_transactions')).toBeDefined();
    expect(worker.logs().filter((l) => l.event === 'task_retry' && l.task_name === 'sync_transactions')).toHaveLength(0);
  }, 180_000);
});
