/**
 * The embedded database serves one process: a second `serve` on the same DATA_DIR is refused with
 * a clear message while the first keeps serving; the lock goes with the first process, and a lock
 * left by a process that died (crashed, or a file with a dead pid) is taken over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort, request, spawnCli, startServer, type ServerProcess } from '../helpers/server.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'nest-egg-lock-'));
const lockFile = join(dataDir, 'nest-egg.lock');
const env = { DATA_DIR: dataDir };
let running: ServerProcess[] = [];

afterEach(async () => {
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

async function serve(): Promise<ServerProcess> {
  const s = await startServer({ env });
  running.push(s);
  return s;
}

async function readiness(s: ServerProcess) {
  const r = await request(`${s.url}/api/v1/monitoring/health`);
  return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
}

/** A pid that belonged to a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid;
}

describe('PGlite single-process lock', () => {
  it('refuses a second process on the same DATA_DIR while the first keeps serving', async () => {
    const first = await serve();
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(first.pid));

    const secondPort = await freePort();
    const second = spawnCli(['serve'], { ENVIRONMENT: 'test', LOG_FORMAT: 'json', JWT_SECRET: 'x'.repeat(32), PORT: String(secondPort), DATA_DIR: dataDir });
    const exit = await second.exited;
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(second.stderr()).toContain(`DATA_DIR ${dataDir} is in use by process ${first.pid}: the embedded database serves one process.`);
    expect(second.stderr()).toContain('set DATABASE_URL');
    expect(second.stderr().trim().split('\n')).toHaveLength(1);
    await expect(request(`http://127.0.0.1:${secondPort}/health`)).rejects.toThrow(/ECONNREFUSED/);

    // The first is untouched: still running, still ready, its database answering, still the holder.
    expect(first.running()).toBe(true);
    expect(await readiness(first)).toMatchObject({ status: 200, body: { database: 'ok' } });
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(first.pid));

    // Its lock leaves with it, and nothing else is left behind in DATA_DIR.
    expect(await first.stop()).toEqual({ code: 0, signal: null });
    expect(existsSync(lockFile)).toBe(false);
    expect(readdirSync(dataDir).filter((f) => f.startsWith('nest-egg.lock'))).toEqual([]);
  });

  it('starts fine on the same DATA_DIR once the first has exited', async () => {
    const next = await serve();
    expect(await readiness(next)).toMatchObject({ status: 200, body: { database: 'ok' } });
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(next.pid));
  });

  it('takes over the lock of a process that was killed', async () => {
    const crashed = await serve();
    crashed.signal('SIGKILL');
    expect(await crashed.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(crashed.pid)); // left behind

    const next = await serve();
    expect(await readiness(next)).toMatchObject({ status: 200, body: { database: 'ok' } });
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(next.pid));
  });

  it('takes over a lock file naming a pid that no longer runs, and one with no pid at all', async () => {
    for (const stale of [String(deadPid()), '']) {
      writeFileSync(lockFile, stale);
      const next = await serve();
      expect(await readiness(next)).toMatchObject({ status: 200, body: { database: 'ok' } });
      expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(next.pid));
      await next.stop();
      running = [];
    }
  });
});
