/**
 * Test databases. TEST_DB=postgres gives each caller a fresh database on the real server
 * (dropped on close); otherwise an in-memory PGlite started from a migrated template.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database, type QueryObserver } from '../../src/db/client.ts';
import { POSTGRES_ADMIN_URL } from './services.ts';

export const TEST_DB = process.env.TEST_DB === 'postgres' ? 'postgres' : 'pglite';

let template: Promise<Blob> | undefined;

async function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const d = await openDatabase({ dataDir: 'memory://', poolSize: 1 });
    await d.migrate();
    const blob = await d.dump!();
    await d.close();
    return blob;
  })();
  return template;
}

export interface TestDatabase {
  database: Database;
  url?: string;
  close(): Promise<void>;
}

/** Creates an empty database on the Postgres server and returns its URL and a drop function. */
export async function createPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `nest_egg_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export async function createTestDatabase(opts: { onQuery?: QueryObserver } = {}): Promise<TestDatabase> {
  if (TEST_DB === 'postgres') {
    const { url, drop } = await createPostgresDatabase();
    const database = await openDatabase({ url, dataDir: 'memory://', poolSize: 5, onQuery: opts.onQuery });
    await database.migrate();
    return {
      database,
      url,
      close: async () => {
        await database.close();
        await drop();
      },
    };
  }
  const database = await openDatabase({ dataDir: 'memory://', poolSize: 1, loadDataDir: await pgliteTemplate(), onQuery: opts.onQuery });
  return { database, close: () => database.close() };
}
