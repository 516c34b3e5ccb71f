/**
 * B1 broken down: what each part of the observability costs on its own. For each feature, a
 * server with everything off but that feature is loaded alternately with the "off" server, and the
 * server CPU per request (the steadiest figure on a shared 2-core machine) is compared. Metrics,
 * logs and Sentry are measured on GET /health, where they are nearly all of the work; rate limiting
 * (/health is exempt) on an anonymous GET /api/v1/transactions, which the limiter decides and then
 * auth answers 401 without touching the database, so the decision is most of the work.
 */
import { runLoad, type LoadResult } from '../load.ts';
import { FEATURES, startVariant, type Feature, type ModeContext } from '../modes.ts';
import type { ApiServer } from '../processes.ts';
import type { Fixture } from '../fixtures.ts';
import { fmt, median } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';
import { freePort } from '../../test/helpers/prometheus.ts';

interface Target {
  label: string;
  path: string;
  /** The share of non-2xx answers the run expects. */
  allowNon2xx?: number;
}

/** Medians of alternated load rounds on two servers (`a` first in each round): CPU per request, and b's req/s and p99 over a's. */
async function alternate(settings: ModeContext['settings'], target: Target, a: ApiServer, b: ApiServer, warm: ApiServer[]) {
  const load = (s: ApiServer, duration: number) =>
    runLoad({ url: s.url, path: target.path, connections: settings.connections, duration, allowNon2xx: target.allowNon2xx }, s.child);
  if (settings.warmup > 0) for (const s of warm) await load(s, settings.warmup);
  const as: LoadResult[] = [];
  const bs: LoadResult[] = [];
  for (let round = 0; round < settings.breakdownRounds; round++) {
    as.push(await load(a, settings.duration));
    bs.push(await load(b, settings.duration));
  }
  return {
    aUs: median(as.map((r) => r.cpuPerRequestUs)),
    bUs: median(bs.map((r) => r.cpuPerRequestUs)),
    rps: median(bs.map((r, i) => r.rps / as[i]!.rps)),
    p99: median(bs.map((r, i) => r.p99 / as[i]!.p99)),
  };
}

export async function breakdownCase(ctx: ModeContext, fixture: Fixture, off: ApiServer, jwtSecret: string, progress: Progress): Promise<Row[]> {
  const { settings } = ctx;
  const health: Target = { label: 'GET /health', path: '/health' };
  const anonymous: Target = { label: 'anonymous GET /api/v1/transactions (401)', path: '/api/v1/transactions', allowNon2xx: 1 };
  const rows: Row[] = [];
  for (const feature of Object.keys(FEATURES) as Feature[]) {
    // Probes are never traced: tracing is measured where a tenth of the requests are.
    const target = feature === 'rate limiting' || feature === 'tracing' ? anonymous : health;
    const server = await startVariant(ctx, fixture, feature, jwtSecret);
    try {
      const { aUs: offUs, bUs: onUs, rps } = await alternate(settings, target, off, server, [server]);
      progress(`breakdown ${ctx.mode} ${feature}: ${fmt(offUs)} → ${fmt(onUs)} µs/request`);
      rows.push({
        case: 'B1 breakdown',
        mode: ctx.mode,
        measure: `${target.label} server CPU µs/request, off + ${feature}`,
        baseline: fmt(offUs),
        result: fmt(onUs),
        ratio: fmt(rps, 2),
        // Sentry on a request it does not trace (/health never is): at most 5 µs of CPU (issue 13).
        ...(feature === 'sentry' ? { target: '≤ +5 µs', ok: onUs - offUs <= 5 } : {}),
        note: `${onUs >= offUs ? '+' : ''}${fmt(onUs - offUs)} µs per request; ratio is req/s`,
      });
    } finally {
      await server.child.stop();
    }
  }
  rows.push(await unsampledRow(ctx, fixture, off, jwtSecret, anonymous, progress));
  rows.push(await collectorDownRow(ctx, fixture, jwtSecret, anonymous, progress));
  rows.push(await consoleRow(ctx, fixture, jwtSecret, health, progress));
  return rows;
}

/**
 * The operator console (issue 17) on a production server: everything on, without the console
 * (OPS_CONSOLE_ENABLED=false) and with it (its routes, its sampler reading the registry every
 * 10 s, the recent-error and security-event lists). Nothing of it is on a request's path, so the
 * target is the breakdown's noise bound.
 */
