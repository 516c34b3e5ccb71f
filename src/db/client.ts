/**
 * The database: PGlite (embedded, on disk under DATA_DIR) or a node-postgres pool (DATABASE_URL).
 * One schema, one set of migrations, one query API (drizzle over Postgres) in both modes.
 * Every query is timed through `onQuery`, wired to metrics at the edge.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type DbOperation = 'select' | 'insert' | 'update' | 'delete' | 'other';
export type QueryObserver = (operation: DbOperation, seconds: number, failed: boolean) => void;

export interface DatabaseOptions {
  url?: string;
  /** A directory, or `memory://` for a throwaway in-memory database (tests). */
  dataDir: string;
  poolSize: number;
  /** PGlite only: start from a dumped data directory (tests start from a migrated template). */
  loadDataDir?: Blob;
  onQuery?: QueryObserver;
  onPoolError?: (err: Error) => void;
}

export interface Database {
  db: Db;
  mode: 'pglite' | 'postgres';
  /** Round trip to the database; throws when it does not answer. */
  ping(): Promise<void>;
  pool(): { size: number; available: number };
  serverVersion(): Promise<string>;
  migrate(): Promise<void>;
  /** PGlite only: the data directory as a tarball. */
  dump?(): Promise<Blob>;
  close(): Promise<void>;
}

const MIGRATIONS = fileURLToPath(new URL('./migrations', import.meta.url));
const MIGRATION_LOCK_ID = 727_041_001;

export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

export function queryOperation(sqlText: string): DbOperation {
  const m = /^\s*\(?\s*([a-zA-Z]+)/.exec(sqlText);
  const word = m?.[1]?.toLowerCase();
  return word === 'select' || word === 'insert' || word === 'update' || word === 'delete' ? word : 'other';
}

/** Wraps an async query function so each call is timed and counted as in flight. */
function timed<F extends (sqlText: string, ...rest: never[]) => Promise<unknown>>(
  fn: F,
  observe: QueryObserver | undefined,
  inflight: { n: number },
): F {
  return (async (sqlText: string, ...rest: never[]) => {
    const start = performance.now();
    inflight.n++;
    let failed = false;
    try {
      return await fn(sqlText, ...rest);
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      inflight.n--;
      observe?.(queryOperation(sqlText), (performance.now() - start) / 1000, failed);
    }
  }) as F;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.url ? openPostgres(opts, opts.url) : openPglite(opts);
}

/** PGlite serves one process: a lock file in DATA_DIR keeps a second process out. */
function lockDataDir(dir: string): () => void {
  const lockPath = join(dir, 'nest-egg.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lockPath, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new DataDirInUseError(
          `DATA_DIR ${dir} is in use by process ${holder}: the embedded database serves one process. ` +
            'Stop that process, choose another DATA_DIR, or set DATABASE_URL to share a Postgres server.',
        );
      }
      rmSync(lockPath, { force: true }); // stale lock from a process that died
    }
  }
  throw new DataDirInUseError(`could not lock DATA_DIR ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function openPglite(opts: DatabaseOptions): Promise<Database> {
  const inMemory = opts.dataDir === 'memory://';
  let unlock = () => {};
  let client: PGlite;
  if (inMemory) {
    client = new PGlite(opts.loadDataDir ? { loadDataDir: opts.loadDataDir } : {});
  } else {
    const dir = resolve(opts.dataDir);
    mkdirSync(dir, { recursive: true });
    unlock = lockDataDir(dir);
    try {
      client = new PGlite(join(dir, 'pglite'));
    } catch (err) {
      unlock();
      throw err;
    }
  }
  await client.waitReady;
  const inflight = { n: 0 };
  client.query = timed(client.query.bind(client), opts.onQuery, inflight) as typeof client.query;
  client.exec = timed(client.exec.bind(client), opts.onQuery, inflight) as typeof client.exec;
  const transaction = client.transaction.bind(client);
  client.transaction = (<T>(cb: (tx: Transaction) => Promise<T>) =>
    transaction((tx) => {
      tx.query = timed(tx.query.bind(tx), opts.onQuery, inflight) as typeof tx.query;
      return cb(tx);
    })) as typeof client.transaction;
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  let closed = false;
  return {
    db,
    mode: 'pglite',
    async ping() {
      if (closed) throw new Error('database is closed');
      await client.query('select 1');
    },
    pool: () => ({ size: 1, available: inflight.n > 0 ? 0 : 1 }),
    async serverVersion() {
      const r = await client.query<{ v: string }>('select version() as v');
      return r.rows[0]?.v ?? 'unknown';
    },
    async migrate() {
      await migratePglite(db as never, { migrationsFolder: MIGRATIONS });
    },
    async dump() {
      return (await client.dumpDataDir('none')) as Blob;
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

async function openPostgres(opts: DatabaseOptions, url: string): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize,
    connectionTimeoutMillis: 2_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  // An idle client whose server went away must not crash the process.
  pool.on('error', (err) => opts.onPoolError?.(err));
  const inflight = { n: 0 };
  const wrapped = new WeakSet<pg.PoolClient>();
  pool.on('connect', (c) => {
    if (wrapped.has(c)) return;
    wrapped.add(c);
    const query = c.query.bind(c) as (text: unknown, ...rest: unknown[]) => Promise<unknown>;
    c.query = ((text: unknown, ...rest: unknown[]) => {
      const sqlText = typeof text === 'string' ? text : ((text as { text?: string })?.text ?? '');
      return timed((_s: string) => query(text, ...rest), opts.onQuery, inflight)(sqlText);
    }) as typeof c.query;
  });
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  return {
    db,
    mode: 'postgres',
    async ping() {
      await pool.query('select 1');
    },
    pool: () => {
      const busy = pool.totalCount - pool.idleCount;
      return { size: opts.poolSize, available: Math.max(0, opts.poolSize - busy) };
    },
    async serverVersion() {
      const r = await pool.query<{ v: string }>('show server_version');
      return r.rows[0]?.v ?? 'unknown';
    },
    async migrate() {
      // Replicas start together: one applies the migrations, the others wait on the lock.
      const client = await pool.connect();
      try {
        await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
        try {
          await migratePg(drizzlePg(client, { schema }), { migrationsFolder: MIGRATIONS });
        } finally {
          await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]);
        }
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}
