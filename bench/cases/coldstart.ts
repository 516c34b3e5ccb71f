/**
 * Cold start: from process start (just before spawn) to the first 200 of readiness
 * (GET /api/v1/monitoring/health, polled every 20 ms) of the image's command line,
 * `node --enable-source-maps dist/main.js serve` (read from deploy/Dockerfile, compiled by
 * `npm run build` at the start of the case), with the runtime stage's ENV (ENVIRONMENT=production,
 * LOG_FORMAT=json, …), HOST=127.0.0.1, a free PORT and a JWT secret; no SENTRY_DSN unless the row
 * says so, migrations on start as by default (already applied, except on a first start). Each
 * start is stopped by its pid (SIGTERM) and has exited before the next begins. A row's figure is
 * the median of BENCH_COLD_STARTS starts (the page cache is warm after the first, as on a restart).
 *
 * Embedded: BENCH_COLD_STARTS first starts, each on a new empty DATA_DIR (initdb and the migrations
 * in PGlite), then as many on the last of those directories (an existing DATA_DIR).
 * Server: a Postgres database of its own (its first start applies the migrations and is reported in
 * the note) and the mode's Redis, then the measured starts; again with SENTRY_DSN set (the SDK's
 * start-up, sending to a closed port).
 * Both: the development command line (`node bin/nest-egg.js serve`, tsx compiling at start) on the
 * same data, for comparison.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPostgresDatabase } from '../../test/helpers/db.ts';
import { buildDist, imageCommandLine, imageRuntime } from '../../test/helpers/build.ts';
import { freePort } from '../../test/helpers/prometheus.ts';
import { BENCH_JWT_SECRET } from '../fixtures.ts';
import { spawnCommand } from '../processes.ts';
import type { BenchSettings } from '../settings.ts';
import { fmt, median } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';

/** Issue 12's targets, in seconds. */
const TARGET_S = { server: 2, embedded: 4 } as const;
const READY_TIMEOUT_MS = 60_000;
const DEV_CLI = fileURLToPath(new URL('../../bin/nest-egg.js', import.meta.url));

export interface ColdStartContext {
  mode: 'embedded' | 'server';
  /** The run's temporary directory (logs, data directories). */
  dir: string;
  /** Server mode: REDIS_URL and the run's own key prefixes. */
  redisEnv: Record<string, string>;
  postgresUrl: string;
}

let built: Promise<number> | undefined;
/** `npm run build` once per bench run; resolves with how long it took. */
function buildOnce(progress: Progress): Promise<number> {
  built ??= (progress('cold start: npm run build'), buildDist().then((r) => r.ms));
  return built;
}

type CommandLine = 'image' | 'dev';
let starts = 0;

/**
 * CPU time (user + system, all threads) a process has used, in ms, from /proc (Linux; USER_HZ 100);
 * NaN elsewhere. Less sensitive than the wall time to other load on a shared machine.
 */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

interface Start {
  /** Process start → first readiness 200. */
  ms: number;
  /** CPU the process had used by then. */
  cpuMs: number;
}