async function consoleRow(ctx: ModeContext, fixture: Fixture, jwtSecret: string, target: Target, progress: Progress): Promise<Row> {
  const without = await startVariant(ctx, fixture, 'on', jwtSecret, { name: 'on-no-console', env: { OPS_CONSOLE_ENABLED: 'false' } });
  const withConsole = await startVariant(ctx, fixture, 'on', jwtSecret, { name: 'on-console', env: { OPS_CONSOLE_ENABLED: 'true' } });
  try {
    const { aUs: withoutUs, bUs: withUs, p99 } = await alternate(ctx.settings, target, without, withConsole, [without, withConsole]);
    progress(`breakdown ${ctx.mode} console: ${fmt(withoutUs)} → ${fmt(withUs)} µs/request, p99 ×${fmt(p99, 2)}`);
    return {
      case: 'B1 breakdown',
      mode: ctx.mode,
      measure: `${target.label} server CPU µs/request, everything on: without → with the operator console`,
      baseline: fmt(withoutUs),
      result: fmt(withUs),
      ratio: fmt(withUs / withoutUs, 2),
      target: '≤ 1.10 (CPU and p99)',
      ok: withUs / withoutUs <= 1.1 && p99 <= 1.1,
      note: `${withUs >= withoutUs ? '+' : ''}${fmt(withUs - withoutUs)} µs per request; p99 ${fmt(p99, 2)}; its sampler: the B3 console row`,
    };
  } finally {
    await Promise.all([without.child.stop(), withConsole.child.stop()]);
  }
}

/**
 * Export configured but nothing sampled, against "off": what a request the sampler leaves out pays
 * for the export being there (the trace ids themselves every server makes: the in-process Tracing row).
 */
async function unsampledRow(ctx: ModeContext, fixture: Fixture, off: ApiServer, jwtSecret: string, target: Target, progress: Progress): Promise<Row> {
  const server = await startVariant(ctx, fixture, 'tracing', jwtSecret, { name: 'unsampled', env: { OTEL_TRACES_SAMPLER: 'always_off' } });
  try {
    const { aUs: offUs, bUs: onUs, rps } = await alternate(ctx.settings, target, off, server, [server]);
    progress(`breakdown ${ctx.mode} tracing, nothing sampled: ${fmt(offUs)} → ${fmt(onUs)} µs/request`);
    return {
      case: 'B1 breakdown',
      mode: ctx.mode,
      measure: `${target.label} server CPU µs/request, off + tracing with nothing sampled`,
      baseline: fmt(offUs),
      result: fmt(onUs),
      ratio: fmt(rps, 2),
      target: '≤ +5 µs',
      ok: onUs - offUs <= 5,
      note: `${onUs >= offUs ? '+' : ''}${fmt(onUs - offUs)} µs per request; the trace ids every request gets: the Tracing row`,
    };
  } finally {
    await server.child.stop();
  }
}

/**
 * The same tracing server twice, its collector answering and its collector's port closed: the
 * export is off the request path, so a collector that is down must not make requests dearer.
 */
async function collectorDownRow(ctx: ModeContext, fixture: Fixture, jwtSecret: string, target: Target, progress: Progress): Promise<Row> {
  const closed = await freePort();
  const up = await startVariant(ctx, fixture, 'tracing', jwtSecret);
  const down = await startVariant(ctx, fixture, 'tracing', jwtSecret, { name: 'collector-down', env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${closed}` } });
  try {
    const { aUs: upUs, bUs: downUs, p99 } = await alternate(ctx.settings, target, up, down, [up, down]);
    progress(`breakdown ${ctx.mode} collector down: ${fmt(upUs)} → ${fmt(downUs)} µs/request, p99 ×${fmt(p99, 2)}`);
    return {
      case: 'B1 breakdown',
      mode: ctx.mode,
      measure: `${target.label} server CPU µs/request, tracing: collector up → collector's port closed`,
      baseline: fmt(upUs),
      result: fmt(downUs),
      ratio: fmt(downUs / upUs, 2),
      // "Not slower": within the run-to-run noise of this machine (10 %), CPU and p99 alike.
      target: '≤ 1.10 (CPU and p99)',
      ok: downUs / upUs <= 1.1 && p99 <= 1.1,
      note: `p99 down/up ${fmt(p99, 2)}; spans are dropped and counted (otlp_spans_dropped_total)`,
    };
  } finally {
    await Promise.all([up.child.stop(), down.child.stop()]);
  }
}
