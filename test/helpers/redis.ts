/**
 * Keys under a prefix of a test's or the bench's own (SCAN, never KEYS: the server may be shared).
 */
import type { Redis } from 'ioredis';

/** Every key whose name starts with `prefix`. */
export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key whose name starts with `prefix`; returns how many there were. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  const keys = await keysWithPrefix(redis, prefix);
  for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  return keys.length;
}
