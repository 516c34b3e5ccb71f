/**
 * Per-account throttling of failed sign-ins: the defence against credential stuffing that the
 * per-IP limit cannot give (an attacker with many addresses gets a full quota from each).
 *
 * State is kept per account, under a keyed hash (HMAC-SHA256) of the normalized email, never the
 * email itself: Redis holds no addresses, and without the key a dump of Redis cannot be matched
 * against a list of emails. The key is derived from the JWT secret, which every replica shares.
 * Unknown emails are throttled exactly like known ones (the store never learns which is which), so
 * the answer reveals nothing about whether an account exists.
 *
 * An attempt is counted as a failure *before* the password is checked, atomically with the lock
 * check (one script in Redis, one synchronous step in memory), and a success wipes the streak. So
 * concurrent attempts spread over many replicas cannot all slip past the check while the first
 * failures are still being verified: at most `failures` attempts are admitted before the lock.
 * After `failures` consecutive failures the account is locked for `baseMs`, and each failure
 * admitted after a lock ends doubles it, up to `maxMs`. Refused attempts do not extend the lock
 * (the password is not even looked at), so a locked-out owner can sign in once the lock ends.
 *
 * Shared through Redis in server mode, in memory in embedded mode, and through the same
 * StoreBreaker as the rate limiter when Redis fails (per-process memory until it is back).
 */
import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { StoreBreaker } from './breaker.ts';

export interface LoginThrottleOptions {
  enabled: boolean;
  /** Consecutive failures after which the account is locked. */
  failures: number;
  /** The first lock; each further failure doubles it. */
  baseMs: number;
  /** The cap of the lock. */
  maxMs: number;
  /** How long a streak of failures is remembered after its last failure (beyond its lock). */
  memoryMs: number;
}

/** What the store says about one attempt. */
export type ThrottleVerdict =
  /** Admitted: `failures` is the streak with this attempt counted; `lockMs` > 0 when this attempt locked the account (until a success undoes it). */
  | { admitted: true; failures: number; lockMs: number }
  /** Refused: the account is locked for `retryAfterMs` more. */
  | { admitted: false; retryAfterMs: number };

export interface AccountThrottleStore {
  begin(key: string, o: LoginThrottleOptions): Promise<ThrottleVerdict>;
  reset(key: string): Promise<void>;
}

/** The lock after `failures` consecutive failures (0 below the threshold). */
export function lockDurationMs(failures: number, o: LoginThrottleOptions): number {
  if (failures < o.failures) return 0;
  const doublings = failures - o.failures;
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a guard against huge powers of two: 2 ** d overflows to Infinity at worst and Math.min caps it at maxMs all the same
  return doublings >= 40 ? o.maxMs : Math.min(o.maxMs, Math.floor(o.baseMs * 2 ** doublings));
}

interface Streak {
  failures: number;
  lockedUntil: number;
  expiresAt: number;
}

/** Embedded mode, and the fallback while Redis is away. Bounded: the oldest streak is forgotten when full. */
export class MemoryAccountStore implements AccountThrottleStore {
  private readonly streaks = new Map<string, Streak>();
  private lastSweepAt = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 100_000,
  ) {}

  get size(): number {
    return this.streaks.size;
  }

  async begin(key: string, o: LoginThrottleOptions): Promise<ThrottleVerdict> {
    const now = this.now();
    let s = this.streaks.get(key);
    if (s && s.expiresAt <= now) {
      this.streaks.delete(key);
      s = undefined;
    }
    if (s && s.lockedUntil > now) return { admitted: false, retryAfterMs: s.lockedUntil - now };
    if (!s) {
      if (this.streaks.size >= this.maxEntries) this.makeRoom(now);
      s = { failures: 0, lockedUntil: 0, expiresAt: 0 };
    } else {
      // Re-inserted below, so Map order stays "least recently failed first" for eviction.
      this.streaks.delete(key);
    }
    s.failures++;
    const lockMs = lockDurationMs(s.failures, o);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent, a lock until now is no lock (the check is lockedUntil > now on a clock that does not go back)
    if (lockMs > 0) s.lockedUntil = now + lockMs;
    s.expiresAt = now + lockMs + o.memoryMs;
    this.streaks.set(key, s);
    return { admitted: true, failures: s.failures, lockMs };
  }

  async reset(key: string): Promise<void> {
    this.streaks.delete(key);
  }

  private makeRoom(now: number): void {
    if (now - this.lastSweepAt >= 1_000) {
      this.lastSweepAt = now;
      for (const [k, s] of this.streaks) if (s.expiresAt <= now) this.streaks.delete(k);
    }
    while (this.streaks.size >= this.maxEntries) this.streaks.delete(this.streaks.keys().next().value as string);
  }
}

