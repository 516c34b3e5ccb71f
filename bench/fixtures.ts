/**
 * The data a mode's servers serve: a user with BENCH_TRANSACTIONS transactions (bulk-inserted
 * with generate_series), a few other users' rows in the same table so the user filter matters,
 * the query plan of the list endpoint (EXPLAIN ANALYZE), and access tokens minted with the
 * servers' JWT secret (no login round trips, no password hashing in the measured path).
 *
 * Embedded: a PGlite data directory seeded here, then copied, one copy per server (PGlite serves
 * one process). Server: a database of its own on the Postgres server, dropped at the end.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../src/db/client.ts';
import { TokenService } from '../src/modules/auth/tokens.ts';
import { listTransactionsQuery } from '../src/modules/transactions/schemas.ts';
import { TransactionService } from '../src/modules/transactions/service.ts';
import { createPostgresDatabase } from '../test/helpers/db.ts';
import type { BenchSettings } from './settings.ts';

export const BENCH_JWT_SECRET = `bench-${randomBytes(24).toString('hex')}`;

export interface QueryPlan {
  /** Plan nodes, outermost first, e.g. `Limit → Index Scan using transactions_user_date_idx`. */
  nodes: string;
  usesIndex: boolean;
  executionMs: number;
}

export interface Fixture {
  mode: 'embedded' | 'server';
  userId: string;
  /** A valid access token of the user with the transactions. */
  token: string;
  plan: QueryPlan;
  /** The database part of a server's environment (each server gets its own PGlite copy). */
  databaseEnv(server: string): Record<string, string>;
  cleanup(): Promise<void>;
}

const rowsOf = (result: unknown): Record<string, unknown>[] =>
  Array.isArray(result) ? (result as Record<string, unknown>[]) : ((result as { rows: Record<string, unknown>[] }).rows ?? []);

/** Inserts a user and an account; returns their ids. */
async function insertUser(database: Database, label: string): Promise<{ userId: string; accountId: string }> {
  const users = rowsOf(
    await database.db.execute(sql`insert into users (email, password_hash, full_name) values (${`${label}@bench.example`}, 'not-a-password-hash', ${label}) returning id`),
  );
  const userId = String(users[0]!.id);
  const accounts = rowsOf(
    await database.db.execute(sql`insert into accounts (user_id, name, type, current_balance) values (${userId}, 'Checking', 'checking', 0) returning id`),
  );
  return { userId, accountId: String(accounts[0]!.id) };
}

/** `count` transactions over three years, amounts from -150.00 to 49.99, 400 merchants. */
async function insertTransactions(database: Database, userId: string, accountId: string, count: number): Promise<void> {
  await database.db.execute(sql`
    insert into transactions (user_id, account_id, date, amount, merchant_name, pending)
    select ${userId}::uuid, ${accountId}::uuid, date '2025-12-31' - (g % 1095), ((g * 7919) % 20000 - 15000) / 100.0, 'Merchant ' || (g % 400), false
    from generate_series(1, ${count}) as g`);
}

function planNodes(plan: Record<string, unknown>, out: string[] = []): string[] {
  const index = plan['Index Name'];
  out.push(index ? `${String(plan['Node Type'])} using ${String(index)}` : String(plan['Node Type']));
  for (const child of (plan.Plans as Record<string, unknown>[] | undefined) ?? []) planNodes(child, out);
  return out;
}

/** EXPLAIN ANALYZE of the first page of GET /api/v1/transactions?limit=50, as the service builds it. */
export async function explainList(database: Database, userId: string): Promise<QueryPlan> {
  const query = new TransactionService(database.db).listQuery(userId, listTransactionsQuery.parse({ limit: '50' }));
  const [row] = rowsOf(await database.db.execute(sql`explain (analyze, format json) ${query}`));
  const raw = row!['QUERY PLAN'];
  const [doc] = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: Record<string, unknown>; 'Execution Time': number }[];
  const nodes = planNodes(doc!.Plan);
  return {
    nodes: nodes.join(' → '),
    usesIndex: nodes.some((n) => n.includes(' using ')) && !nodes.some((n) => n === 'Seq Scan' || n === 'Sort'),
    executionMs: doc!['Execution Time'],
  };
}

async function seed(database: Database, settings: BenchSettings): Promise<{ userId: string; plan: QueryPlan }> {
  await database.migrate();
  const { userId, accountId } = await insertUser(database, 'bench-user');
  await insertTransactions(database, userId, accountId, settings.transactions);
  for (let i = 0; i < settings.otherUsers; i++) {
    const other = await insertUser(database, `bench-other-${i}`);
    await insertTransactions(database, other.userId, other.accountId, settings.otherTransactions);
  }
  await database.db.execute(sql`analyze`);
  return { userId, plan: await explainList(database, userId) };
}

export function tokenService(): TokenService {
  return new TokenService(BENCH_JWT_SECRET, 3_600);
}

/** Tokens of users that have no rows: distinct rate-limit clients for the memory soak. */
export async function strangerTokens(count: number): Promise<string[]> {
  const tokens = tokenService();
  return Promise.all(Array.from({ length: count }, () => tokens.issueAccess(randomUUID())));
}

export async function embeddedFixture(settings: BenchSettings, dir: string): Promise<Fixture> {
  const seeded = join(dir, 'pglite-seeded');
  const database = await openDatabase({ dataDir: seeded, poolSize: 1 });
  let result;
  try {
    result = await seed(database, settings);
  } finally {
    await database.close();
  }
  const copies: string[] = [];
  return {
    mode: 'embedded',
    userId: result.userId,
    token: await tokenService().issueAccess(result.userId),
    plan: result.plan,
    databaseEnv(server) {
      const copy = join(dir, `pglite-${server}`);
      cpSync(seeded, copy, { recursive: true });
      copies.push(copy);
      return { DATA_DIR: copy };
    },
    async cleanup() {
      for (const d of [seeded, ...copies]) rmSync(d, { recursive: true, force: true });
    },
  };
}

export async function postgresFixture(settings: BenchSettings): Promise<Fixture> {
  const { url, drop } = await createPostgresDatabase(settings.postgresUrl);
  let result;
  try {
    const database = await openDatabase({ url, dataDir: 'memory://', poolSize: 2 });
    try {
      result = await seed(database, settings);
    } finally {
      await database.close();
    }
  } catch (err) {
    await drop();
    throw err;
  }
  return {
    mode: 'server',
    userId: result.userId,
    token: await tokenService().issueAccess(result.userId),
    plan: result.plan,
    databaseEnv: () => ({ DATABASE_URL: url }),
    cleanup: drop,
  };
}
