/**
 * The one way to open a Redis client (ARCHITECTURE §2): commands fail fast instead of queueing
 * while disconnected, time out quickly, and the client reconnects forever with capped backoff.
 * An error event is logged (at most once per outage), never thrown, so a Redis outage degrades
 * the service instead of crashing it.
 */
import { Redis } from 'ioredis';
import { getLogger, type Logger } from './observability/logging.ts';

export type { Redis };

export interface RedisClientOptions {
  connectTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Name shown by CLIENT LIST, e.g. `nest-egg-api`. */
  connectionName?: string;
  /**
   * A BullMQ worker's connection: its blocking commands wait for jobs longer than any command
   * timeout, and BullMQ requires `maxRetriesPerRequest: null` and an offline queue there.
   */
  blocking?: boolean;
}

/** Reconnect delay: 100 ms doubling up to 2 s, with jitter so replicas do not reconnect in step. */
export function reconnectDelayMs(attempt: number): number {
  const base = Math.min(2_000, 100 * 2 ** Math.min(attempt - 1, 5));
  return base + Math.floor(Math.random() * 100);
}

export function createRedisClient(url: string, logger: Logger, opts: RedisClientOptions = {}): Redis {
  const log = getLogger(logger, 'redis');
  const client = new Redis(url, {
    enableOfflineQueue: opts.blocking === true,
    connectTimeout: opts.connectTimeoutMs ?? 2_000,
    commandTimeout: opts.blocking ? undefined : (opts.commandTimeoutMs ?? 1_000),
    maxRetriesPerRequest: opts.blocking ? null : 1,
    retryStrategy: reconnectDelayMs,
    connectionName: opts.connectionName ?? 'nest-egg',
  });
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn({ error: { message: error.message, code: (error as NodeJS.ErrnoException).code } }, 'redis_connection_error');
  });
  client.on('ready', () => {
    if (down) log.info('redis_connection_restored');
    down = false;
  });
  return client;
}

/** Closes politely (QUIT), or drops the connection when Redis does not answer. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
