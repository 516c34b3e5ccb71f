/**
 * `nest-egg serve`: the API on HOST:PORT, over the parts the composition root builds, with the
 * business gauges refreshed in the background. SIGTERM/SIGINT: readiness answers 503 at once, the
 * server drains (DRAIN_DELAY_MS, then in-flight requests finish), then jobs, Redis and the database
 * close.
 */
import { buildApp } from './app.ts';
import { assemble, openCore, stopOnSignal } from './composition.ts';
import type { Config } from './config.ts';
import { BusinessMetricsRefresher, countBusinessTotals } from './observability/business-metrics.ts';
import { getLogger, type Logger } from './observability/logging.ts';
import { sentryEnabled } from './observability/sentry.ts';

export async function runServer(config: Config, logger: Logger, onStopped: () => Promise<void>): Promise<void> {
  const log = getLogger(logger, 'server');
  const parts = assemble(await openCore(config, 'serve', { logger }), 'serve');
  const { database, metrics } = parts;
  const app = await buildApp(config, { logger, parts });
  const businessMetrics = config.metrics.enabled
    ? new BusinessMetricsRefresher({
        metrics,
        count: () => countBusinessTotals(database.db),
        probe: () => parts.health.readiness(),
        intervalMs: config.metrics.businessRefreshIntervalMs,
        logger: getLogger(logger, 'metrics'),
      })
    : undefined;
  await businessMetrics?.start();
  await app.listen({ port: config.port, host: config.host });
  log.info(
    { port: config.port, host: config.host, environment: config.environment, version: config.version, database: database.mode, sentry: sentryEnabled() },
    'server_started',
  );

  stopOnSignal({
    log,
    logger,
    delayMs: config.shutdown.drainDelayMs,
    timeoutMs: config.shutdown.timeoutMs,
    timeoutEvent: 'shutdown_timed_out',
    onTimeout: () => app.server.closeAllConnections(),
    stop: async (signal) => {
      // Readiness answers 503 at once, so load balancers stop sending new work.
      parts.health.setDraining();
      log.info({ signal, drain_delay_ms: config.shutdown.drainDelayMs }, 'shutdown_started');
      await new Promise((r) => setTimeout(r, config.shutdown.drainDelayMs));
      // close() stops accepting connections and lets in-flight requests finish.
      await app.close();
      await businessMetrics?.stop();
      await parts.close();
      await onStopped();
      log.info('shutdown_complete');
    },
  });
}
