/**
 * What tests of several processes in server mode share: a Postgres database of their own
 * (migrated), a Redis connection, a key prefix of their own, and the environment that points a
 * replica or a worker at them. `close()` deletes the prefix's keys and drops the database.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { openDatabase, type Database } from '../../src/db/client.ts';
import { createPostgresDatabase } from './db.ts';
import { deletePrefix } from './redis.ts';
import { REDIS_TEST_URL } from './services.ts';

export interface ReplicaBackends {
  dbUrl: string;
  /** The test's own connection to that database. */
  database: Database;
  redis: Redis;
  /** Every Redis key of the run starts with it (queue and rate-limit keys). */
  prefix: string;
  /** DATABASE_URL, REDIS_URL, the run's queue and rate-limit prefixes; no migration at start (done here). */
  env(): Record<string, string>;
  close(): Promise<void>;
}

export async function startReplicaBackends(name: string): Promise<ReplicaBackends> {
  const prefix = `nest-egg-test-${name}-${randomUUID().slice(0, 8)}`;
  const { url: dbUrl, drop } = await createPostgresDatabase();
  const database = await openDatabase({ url: dbUrl, dataDir: 'memory://', poolSize: 2 });
  await database.migrate();
  const redis = new Redis(REDIS_TEST_URL, { maxRetriesPerRequest: 1 });
  return {
    dbUrl,
    database,
    redis,
    prefix,
    env: () => ({
      DATABASE_URL: dbUrl,
      REDIS_URL: REDIS_TEST_URL,
      JOB_QUEUE_PREFIX: prefix,
      RATE_LIMIT_KEY_PREFIX: `${prefix}:rl:`,
      MIGRATE_ON_START: 'false',
    }),
    close: async () => {
      await deletePrefix(redis, `${prefix}:`).catch(() => undefined);
      redis.disconnect();
      await database.close();
      await drop();
    },
  };
}
