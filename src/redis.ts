/**
 * The one way to open Redis connections (ARCHITECTURE §2): commands fail fast instead of queueing
 * while disconnected, time out quickly, and a client reconnects forever with capped backoff. An
 * error event is logged (at most once per outage), never thrown, so a Redis outage degrades the
 * service instead of crashing it.
 *
 * A process holds its connections in one RedisConnections, made by the composition root: each
 * purpose gets one client, made on first use, and all of them are closed together.
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

/**
 * What a connection is for: `commands` (rate limits, dashboards, health: short commands that fail
 * fast), `queue` (the API's BullMQ producer), `worker` (a BullMQ worker's blocking connection).
 */
export type RedisPurpose = 'commands' | 'queue' | 'worker';

const PURPOSES: Record<RedisPurpose, RedisClientOptions> = {
  commands: { connectionName: 'nest-egg-api' },
  queue: { connectionName: 'nest-egg-api-queue' },
  worker: { connectionName: 'nest-egg-worker', blocking: true },
};

/** The process's Redis connections (REDIS_URL): none without a URL. */
export class RedisConnections {
  private readonly clients = new Map<RedisPurpose, Redis>();

  constructor(
    private readonly url: string | undefined,
    private readonly logger: Logger,
    given: Partial<Record<RedisPurpose, Redis>> = {},
  ) {
    for (const [purpose, client] of Object.entries(given)) if (client) this.clients.set(purpose as RedisPurpose, client);
  }

  get configured(): boolean {
    return this.url !== undefined || this.clients.size > 0;
  }

  /** The client for `purpose`, made on first use; undefined without REDIS_URL. */
  get(purpose: RedisPurpose): Redis | undefined {
    const existing = this.clients.get(purpose);
    if (existing || !this.url) return existing;
    const client = createRedisClient(this.url, this.logger, PURPOSES[purpose]);
    this.clients.set(purpose, client);
    return client;
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => closeRedisClient(c)));
  }
}
