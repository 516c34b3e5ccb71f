/**
 * The database: PGlite (embedded, on disk under DATA_DIR) or a node-postgres pool (DATABASE_URL).
 * One schema, one set of migrations, one query API (drizzle over Postgres) in both modes.
 * Every query is timed through `onQuery`, wired to metrics at the edge.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
/** Starts a query's span (when its trace is exported); returns what ends it. */
export type QueryTracer = (sqlText: string, operation: DbOperation) => ((error?: unknown) => void) | undefined;

export interface DatabaseOptions {
  url?: string;
  /** A directory, or `memory://` for a throwaway in-memory database (tests). */
  dataDir: string;
  poolSize: number;
  /** PGlite only: start from a dumped data directory (tests start from a migrated template). */
  loadDataDir?: Blob;
  onQuery?: QueryObserver;
  traceQuery?: QueryTracer;
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
  opts: Pick<DatabaseOptions, 'onQuery' | 'traceQuery'>,
  inflight: { n: number },
): F {
  const { onQuery: observe, traceQuery } = opts;
  return (async (sqlText: string, ...rest: never[]) => {
    const start = performance.now();
    const end = traceQuery?.(sqlText, queryOperation(sqlText));
    inflight.n++;
    let error: unknown;
    try {
      return await fn(sqlText, ...rest);
    } catch (err) {
      error = err ?? new Error('query failed');
      throw err;
    } finally {
      inflight.n--;
      end?.(error);
      observe?.(queryOperation(sqlText), (performance.now() - start) / 1000, error !== undefined);
    }
  }) as F;
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.url ? openPostgres(opts, opts.url) : openPglite(opts);
}

/** Lock files this process holds (a pid in a lock file may be ours from an earlier life, e.g. pid 1 in a container). */
const heldLocks = new Set<string>();

/**
 * PGlite serves one process: a lock file in DATA_DIR, holding the owner's pid, keeps a second
 * process out. The file is written aside and hard-linked into place, so it never exists without
 * its pid; a lock left by a process that died is moved aside by exactly one taker.
 */
function lockDataDir(dir: string): () => void {
  const lockPath = join(dir, 'nest-egg.lock');
  if (heldLocks.has(lockPath)) throw new DataDirInUseError(`DATA_DIR ${dir} is already open in this process`);
  const mine = `${lockPath}.${process.pid}`;
  writeFileSync(mine, String(process.pid));
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, lockPath);
        heldLocks.add(lockPath);
        return () => {
          heldLocks.delete(lockPath);
          if (readHolder(lockPath) === process.pid) rmSync(lockPath, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(lockPath);
      if (holder !== undefined && holder !== process.pid && isAlive(holder)) {
        throw new DataDirInUseError(
          `DATA_DIR ${dir} is in use by process ${holder}: the embedded database serves one process. ` +
            'Stop that process, choose another DATA_DIR, or set DATABASE_URL to share a Postgres server ' +
            `(if no nest-egg process is running, delete ${lockPath}).`,
        );
      }
      // Stale (its process died): move it aside, and remove it only if it is still the one we judged.
      const aside = `${lockPath}.stale.${process.pid}`;
      try {
        renameSync(lockPath, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (readHolder(aside) !== holder) {
        // Another process took the lock over between our read and the rename: give it back.
        try {
          linkSync(aside, lockPath);
        } catch {
          // a third process holds it now; the next attempt reads whoever that is
        }
      }
      rmSync(aside, { force: true });
    }
    throw new DataDirInUseError(`could not lock DATA_DIR ${dir}: the lock file ${lockPath} keeps changing hands`);
  } finally {
    rmSync(mine, { force: true });
  }
}

/** The pid in a lock file; undefined when the file is gone or holds no pid. */
function readHolder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
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
  client.query = timed(client.query.bind(client), opts, inflight) as typeof client.query;
  client.exec = timed(client.exec.bind(client), opts, inflight) as typeof client.exec;
  const transaction = client.transaction.bind(client);
  client.transaction = (<T>(cb: (tx: Transaction) => Promise<T>) =>
    transaction((tx) => {
      tx.query = timed(tx.query.bind(tx), opts, inflight) as typeof tx.query;
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
    // pg-pool listens for errors only on idle clients. A checked-out client (a transaction, the
    // migrator) whose server goes away emits 'error' with no listener, which would crash the
    // process; its holder already sees the failure as a rejected query, so nothing more to do here.
    c.on('error', () => {});
    const query = c.query.bind(c) as (text: unknown, ...rest: unknown[]) => Promise<unknown>;
    c.query = ((text: unknown, ...rest: unknown[]) => {
      const sqlText = typeof text === 'string' ? text : ((text as { text?: string })?.text ?? '');
      return timed((_s: string) => query(text, ...rest), opts, inflight)(sqlText);
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
      const r = await pool.query<{ v: string }>("select current_setting('server_version') as v");
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
