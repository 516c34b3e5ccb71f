/**
 * B4: one rate-limit decision, as the request hook makes it (RateLimiter.check: policy lookup,
 * client key, store), over BENCH_DECISIONS decisions spread across 10,000 clients. Latency is
 * timed per decision one at a time (the latency a request sees); decisions per second are counted
 * one at a time for the in-process memory store and with 64 in flight for Redis, where one
 * process's requests overlap on the connection. The Redis store runs behind its memory fallback,
 * as in production, under a key prefix of its own that is deleted afterwards.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.ts';
import { createRateLimiter, type LimitRequest, type RateLimiter } from '../../src/ratelimit/limiter.ts';
import { closeRedisClient, createRedisClient } from '../../src/redis.ts';
import { deletePrefix } from '../../test/helpers/redis.ts';
import { quietLogger } from '../quiet-logger.ts';
import type { BenchSettings } from '../settings.ts';
import { Samples, fmt } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';

const CLIENTS = 10_000;
const REDIS_IN_FLIGHT = 64;

function requestsFor(clients: number): LimitRequest[] {
  return Array.from({ length: clients }, () => ({ method: 'GET', route: '/api/v1/transactions/', userId: randomUUID(), ip: '127.0.0.1' }));
}

async function timeEach(limiter: RateLimiter, requests: LimitRequest[], count: number): Promise<Samples> {
  const samples = new Samples();
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const outcome = await limiter.check(requests[i % requests.length]!);
    samples.add((performance.now() - started) * 1000);
    if (!outcome || outcome.decision.blocked) throw new Error('the bench decision was exempt or blocked: check the policies');
  }
  return samples;
}

/** Decisions per second with `inFlight` decisions outstanding at any time. */
async function throughput(limiter: RateLimiter, requests: LimitRequest[], count: number, inFlight: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < count) await limiter.check(requests[next++ % requests.length]!);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  return count / ((performance.now() - started) / 1000);
}

function rows(mode: string, store: string, latency: Samples, perSecond: number, concurrency: number): Row[] {
  const [p50, p99] = latency.percentiles(50, 99);
  return [
    {
      case: 'B4 rate limiter',
      mode,
      measure: `${store}: added latency per decision, µs`,
      result: fmt(p50!),
      note: `p50; p99 ${fmt(p99!)} µs, mean ${fmt(latency.mean())} µs over ${fmt(latency.count, 0)} decisions`,
    },
    {
      case: 'B4 rate limiter',
      mode,
      measure: `${store}: decisions per second`,
      result: fmt(perSecond),
      note: concurrency === 1 ? 'one at a time, one process' : `${concurrency} in flight, one process`,
    },
  ];
}

function limiterConfig(prefix?: string) {
  return loadConfig({
    ENVIRONMENT: 'production',
    JWT_SECRET: 'x'.repeat(32),
    BANK_SYNC_PROVIDER: 'none',
    RATE_LIMIT_POLICIES: 'transactions=1000000/60',
    ...(prefix ? { RATE_LIMIT_KEY_PREFIX: prefix } : {}),
  }).rateLimit;
}

export async function memoryStoreCase(settings: BenchSettings, progress: Progress): Promise<Row[]> {
  const limiter = createRateLimiter(limiterConfig(), undefined);
  const requests = requestsFor(CLIENTS);
  await timeEach(limiter, requests, Math.min(settings.decisions, CLIENTS));
  const latency = await timeEach(limiter, requests, settings.decisions);
  const perSecond = await throughput(limiter, requests, settings.decisions, 1);
  progress(`B4 memory store: p50 ${fmt(latency.percentiles(50)[0]!)} µs, ${fmt(perSecond)} decisions/s`);
  return rows('embedded', 'memory store', latency, perSecond, 1);
}

/** A client whose connection is up (the service's clients fail fast instead of queueing commands). */
export async function connectedRedis(redisUrl: string): Promise<Redis> {
  const redis = createRedisClient(redisUrl, quietLogger(), { connectionName: 'nest-egg-bench' });
  if (redis.status !== 'ready') {
    try {
      await once(redis, 'ready', { signal: AbortSignal.timeout(5_000) });
    } catch (err) {
      redis.disconnect();
      throw new Error(`Redis at ${redisUrl} not ready within 5 s: ${String(err)}`);
    }
  }
  return redis;
}

export async function redisStoreCase(redisUrl: string, prefix: string, settings: BenchSettings, progress: Progress): Promise<Row[]> {
  const redis = await connectedRedis(redisUrl);
  try {
    const errors: string[] = [];
    const limiter = createRateLimiter(limiterConfig(prefix), redis, { onStoreError: (reason) => errors.push(reason) });
    const requests = requestsFor(CLIENTS);
    const sequential = Math.max(100, Math.floor(settings.decisions / 10));
    await timeEach(limiter, requests, Math.min(1_000, sequential));
    const latency = await timeEach(limiter, requests, sequential);
    const perSecond = await throughput(limiter, requests, settings.decisions, REDIS_IN_FLIGHT);
    // A decision that fell back to memory measured the wrong store.
    if (errors.length > 0) throw new Error(`${errors.length} Redis store errors (${[...new Set(errors)].join(', ')}): decisions fell back to memory`);
    progress(`B4 redis store: p50 ${fmt(latency.percentiles(50)[0]!)} µs, ${fmt(perSecond)} decisions/s`);
    return rows('server', 'Redis store', latency, perSecond, REDIS_IN_FLIGHT);
  } finally {
    await deletePrefix(redis, prefix);
    await closeRedisClient(redis);
  }
}
