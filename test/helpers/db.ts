/**
 * Test databases. TEST_DB=postgres gives each caller a fresh database on the real server
 * (dropped on close); otherwise an in-memory PGlite started from a migrated template.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openDatabase, type Database, type QueryObserver } from '../../src/db/client.ts';
import { POSTGRES_ADMIN_URL } from './services.ts';

const MIGRATIONS = fileURLToPath(new URL('../../src/db/migrations', import.meta.url));

export const TEST_DB = process.env.TEST_DB === 'postgres' ? 'postgres' : 'pglite';

let template: Promise<Blob> | undefined;

/**
 * A migrated PGlite data directory, cached on disk by the migrations' content so that each test
 * file starts in about a second instead of running initdb and the migrations again.
 */
async function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const hash = createHash('sha256');
    for (const f of readdirSync(MIGRATIONS, { recursive: true }).map(String).sort()) {
      const p = join(MIGRATIONS, f);
      if (statSync(p).isFile()) hash.update(f).update(readFileSync(p));
    }
    const file = join(tmpdir(), `nest-egg-pglite-template-${hash.digest('hex').slice(0, 16)}.tar`);
    if (existsSync(file)) return new Blob([readFileSync(file)]);
    const d = await openDatabase({ dataDir: 'memory://', poolSize: 1 });
    await d.migrate();
    const blob = await d.dump!();
    await d.close();
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()));
    renameSync(tmp, file);
    return blob;
  })();
  return template;
}

export interface TestDatabase {
  database: Database;
  url?: string;
  close(): Promise<void>;
}

/** Creates an empty database on the Postgres server (the tests' own, or `adminUrl`'s) and returns its URL and a drop function. */
export async function createPostgresDatabase(adminUrl = POSTGRES_ADMIN_URL): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `nest_egg_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
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
