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

interface Target {
  label: string;
  path: string;
  /** The share of non-2xx answers the run expects. */
  allowNon2xx?: number;
}

export async function breakdownCase(ctx: ModeContext, fixture: Fixture, off: ApiServer, jwtSecret: string, progress: Progress): Promise<Row[]> {
  const { settings } = ctx;
  const health: Target = { label: 'GET /health', path: '/health' };
  const anonymous: Target = { label: 'anonymous GET /api/v1/transactions (401)', path: '/api/v1/transactions', allowNon2xx: 1 };
  const rows: Row[] = [];
  for (const feature of Object.keys(FEATURES) as Feature[]) {
    const target = feature === 'rate limiting' ? anonymous : health;
    const server = await startVariant(ctx, fixture, feature, jwtSecret);
    try {
      const load = (s: ApiServer, duration: number) =>
        runLoad({ url: s.url, path: target.path, connections: settings.connections, duration, allowNon2xx: target.allowNon2xx }, s.child);
      if (settings.warmup > 0) await load(server, settings.warmup);
      const base: LoadResult[] = [];
      const with_: LoadResult[] = [];
      for (let round = 0; round < settings.breakdownRounds; round++) {
        base.push(await load(off, settings.duration));
        with_.push(await load(server, settings.duration));
      }
      const offUs = median(base.map((r) => r.cpuPerRequestUs));
      const onUs = median(with_.map((r) => r.cpuPerRequestUs));
      progress(`breakdown ${ctx.mode} ${feature}: ${fmt(offUs)} → ${fmt(onUs)} µs/request`);
      rows.push({
        case: 'B1 breakdown',
        mode: ctx.mode,
        measure: `${target.label} server CPU µs/request, off + ${feature}`,
        baseline: fmt(offUs),
        result: fmt(onUs),
        ratio: fmt(median(with_.map((r, i) => r.rps / base[i]!.rps)), 2),
        // Sentry on a request it does not trace (/health never is): at most 5 µs of CPU (issue 13).
        ...(feature === 'sentry' ? { target: '≤ +5 µs', ok: onUs - offUs <= 5 } : {}),
        note: `${onUs >= offUs ? '+' : ''}${fmt(onUs - offUs)} µs per request; ratio is req/s`,
      });
    } finally {
      await server.child.stop();
    }
  }
  return rows;
}
