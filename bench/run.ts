/**
 * `npm run bench`: every case of issue 8 in one run, one table on stdout (progress on stderr).
 * See bench/README.md for the method and the figures of a real run.
 *
 *   1. per mode (embedded; server when Postgres and Redis answer): seed the data, start the "off"
 *      and "on" API servers, run B1/B2 (alternated with the bare Fastify server), in embedded mode
 *      the B1 breakdown (off plus one feature at a time), the memory soak and B5, stop them;
 *   2. then the in-process cases, B3 (scrape) and B4 (rate limiter), once no server is loaded;
 *   3. last, the cold start of the image's command line per mode, on a quiet machine.
 * BENCH_CASES picks some of them (load = step 1, scrape, ratelimit, cold-start).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { breakdownCase } from './cases/breakdown.ts';
import { coldStartCase } from './cases/coldstart.ts';
import { consoleCase } from './cases/console.ts';
import { dataCase } from './cases/data.ts';
import { memoryCase } from './cases/memory.ts';
import { overheadCase, type Endpoint } from './cases/overhead.ts';
import { connectedRedis, memoryStoreCase, redisStoreCase } from './cases/ratelimit.ts';
import { deletePrefix } from '../test/helpers/redis.ts';
import { scrapeCase } from './cases/scrape.ts';
import { tracingCase } from './cases/tracing.ts';
import { BENCH_JWT_SECRET, strangerTokens, type Fixture } from './fixtures.ts';
import { prepareFixture, startServers, stopAll, type ModeContext } from './modes.ts';
import { startHelper, type Child } from './processes.ts';
import { loadSettings, type BenchCase, type BenchSettings } from './settings.ts';
import { fmt } from './stats.ts';
import { renderTable, type Row } from './table.ts';
import { closeRedisClient } from '../src/redis.ts';

const started = performance.now();
const progress = (line: string) => process.stderr.write(`[${fmt((performance.now() - started) / 1000, 0).padStart(3)} s] ${line}\n`);

function reachable(url: string, fallbackPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: u.hostname, port: Number(u.port || fallbackPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

let failures = 0;
/** Runs one case; a failure becomes a visible row instead of ending the run. */
async function attempt(rows: Row[], caseName: string, mode: string, fn: () => Promise<Row[]>): Promise<void> {
  try {
    rows.push(...(await fn()));
  } catch (err) {
    failures++;
    progress(`${caseName} ${mode} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    rows.push({ case: caseName, mode, measure: 'ERROR', result: '', note: (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 160) });
  }
}

function machine(settings: BenchSettings): string {
  const cpus = os.cpus();
  return [
    `node ${process.version} on ${os.platform()} ${os.release()}, ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, ${fmt(os.totalmem() / 2 ** 30, 0)} GiB RAM, load average ${os.loadavg().map((l) => fmt(l, 1)).join(' ')} at the end`,
    `load runs ${settings.duration} s (warm-up ${settings.warmup} s), ${settings.rounds} alternated rounds, ${settings.connections} connections (B5: ${settings.dataConnections}), ${fmt(settings.transactions, 0)} transactions, ${settings.coldStarts} cold starts per row`,
    `cases: ${settings.cases.join(', ')}`,
  ].join('\n');
}

interface PreparedMode {
  ctx: ModeContext;
  fixture: Fixture;
}

interface Baselines {
  bare: { child: Child; url: string };
  peer: { child: Child; url: string };
}

async function loadPhase(ctx: ModeContext, fixture: Fixture, baselines: Baselines, rows: Row[]): Promise<void> {
  const { mode, settings } = ctx;
  progress(`${mode}: starting the off and on servers`);
  const servers = await startServers(ctx, fixture, BENCH_JWT_SECRET);
  try {
    const auth = { authorization: `Bearer ${fixture.token}` };
    const off = { name: 'off' as const, url: servers.off.url, child: servers.off.child };
    const on = { name: 'on' as const, url: servers.on.url, child: servers.on.child };
    const endpoints: Endpoint[] = [
      { label: 'GET /health', path: '/health', onVsOff: 0.85, targets: [off, on, { name: 'bare', ...baselines.bare }, { name: 'peer', ...baselines.peer }] },
      { label: 'GET /api/v1/transactions?limit=50', path: '/api/v1/transactions?limit=50', headers: auth, onVsOff: 0.9, targets: [off, on] },
    ];
    await attempt(rows, 'B1/B2', mode, () => overheadCase(mode, endpoints, settings, progress));
    if (mode === 'embedded' && settings.breakdownRounds > 0) {
      await attempt(rows, 'B1 breakdown', mode, () => breakdownCase(ctx, fixture, servers.off, BENCH_JWT_SECRET, progress));
    }
    const strangers = await strangerTokens(2_000);
    await attempt(rows, 'Memory', mode, () => memoryCase(mode, servers.on, fixture.token, strangers, settings, progress));
    await attempt(rows, 'B5 data', mode, () => dataCase(mode, servers.on, fixture.token, fixture.plan, settings, progress));
  } finally {
    await stopAll([servers.off.child, servers.on.child]);
  }
}

async function main(): Promise<number> {
  const settings = loadSettings();
  // Every process of the run uses this Node; the figures that count are those of the image's (24).
  if (Number(process.versions.node.split('.')[0]) < 24) progress(`note: node ${process.version}; the image runs Node 24 LTS — run the bench on it for the figures that count (bench/README.md)`);
  const dir = mkdtempSync(join(os.tmpdir(), 'nest-egg-bench-'));
  const prefix = `nest-egg-bench-${randomBytes(4).toString('hex')}:`;
  const rows: Row[] = [];
  const helpers: Child[] = [];
  const prepared: PreparedMode[] = [];
  const available: ModeContext[] = [];
  const wants = (c: BenchCase) => settings.cases.includes(c);
  let sentry = { envelopes: 0, bytes: 0 };
  let redisReachable = false;
  try {
    // The Sentry sink and the bare Fastify ceiling serve the load cases only.
    const sink = wants('load') ? await startHelper('sentry-sink', 'sentry-sink.ts', {}, dir) : undefined;
    if (sink) helpers.push(sink.child);
    const bare = wants('load') ? await startHelper('bare-fastify', 'bare-server.ts', {}, dir) : undefined;
    if (bare) helpers.push(bare.child);
    // The typical peer: Fastify + fastify-metrics + pino request logging to a file (bench/peer-server.ts).
    const peer = wants('load') ? await startHelper('peer-fastify', 'peer-server.ts', { PEER_LOG_FILE: join(dir, 'peer.log') }, dir) : undefined;
    if (peer) helpers.push(peer.child);
    const baselines = bare && peer ? { bare: { child: bare.child, url: `http://127.0.0.1:${bare.port}` }, peer: { child: peer.child, url: `http://127.0.0.1:${peer.port}` } } : undefined;

    for (const mode of settings.modes) {
      let redisEnv: Record<string, string> = {};
      if (mode === 'server') {
        const postgres = await reachable(settings.postgresUrl, 5432);
        redisReachable = await reachable(settings.redisUrl, 6379);
        if (!postgres || !redisReachable) {
          const missing = [!postgres && `Postgres (${new URL(settings.postgresUrl).host})`, !redisReachable && `Redis (${new URL(settings.redisUrl).host})`].filter(Boolean);
          rows.push({ case: settings.cases.join(', '), mode, measure: 'SKIPPED', result: '', note: `${missing.join(' and ')} not reachable` });
          progress(`server mode skipped: ${missing.join(' and ')} not reachable`);
          continue;
        }
        redisEnv = { REDIS_URL: settings.redisUrl, RATE_LIMIT_KEY_PREFIX: `${prefix}rl:`, JOB_QUEUE_PREFIX: `${prefix}bull` };
      }
      const ctx: ModeContext = { mode, settings, dir, sentryPort: sink?.port ?? 0, redisEnv };
      available.push(ctx);
      if (!wants('load') && !wants('scrape')) continue;
      try {
        progress(`${mode}: seeding ${fmt(settings.transactions, 0)} transactions`);
        const fixture = await prepareFixture(ctx);
        prepared.push({ ctx, fixture });
        if (baselines) await loadPhase(ctx, fixture, baselines, rows);
      } catch (err) {
        failures++;
        progress(`${mode} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        rows.push({ case: 'B1–B5, Memory', mode, measure: 'ERROR', result: '', note: String(err instanceof Error ? err.message : err).split('\n')[0]!.slice(0, 160) });
      }
    }
    if (sink) sentry = await sink.child.ask<{ type: string; envelopes: number; bytes: number }>({ type: 'sentry-count' });
    await stopAll(helpers);

    if (wants('scrape')) {
      for (const { ctx, fixture } of prepared) {
        await attempt(rows, 'B3 scrape', ctx.mode, () => scrapeCase({ mode: ctx.mode, databaseEnv: fixture.databaseEnv(`${ctx.mode}-scrape`), redisEnv: ctx.redisEnv }, settings, progress));
      }
    }
    if (wants('ratelimit')) {
      if (settings.modes.includes('embedded')) await attempt(rows, 'B4 rate limiter', 'embedded', () => memoryStoreCase(settings, progress));
      if (settings.modes.includes('server') && redisReachable) {
        await attempt(rows, 'B4 rate limiter', 'server', () => redisStoreCase(settings.redisUrl, `${prefix}b4:`, settings, progress));
      }
    }
    if (wants('tracing')) await attempt(rows, 'Tracing', 'in-process', async () => tracingCase(settings, progress));
    if (wants('console')) await attempt(rows, 'Console', 'embedded', () => consoleCase(settings, progress));
    if (wants('cold-start')) {
      for (const ctx of available) {
        await attempt(rows, 'Cold start', ctx.mode, () => coldStartCase({ mode: ctx.mode, dir, redisEnv: ctx.redisEnv, postgresUrl: settings.postgresUrl }, settings, progress));
      }
    }
  } finally {
    await stopAll(helpers);
    for (const { fixture } of prepared) await fixture.cleanup().catch((err: unknown) => progress(`cleanup: ${String(err)}`));
    if (redisReachable) {
      // The servers' rate-limit windows and queue keys live under the run's prefix.
      try {
        const redis = await connectedRedis(settings.redisUrl);
        await deletePrefix(redis, prefix);
        await closeRedisClient(redis);
      } catch (err) {
        progress(`redis cleanup: ${String(err)}`);
      }
    }
    if (settings.keep) progress(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }

  if (wants('load')) {
    rows.push({
      case: 'B1 overhead',
      mode: 'all',
      measure: 'Sentry envelopes the "on" servers sent',
      result: fmt(sentry.envelopes, 0),
      note: `${fmt(sentry.bytes / 1024, 0)} KiB to the local sink`,
    });
  }
  const wall = (performance.now() - started) / 1000;
  process.stdout.write(`\nNest Egg API benchmarks, ${new Date().toISOString()}\n${machine(settings)}\n\n${renderTable(rows)}\n\nwall time ${fmt(wall, 0)} s\n`);
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
