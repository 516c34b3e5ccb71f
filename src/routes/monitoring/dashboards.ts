/**
 * The platform admin's dashboards: GET /api/v1/monitoring/rate-limits (the guide's Rate Limiting
 * Dashboard, exactly its shape) and GET /api/v1/monitoring/system-stats. Both need an admin token:
 * 401 without a valid one, 403 for a user who is not a platform admin. Every read by a signed-in
 * user goes on the audit trail (`monitoring.read`, success or denied).
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { count, gt } from 'drizzle-orm';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Database } from '../../db/client.ts';
import { accounts, transactions, users } from '../../db/schema.ts';
import { withTimeout } from '../../lib/timeout.ts';

const activeLimit = z.object({
  endpoint: z.string(),
  client_id: z.string(),
  requests: z.number().int(),
  limit: z.number().int(),
  window_seconds: z.number().int(),
  resets_at: z.string(),
  blocked: z.boolean(),
});

const rateLimitDashboard = z.object({
  current_active_limits: z.array(activeLimit),
  total_requests_last_hour: z.number().int(),
  blocked_requests_last_hour: z.number().int(),
  top_clients: z.array(z.object({ client_id: z.string(), requests: z.number().int() })),
  top_endpoints: z.array(z.object({ endpoint: z.string(), requests: z.number().int() })),
});

const systemStats = z.object({
  totals: z.object({ users: z.number().int(), accounts: z.number().int(), transactions: z.number().int() }),
  last_24_hours: z.object({ new_users: z.number().int(), new_transactions: z.number().int() }),
  timestamp: z.string(),
  process: z.object({
    pid: z.number().int(),
    node_version: z.string(),
    uptime_seconds: z.number(),
    memory: z.object({ rss_bytes: z.number(), heap_used_bytes: z.number(), heap_total_bytes: z.number(), external_bytes: z.number() }),
    cpu: z.object({ user_seconds: z.number(), system_seconds: z.number() }),
    event_loop_delay_ms: z.object({ p50: z.number(), p99: z.number(), max: z.number(), window_seconds: z.number() }),
  }),
  database: z.object({ mode: z.enum(['pglite', 'postgres']), pool_size: z.number().int(), pool_available: z.number().int(), server_version: z.string().nullable() }),
  redis: z.union([
    z.object({ configured: z.literal(false) }),
    z.object({ configured: z.literal(true), connected: z.boolean(), used_memory_bytes: z.number().int().nullable() }),
  ]),
  /** The job queue's snapshot; null when there is none or it does not answer in time. */
  queue: z.unknown().nullable(),
});

export type SystemStats = z.infer<typeof systemStats>;

const EVENT_LOOP_WINDOW_SECONDS = 60;
const DEPENDENCY_TIMEOUT_MS = 1_000;

/**
 * Event-loop delay over the last full minute: the histogram is read and reset every minute, so the
 * figures describe recent behaviour rather than the whole life of the process.
 */
export class EventLoopDelay {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private last: { p50: number; p99: number; max: number } | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.last = this.read();
      this.histogram.reset();
    }, EVENT_LOOP_WINDOW_SECONDS * 1000);
    this.timer.unref();
  }

  private read(): { p50: number; p99: number; max: number } {
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const h = this.histogram;
    return h.count === 0 ? { p50: 0, p99: 0, max: 0 } : { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
  }

  snapshot(): { p50: number; p99: number; max: number; window_seconds: number } {
    return { ...(this.last ?? this.read()), window_seconds: EVENT_LOOP_WINDOW_SECONDS };
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}

export async function collectSystemStats(
  database: Database,
  redis: Redis | undefined,
  loop: EventLoopDelay,
  /** The job queue's snapshot (backend, counts per state, workers); null when it does not answer. */
  queue?: () => Promise<unknown>,
): Promise<SystemStats> {
  const db = database.db;
  const since = new Date(Date.now() - 24 * 3600 * 1000);
  const countOf = async (q: Promise<{ n: number }[]>) => Number((await q)[0]?.n ?? 0);
  const [userCount, accountCount, transactionCount, newUsers, newTransactions] = await Promise.all([
    countOf(db.select({ n: count() }).from(users)),
    countOf(db.select({ n: count() }).from(accounts)),
    countOf(db.select({ n: count() }).from(transactions)),
    countOf(db.select({ n: count() }).from(users).where(gt(users.createdAt, since))),
    countOf(db.select({ n: count() }).from(transactions).where(gt(transactions.createdAt, since))),
  ]);
  const [serverVersion, redisStats] = await Promise.all([
    withTimeout(database.serverVersion(), DEPENDENCY_TIMEOUT_MS).catch(() => null),
    redisInfo(redis),
  ]);
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  const pool = database.pool();
  return {
    totals: { users: userCount, accounts: accountCount, transactions: transactionCount },
    last_24_hours: { new_users: newUsers, new_transactions: newTransactions },
    timestamp: new Date().toISOString(),
    process: {
      pid: process.pid,
      node_version: process.version,
      uptime_seconds: Math.round(process.uptime() * 1000) / 1000,
      memory: { rss_bytes: memory.rss, heap_used_bytes: memory.heapUsed, heap_total_bytes: memory.heapTotal, external_bytes: memory.external },
      cpu: { user_seconds: cpu.user / 1e6, system_seconds: cpu.system / 1e6 },
      event_loop_delay_ms: loop.snapshot(),
    },
    database: { mode: database.mode, pool_size: pool.size, pool_available: pool.available, server_version: serverVersion },
    redis: redisStats,
    queue: queue ? await withTimeout(queue(), DEPENDENCY_TIMEOUT_MS).catch(() => null) : null,
  };
}

export async function redisInfo(redis: Redis | undefined): Promise<SystemStats['redis']> {
  if (!redis) return { configured: false };
  if (redis.status !== 'ready') return { configured: true, connected: false, used_memory_bytes: null };
  try {
    const info = await withTimeout(redis.info('memory'), DEPENDENCY_TIMEOUT_MS);
    const m = /^used_memory:(\d+)\r?$/m.exec(info);
    return { configured: true, connected: true, used_memory_bytes: m ? Number(m[1]) : null };
  } catch {
    return { configured: true, connected: false, used_memory_bytes: null };
  }
}

const routes: FastifyPluginAsyncZod = async (app) => {
  const security = [{ bearer: [] }];

  app.get(
    '/rate-limits',
    {
      onRequest: app.requireAdmin,
      onSend: app.auditAdminRead,
      schema: {
        tags: ['monitoring'],
        summary: 'Rate Limiting Dashboard (platform admin): live windows and the rolling hour, across all replicas.',
        security,
        response: { 200: rateLimitDashboard },
      },
    },
    async () => app.rateLimiter.dashboard(),
  );

  app.get(
    '/system-stats',
    {
      onRequest: app.requireAdmin,
      onSend: app.auditAdminRead,
      schema: {
        tags: ['monitoring'],
        summary: 'System statistics (platform admin): totals, last 24 hours, process, database, Redis and queue.',
        security,
        response: { 200: systemStats },
      },
    },
    async () => collectSystemStats(app.database, app.redis, app.eventLoopDelay, app.hasDecorator('jobs') ? () => app.jobs.snapshot() : undefined),
  );
};

export default routes;
