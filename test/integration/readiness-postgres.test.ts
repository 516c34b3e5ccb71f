/**
 * Readiness on a real Postgres outage (issue 2, Must show): with the API on Postgres, stopping the
 * database turns readiness to 503 with "database":"error" within 2 s while /health stays 200;
 * starting it again brings 200 back with no restart of the API, which never crashes.
 *
 * The outage is real and private: a throwaway cluster (initdb into a temp dir, its own port in
 * 15432-15439, its socket in the temp dir, listening on 127.0.0.1 only) is stopped and started,
 * so the shared Postgres is never touched. Needs the Postgres server binaries.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/client.ts';
import { REQUIRE_SERVICES, servicesAvailable } from '../helpers/services.ts';
import { request, sleep, startServer, type ServerProcess } from '../helpers/server.ts';

const run = promisify(execFile);

/** The newest installed Postgres server binaries (Debian layout), if any. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')));
  versions.sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

const BIN = postgresBin();
if (!BIN) {
  const msg = 'readiness on Postgres: Postgres server binaries (initdb, pg_ctl under /usr/lib/postgresql) not available';
  if (REQUIRE_SERVICES) throw new Error(`${msg} (REQUIRE_SERVICES=1)`);
  console.warn(`SKIPPED integration tests — ${msg}`);
}
const ok = BIN !== undefined && (await servicesAvailable('readiness on Postgres', 'postgres'));

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** A private Postgres cluster in a temp dir, run as the `postgres` OS user when we are root (initdb refuses root). */
class PrivateCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'nest-egg-pg-'));
  readonly data = join(this.dir, 'data');
  port = 0;

  private async as(cmd: string, args: string[]): Promise<string> {
    const bin = join(BIN!, cmd);
    const [file, argv] = userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
    const { stdout } = await run(file, argv, { timeout: 60_000 });
    return stdout;
  }

  async init(): Promise<void> {
    if (userInfo().uid === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      const { stdout: gid } = await run('id', ['-g', 'postgres']);
      chownSync(this.dir, Number(stdout.trim()), Number(gid.trim()));
    }
    for (let p = 15432; p <= 15439 && !this.port; p++) if (await portFree(p)) this.port = p;
    if (!this.port) throw new Error('no free port in 15432-15439 for the private Postgres cluster');
    await this.as('initdb', ['-D', this.data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await this.as('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.as('pg_ctl', ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Stops it if it runs and removes everything; never throws. */
  async destroy(): Promise<void> {
    try {
      if (existsSync(join(this.data, 'postmaster.pid'))) await this.stop('immediate');
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function readiness(s: ServerProcess) {
  const r = await request(`${s.url}/api/v1/monitoring/health`);
  return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
}

/** Polls readiness until it answers `status`; resolves with the elapsed ms and the last answer. */
async function until(s: ServerProcess, status: number, timeoutMs: number) {
  const start = performance.now();
  for (;;) {
    const r = await readiness(s);
    const elapsed = performance.now() - start;
    if (r.status === status) return { elapsed, ...r };
    if (elapsed > timeoutMs) throw new Error(`readiness still ${r.status} after ${Math.round(elapsed)} ms: ${JSON.stringify(r.body)}`);
    await sleep(50);
  }
}

describe.skipIf(!ok)('readiness follows a real Postgres outage', () => {
  let cluster: PrivateCluster;
  let api: ServerProcess | undefined;

  beforeAll(async () => {
    cluster = new PrivateCluster();
    try {
      await cluster.init();
      await cluster.start();
      api = await startServer({ env: { DATABASE_URL: cluster.url } });
    } catch (err) {
      await api?.cleanup();
      await cluster.destroy();
      throw err;
    }
  });

  afterAll(async () => {
    await api?.cleanup();
    await cluster?.destroy();
  });

  it('is ready with "database":"ok" while Postgres runs', async () => {
    const r = await readiness(api!);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'healthy', database: 'ok' });
    expect(api!.logs().find((l) => l.event === 'server_started')).toMatchObject({ database: 'postgres' });
  });

  it('answers 503 with "database":"error" within 2 s of the database stopping, while /health stays 200', async () => {
    await cluster.stop('fast');
    const down = await until(api!, 503, 10_000);
    console.info(`readiness flip: Postgres stopped → readiness 503 after ${Math.round(down.elapsed)} ms`);
    expect(down.elapsed).toBeLessThanOrEqual(2_000);
    expect(down.body).toMatchObject({ status: 'unhealthy', database: 'error', checks: { database: { status: 'error' } } });
    expect((down.body.checks as { database: { error: string } }).database.error).not.toBe('');

    // Liveness touches no dependency; readiness keeps saying 503 for as long as the outage lasts.
    for (let i = 0; i < 5; i++) {
      const live = await request(`${api!.url}/health`);
      expect(live.status).toBe(200);
      expect(JSON.parse(live.body)).toEqual({ status: 'healthy' });
      expect((await readiness(api!)).status).toBe(503);
    }
    // A request that needs the database gets a clean 503 problem telling it to retry, not a hang or a crash.
    const reg = await request(`${api!.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'during.outage@example.com', password: 'a-long-enough-password', full_name: 'Outage' }),
      timeoutMs: 15_000,
    });
    expect(reg.status, reg.body).toBe(503);
    expect(reg.headers['content-type']).toContain('application/problem+json');
    expect(reg.headers['retry-after']).toBe('5');
    expect(JSON.parse(reg.body)).toMatchObject({ status: 503, title: 'Service Unavailable', detail: 'The database is unavailable; try again shortly' });
  });

  it('comes back to 200 when the database is started again, without restarting the API', async () => {
    const pid = api!.pid;
    await cluster.start();
    const up = await until(api!, 200, 30_000);
    console.info(`readiness recovery: Postgres started → readiness 200 after ${Math.round(up.elapsed)} ms`);
    expect(up.body).toMatchObject({ status: 'healthy', database: 'ok' });

    // The pool serves real work again, in the same process.
    const reg = await request(`${api!.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'after.outage@example.com', password: 'a-long-enough-password', full_name: 'After' }),
      timeoutMs: 15_000,
    });
    expect(reg.status, reg.body).toBe(201);
    expect(api!.pid).toBe(pid);
  });

  it('never crashed: the same process still runs and wrote no uncaught exception', () => {
    expect(api!.running()).toBe(true);
    expect(api!.exit()).toBeUndefined();
    expect(api!.stderr()).not.toMatch(/uncaught|unhandled|^\s+at /im);
    expect(api!.stderr()).toBe('');
  });

  it('a connection lost in the middle of a transaction rejects the transaction instead of crashing the process', async () => {
    const database = await openDatabase({ url: cluster.url, dataDir: 'unused', poolSize: 2 });
    const admin = await openDatabase({ url: cluster.url, dataDir: 'unused', poolSize: 1 });
    try {
      const outcome = database.db.transaction(async (tx) => {
        const r = (await tx.execute(sql`select pg_backend_pid() as pid`)) as unknown as { rows: { pid: number }[] };
        const pid = r.rows[0]!.pid;
        // The server ends this backend while the transaction holds its connection between queries.
        await admin.db.execute(sql`select pg_terminate_backend(${pid})`);
        await sleep(300);
        await tx.execute(sql`select 1`);
      });
      await expect(outcome).rejects.toThrow();
      // The pool replaces the lost connection.
      await database.ping();
    } finally {
      await database.close();
      await admin.close();
    }
  });
});