// KEYS: 1 the account's hash {f: failures, u: locked until (ms)}. ARGV: 1 failures, 2 base ms,
// 3 max ms, 4 memory ms, 5 the clock ('' = Redis's TIME, one clock for every replica).
const BEGIN_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[5] ~= '' then now = tonumber(ARGV[5]) end
local v = redis.call('HMGET', KEYS[1], 'f', 'u')
local f = tonumber(v[1]) or 0
local u = tonumber(v[2]) or 0
if u > now then return {0, u - now, f} end
f = f + 1
local threshold = tonumber(ARGV[1])
local lock = 0
if f >= threshold then
  local doublings = f - threshold
  if doublings >= 40 then lock = tonumber(ARGV[3]) else lock = math.min(tonumber(ARGV[3]), math.floor(tonumber(ARGV[2]) * 2 ^ doublings)) end
  u = now + lock
end
redis.call('HSET', KEYS[1], 'f', f, 'u', u)
redis.call('PEXPIRE', KEYS[1], lock + tonumber(ARGV[4]))
return {1, lock, f}
`;

interface ScriptedRedis {
  nestEggLoginThrottleBegin(key: string, ...args: (string | number)[]): Promise<[number, number, number]>;
}

/** Server mode: one hash per account with a streak, `<prefix>acct:<keyed hash>`, with a TTL. */
export class RedisAccountStore implements AccountThrottleStore {
  private readonly scripted: ScriptedRedis;
  private readonly sendClock: boolean;
  private readonly now: () => number;

  constructor(
    readonly client: Redis,
    private readonly prefix: string,
    /** By default Redis's clock (every replica agrees); a clock given here replaces it (tests). */
    now?: () => number,
  ) {
    client.defineCommand('nestEggLoginThrottleBegin', { numberOfKeys: 1, lua: BEGIN_SCRIPT });
    this.scripted = client as unknown as ScriptedRedis;
    this.sendClock = now !== undefined;
    this.now = now ?? Date.now;
  }

  available(): boolean {
    return this.client.status === 'ready';
  }

  async begin(key: string, o: LoginThrottleOptions): Promise<ThrottleVerdict> {
    const [admitted, ms, failures] = await this.scripted.nestEggLoginThrottleBegin(
      `${this.prefix}acct:${key}`, o.failures, o.baseMs, o.maxMs, o.memoryMs, this.sendClock ? this.now() : '',
    );
    return Number(admitted) === 1 ? { admitted: true, failures: Number(failures), lockMs: Number(ms) } : { admitted: false, retryAfterMs: Number(ms) };
  }

  async reset(key: string): Promise<void> {
    await this.client.del(`${this.prefix}acct:${key}`);
  }
}

/** Redis through the shared breaker, memory when it is open or Redis fails. */
export class FallbackAccountStore implements AccountThrottleStore {
  constructor(
    readonly primary: RedisAccountStore,
    readonly fallback: MemoryAccountStore,
    private readonly breaker: StoreBreaker,
  ) {}

  begin(key: string, o: LoginThrottleOptions): Promise<ThrottleVerdict> {
    return this.breaker.run(() => this.primary.available(), () => this.primary.begin(key, o), () => this.fallback.begin(key, o));
  }

  async reset(key: string): Promise<void> {
    // Both: a streak counted in memory during an outage must not outlive the success either.
    await this.fallback.reset(key);
    await this.breaker.run(() => this.primary.available(), () => this.primary.reset(key), () => undefined);
  }
}

/** One sign-in attempt as the throttle sees it. */
export type ThrottleAttempt = ThrottleVerdict & {
  /** The account's keyed hash, shortened: safe to log, and the same for every attempt on one account. */
  account: string;
  key: string;
};

export class AccountThrottle {
  private readonly hmacKey: Buffer;

  constructor(
    readonly options: LoginThrottleOptions,
    readonly store: AccountThrottleStore,
    /** A secret every replica shares (the JWT secret): the key of the account hash is derived from it. */
    secret: string,
  ) {
    this.hmacKey = createHmac('sha256', secret).update('nest-egg login throttle account key v1').digest();
  }

  /** The keyed hash of a normalized email (128 bits, hex). */
  accountKey(normalizedEmail: string): string {
    return createHmac('sha256', this.hmacKey).update(normalizedEmail, 'utf8').digest('hex').slice(0, 32);
  }

  /** Counts the attempt (as a failure until `succeeded`) or refuses it while the account is locked. */
  async begin(normalizedEmail: string): Promise<ThrottleAttempt> {
    const key = this.accountKey(normalizedEmail);
    const account = key.slice(0, 16);
    if (!this.options.enabled) return { admitted: true, failures: 0, lockMs: 0, account, key };
    return { ...(await this.store.begin(key, this.options)), account, key };
  }

  /** The password was right: the streak (and the lock this attempt may have started) is gone. */
  async succeeded(attempt: ThrottleAttempt): Promise<void> {
    if (this.options.enabled) await this.store.reset(attempt.key);
  }
}

export function createAccountThrottle(
  options: LoginThrottleOptions,
  deps: { redis?: Redis; keyPrefix: string; breaker?: StoreBreaker; secret: string },
): AccountThrottle {
  const memory = new MemoryAccountStore();
  const store = deps.redis && deps.breaker ? new FallbackAccountStore(new RedisAccountStore(deps.redis, deps.keyPrefix), memory, deps.breaker) : memory;
  return new AccountThrottle(options, store, deps.secret);
}