/** One start: spawn → first readiness 200; the process is stopped and gone when this resolves. */
async function coldStart(commandLine: CommandLine, env: Record<string, string>, dir: string): Promise<Start> {
  const [file, args] = commandLine === 'image' ? imageCommandLine() : [process.execPath, [DEV_CLI, 'serve']];
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/api/v1/monitoring/health`;
  const childEnv = { ...imageRuntime().env, HOST: '127.0.0.1', PORT: String(port), JWT_SECRET: BENCH_JWT_SECRET, ...env };
  const t0 = performance.now();
  const child = spawnCommand(`cold-start-${++starts}-${commandLine}`, file, args, childEnv, dir);
  try {
    for (;;) {
      if (!child.running) throw new Error(`${args.join(' ')} exited before it was ready\n${child.output()}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        await res.arrayBuffer();
        if (res.status === 200) return { ms: performance.now() - t0, cpuMs: cpuMs(child.pid) };
      } catch {
        // not listening yet
      }
      if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error(`${args.join(' ')} not ready within ${READY_TIMEOUT_MS / 1000} s\n${child.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await child.stop(15_000);
  }
}

async function series(n: number, label: string, progress: Progress, start: (i: number) => Promise<Start>): Promise<Start[]> {
  const runs: Start[] = [];
  for (let i = 0; i < n; i++) runs.push(await start(i));
  progress(`cold start ${label}: ${runs.map((r) => `${fmt(r.ms, 0)} ms (CPU ${fmt(r.cpuMs, 0)})`).join(', ')}`);
  return runs;
}

function row(mode: 'embedded' | 'server', measure: string, runs: Start[], target: number | undefined, note = ''): Row {
  const ms = runs.map((r) => r.ms);
  const s = median(ms) / 1000;
  const cpu = median(runs.map((r) => r.cpuMs));
  const spread = `median of ${ms.length}, ${fmt(Math.min(...ms) / 1000)}–${fmt(Math.max(...ms) / 1000)} s; CPU ${fmt(cpu / 1000)} s`;
  return {
    case: 'Cold start',
    mode,
    measure,
    result: `${fmt(s)} s`,
    target: target === undefined ? undefined : `≤ ${target} s`,
    ok: target === undefined ? undefined : s <= target,
    note: note ? `${spread}; ${note}` : spread,
  };
}

export async function coldStartCase(ctx: ColdStartContext, settings: BenchSettings, progress: Progress): Promise<Row[]> {
  const buildMs = await buildOnce(progress);
  const n = settings.coldStarts;
  const rows: Row[] = [];
  const image = 'process start → readiness 200, node dist/main.js serve';
  if (ctx.mode === 'embedded') {
    let dataDir = '';
    const fresh = await series(n, 'embedded, empty DATA_DIR', progress, () => {
      dataDir = mkdtempSync(join(ctx.dir, 'cold-start-data-'));
      return coldStart('image', { DATA_DIR: dataDir }, ctx.dir);
    });
    const existing = await series(n, 'embedded, existing DATA_DIR', progress, () => coldStart('image', { DATA_DIR: dataDir }, ctx.dir));
    const dev = await series(n, 'embedded, existing DATA_DIR, tsx', progress, () => coldStart('dev', { DATA_DIR: dataDir }, ctx.dir));
    rows.push(
      row('embedded', `${image}, existing DATA_DIR`, existing, TARGET_S.embedded, `npm run build took ${fmt(buildMs / 1000, 1)} s`),
      row('embedded', `${image}, first start on an empty DATA_DIR`, fresh, undefined, 'initdb and migrations in PGlite'),
      row('embedded', 'the same with node bin/nest-egg.js serve (tsx, npm start), existing DATA_DIR', dev, undefined, 'development command line, for comparison'),
    );
    return rows;
  }
  const db = await createPostgresDatabase(ctx.postgresUrl);
  try {
    const env = { DATABASE_URL: db.url, DATA_DIR: join(ctx.dir, 'cold-start-unused'), ...ctx.redisEnv };
    const first = await coldStart('image', env, ctx.dir);
    const measured = await series(n, 'server', progress, () => coldStart('image', env, ctx.dir));
    const sentry = await series(n, 'server, SENTRY_DSN', progress, () => coldStart('image', { ...env, SENTRY_DSN: 'http://bench@127.0.0.1:9/1' }, ctx.dir));
    const dev = await series(n, 'server, tsx', progress, () => coldStart('dev', env, ctx.dir));
    rows.push(
      row('server', `${image}, Postgres + Redis`, measured, TARGET_S.server, `first start on the empty database (migrations) ${fmt(first.ms / 1000)} s`),
      row('server', `${image}, Postgres + Redis, SENTRY_DSN set`, sentry, undefined, 'Sentry SDK start-up included'),
      row('server', 'the same with node bin/nest-egg.js serve (tsx, npm start), Postgres + Redis', dev, undefined, 'development command line, for comparison'),
    );
    return rows;
  } finally {
    await db.drop();
  }
}
