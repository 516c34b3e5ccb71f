/**
 * The real `nest-egg` CLI as a user runs it (`node bin/nest-egg.js …`): help and usage errors,
 * a bad configuration value, migrate, and create-admin creating then promoting without duplicates.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { users } from '../../src/db/schema.ts';
import { hashPassword, verifyPassword } from '../../src/modules/auth/passwords.ts';
import { CHILD_JWT_SECRET, runCli } from '../helpers/server.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'nest-egg-cli-'));
const env = { ENVIRONMENT: 'test', LOG_FORMAT: 'json', DATA_DIR: dataDir, JWT_SECRET: CHILD_JWT_SECRET };

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const jsonLines = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Reads the embedded database directly (no CLI process may be running on it at the time). */
async function withDb<T>(fn: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const database = await openDatabase({ dataDir, poolSize: 1 });
  try {
    return await fn(database.db);
  } finally {
    await database.close();
  }
}

async function countUsers(db: Awaited<ReturnType<typeof openDatabase>>['db']): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(users);
  return row!.n;
}

describe('nest-egg CLI: help and usage', () => {
  it('--help prints the usage on stdout and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: nest-egg <command>/);
    for (const command of ['serve', 'migrate', 'create-admin --email E --password P']) expect(r.stdout).toContain(command);
    expect(r.stderr).toBe('');
  });

  it('no command prints the usage on stderr and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^usage: nest-egg <command>/);
    expect(r.stdout).toBe('');
  });

  it('an unknown command names it and exits 2', async () => {
    const r = await runCli(['frobnicate'], env);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('unknown command: frobnicate');
    expect(r.stderr).toContain('usage: nest-egg <command>');
  });
});

describe('nest-egg CLI: a bad configuration value stops it with one line naming the variable', () => {
  it.each([
    ['PORT', { PORT: 'abc' }],
    ['LOG_FORMAT', { LOG_FORMAT: 'xml' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://x' }],
    ['SENTRY_TRACES_SAMPLE_RATE', { SENTRY_TRACES_SAMPLE_RATE: '2' }],
    ['METRICS_ENABLED', { METRICS_ENABLED: 'maybe' }],
    ['JWT_SECRET', { ENVIRONMENT: 'production', JWT_SECRET: undefined }],
  ])('%s', async (name, bad) => {
    const r = await runCli(['serve'], { ...env, ...bad });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^Invalid configuration: ${name} `));
    expect(r.stdout).toBe('');
  });
});

describe('nest-egg worker without REDIS_URL', () => {
  it('stops with one line naming REDIS_URL and exits 2, like any configuration error', async () => {
    const r = await runCli(['worker'], { ...env, REDIS_URL: undefined });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual([
      'Invalid configuration: REDIS_URL is required by nest-egg worker (without it the API runs background jobs in-process)',
    ]);
  });
});

describe('nest-egg CLI: migrate and create-admin on the embedded database', () => {
  it('migrate applies the migrations and exits 0, and again as a no-op', async () => {
    const first = await runCli(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(jsonLines(first.stdout)).toContainEqual(expect.objectContaining({ event: 'migrations_applied', database: 'pglite' }));
    const again = await runCli(['migrate'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(await withDb(countUsers)).toBe(0);
  });

  it('create-admin creates an admin, then updates the same user instead of adding one', async () => {
    const created = await runCli(['create-admin', '--email', 'admin@example.com', '--password', 'first-password-123'], env);
    expect(created.code, created.stderr).toBe(0);
    const first = jsonLines(created.stdout).find((l) => l.event === 'admin_ready');
    expect(first).toMatchObject({ created: true, email: 'a***@example.com', user_id: expect.any(String) });

    // A second run, in another case, with a new password: the same user, re-passworded.
    const again = await runCli(['create-admin', '--email', 'Admin@Example.com', '--password', 'second-password-456'], env);
    expect(again.code, again.stderr).toBe(0);
    const second = jsonLines(again.stdout).find((l) => l.event === 'admin_ready');
    expect(second).toMatchObject({ created: false, user_id: first!.user_id });

    for (const out of [created.stdout, again.stdout]) {
      expect(out).not.toContain('admin@example.com');
      expect(out).not.toMatch(/first-password|second-password/);
    }

    const rows = await withDb((db) => db.select().from(users).where(eq(sql`lower(${users.email})`, 'admin@example.com')));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.isAdmin).toBe(true);
    expect(await verifyPassword(rows[0]!.passwordHash, 'second-password-456')).toBe(true);
    expect(await verifyPassword(rows[0]!.passwordHash, 'first-password-123')).toBe(false);
  });

  it('create-admin promotes an existing ordinary user', async () => {
    const id = await withDb(async (db) => {
      const [u] = await db
        .insert(users)
        .values({ email: 'member@example.com', passwordHash: await hashPassword('member-password-1'), isAdmin: false })
        .returning({ id: users.id });
      return u!.id;
    });
    const r = await runCli(['create-admin', '--email', 'member@example.com', '--password', 'member-password-2'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonLines(r.stdout).find((l) => l.event === 'admin_ready')).toMatchObject({ created: false, user_id: id });
    const rows = await withDb((db) => db.select().from(users).where(eq(users.id, id)));
    expect(rows[0]!.isAdmin).toBe(true);
    expect(await withDb(countUsers)).toBe(2);
  });

  it.each([
    ['no arguments', []],
    ['no password', ['--email', 'admin@example.com']],
    ['no email', ['--password', 'long-enough-password']],
    ['a bad email', ['--email', 'not-an-email', '--password', 'long-enough-password']],
    ['a short password', ['--email', 'admin@example.com', '--password', 'short']],
    ['an unknown option', ['--email', 'admin@example.com', '--password', 'long-enough-password', '--role', 'root']],
    ['an option without its value', ['--email']],
    ['a stray argument', ['admin@example.com', 'long-enough-password']],
  ])('create-admin with %s exits 2 with a usage line', async (_case, args) => {
    const r = await runCli(['create-admin', ...args], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('usage: nest-egg create-admin --email <address> --password <at least 8 characters>\n');
  });
});
