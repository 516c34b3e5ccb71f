/**
 * `nest-egg audit verify` as a real child process, on a real Postgres database (its own, dropped
 * afterwards) and on an embedded PGlite DATA_DIR: it passes over a trail written by create-admin
 * and by two replicas' pools appending at once, then fails naming the row after one row is edited.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { AuditTrail } from '../../src/modules/audit/trail.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { servicesAvailable } from '../helpers/services.ts';
import { CHILD_JWT_SECRET, runCli } from '../helpers/server.ts';

const logger = createLogger({ level: 'silent', format: 'json' });
const rowsOf = <T>(r: unknown): T[] => (Array.isArray(r) ? (r as T[]) : (r as { rows: T[] }).rows);

async function idOf(database: Database, action: string, nth: number): Promise<number> {
  const rows = rowsOf<{ id: number }>(await database.db.execute(sql`select id::int as id from audit_events where action = ${action} order by id`));
  return Number(rows[nth]!.id);
}

const postgres = await servicesAvailable('audit verify on Postgres', 'postgres');

describe.skipIf(!postgres)('nest-egg audit verify on Postgres', () => {
  let url: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ url, drop } = await createPostgresDatabase());
  });
  afterAll(async () => drop?.());

  const env = () => ({ ENVIRONMENT: 'test', LOG_FORMAT: 'json', DATABASE_URL: url, JWT_SECRET: CHILD_JWT_SECRET });

  it('passes over a trail two replicas appended to at once, then names the edited row', async () => {
    const admin = await runCli(['create-admin', '--email', 'ops@example.com', '--password', 'long enough password'], env());
    expect(admin.code, admin.stderr).toBe(0);

    // Two pools stand for two API replicas appending concurrently to one chain.
    const replicas = await Promise.all([0, 1].map(() => openDatabase({ url, dataDir: 'memory://', poolSize: 5 })));
    try {
      const trails = replicas.map((d) => new AuditTrail(d.db, { logger }));
      const written = await Promise.all(
        Array.from({ length: 60 }, (_, i) => trails[i % 2]!.record({ actor: 'system', action: 'test.replica', outcome: 'success', details: { i } })),
      );
      expect(written.every(Boolean)).toBe(true);

      const ok = await runCli(['audit', 'verify'], env());
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('audit chain OK: 61 rows checked');

      const victim = await idOf(replicas[0]!, 'test.replica', 25);
      await replicas[0]!.db.execute(sql`update audit_events set actor = 'someone-else' where id = ${victim}`);
      const broken = await runCli(['audit', 'verify'], env());
      expect(broken.code).toBe(1);
      expect(broken.stdout).toContain(`audit chain broken at row ${victim}:`);
      expect(broken.stderr).toContain(`row ${victim}`);
    } finally {
      await Promise.all(replicas.map((d) => d.close()));
    }
  });
});

describe('nest-egg audit verify on PGlite', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nest-egg-audit-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { ENVIRONMENT: 'test', LOG_FORMAT: 'json', DATA_DIR: dataDir, JWT_SECRET: CHILD_JWT_SECRET };

  it('passes, then names the row after one row is edited', async () => {
    for (const email of ['a@example.com', 'b@example.com', 'a@example.com']) {
      const r = await runCli(['create-admin', '--email', email, '--password', 'long enough password'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    const ok = await runCli(['audit', 'verify'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('audit chain OK: 3 rows checked');

    // No CLI runs now: the data directory is ours to open.
    const database = await openDatabase({ dataDir, poolSize: 1 });
    let victim: number;
    try {
      expect(rowsOf<{ action: string }>(await database.db.execute(sql`select action from audit_events order by id`)).map((r) => r.action)).toEqual([
        'admin.create', 'admin.create', 'admin.promote',
      ]);
      victim = await idOf(database, 'admin.create', 1);
      await database.db.execute(sql`update audit_events set outcome = 'failure' where id = ${victim}`);
    } finally {
      await database.close();
    }
    const broken = await runCli(['audit', 'verify'], env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`audit chain broken at row ${victim}:`);

    const usage = await runCli(['audit'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('usage: nest-egg audit verify');
  });
});
