/**
 * The business gauges (users_total, transactions_total, accounts_total) are counts refreshed in
 * the background, first at start and then every BUSINESS_METRICS_INTERVAL_MS, so a scrape never
 * runs a COUNT. Each refresh also runs the health checks (optional `probe`), which keeps the
 * dependency-up gauges current when no readiness probe is calling.
 */
import { count } from 'drizzle-orm';
import type { Db } from '../db/client.ts';
import { accounts, transactions, users } from '../db/schema.ts';
import type { Metrics } from './metrics.ts';

export interface BusinessCounts {
  users: number;
  transactions: number;
  accounts: number;
}

/** The three counts; every replica runs them, which is why dashboards aggregate with max. */
export async function countBusinessTotals(db: Db): Promise<BusinessCounts> {
  const [[u], [t], [a]] = await Promise.all([
    db.select({ n: count() }).from(users),
    db.select({ n: count() }).from(transactions),
    db.select({ n: count() }).from(accounts),
  ]);
  return { users: u?.n ?? 0, transactions: t?.n ?? 0, accounts: a?.n ?? 0 };
}

export interface RefresherLogger {
  warn(obj: Record<string, unknown>, event: string): void;
}

export interface BusinessMetricsRefresherOptions {
  metrics: Metrics;
  count: () => Promise<BusinessCounts>;
  intervalMs: number;
  /** Run alongside each refresh, e.g. `() => app.health.readiness()` to feed the dependency-up gauges. */
  probe?: () => Promise<unknown>;
  logger?: RefresherLogger;
}

export class BusinessMetricsRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<boolean> | undefined;

  constructor(private readonly opts: BusinessMetricsRefresherOptions) {}

  /** Refreshes now, then on the interval. Resolves when the first refresh has finished. */
  async start(): Promise<void> {
    if (this.timer) return;
    this.timer = setInterval(() => void this.refresh(), this.opts.intervalMs);
    this.timer.unref();
    await this.refresh();
  }

  /** One refresh; true when the gauges were updated. A refresh already running is joined, not doubled. */
  refresh(): Promise<boolean> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async run(): Promise<boolean> {
    const { metrics, logger } = this.opts;
    const probe = this.opts.probe?.().catch((error: unknown) => logger?.warn({ error }, 'dependency_probe_failed'));
    try {
      const c = await this.opts.count();
      metrics.usersTotal.set(c.users);
      metrics.transactionsTotal.set(c.transactions);
      metrics.accountsTotal.set(c.accounts);
      metrics.businessRefreshTimestamp.set(Date.now() / 1000);
      return true;
    } catch (error) {
      // The gauges keep their last values; the failure counter and the stale timestamp say so.
      metrics.businessRefreshFailures.inc();
      logger?.warn({ error }, 'business_metrics_refresh_failed');
      return false;
    } finally {
      await probe;
    }
  }
}
