/**
 * The Redis store, shared by every API replica. One Lua script per decision (one round trip,
 * atomic): count the attempt in the window, start the window's TTL on its first attempt, and
 * record it for the dashboard. Every key has a TTL, and every structure is bounded:
 *
 *   <prefix>w:<policy>:<client>   hash {n, l, w, e, c}: the window (count, limit, seconds, endpoint,
 *                                 client); TTL = the window. Sliding windows add {s, b}: a sequence
 *                                 for log members and the attempts refused since the last admitted one
 *   <prefix>log:<policy>:<client> zset (sliding windows only): one member per admitted request,
 *                                 scored by its time (ms), at most `limit` members; same TTL as
 *                                 its hash (the newest member's time + the window)
 *   <prefix>active:exp            zset window id -> expiry (ms); at most ACTIVE_CAP members
 *   <prefix>active:n              zset window id -> count; same members (the busiest first)
 *   <prefix>m:<minute>            hash {total, blocked} for one minute; TTL 62 min
 *   <prefix>m:<minute>:c / :e     zsets of clients / endpoints for that minute, at most
 *                                 PER_MINUTE_CAP members each (Space-Saving); TTL 62 min
 *
 * The dashboard reads at most 100 windows and 60 minute buckets in one script: no KEYS, no SCAN.
 * Written for a standalone Redis (the dashboard script derives window keys from member names).
 */
import type { Redis } from 'ioredis';
import {
  DASHBOARD_ACTIVE_LIMIT, DASHBOARD_TOP, HOUR_MINUTES, decisionFor, isoSeconds, minuteOf,
  type Decision, type Hit, type RateLimitDashboard, type RateLimitStore,
} from './store.ts';

const ACTIVE_CAP = 10_000;
const PER_MINUTE_CAP = 1_000;
const STATS_TTL_SECONDS = (HOUR_MINUTES + 2) * 60;

const HIT_SCRIPT = `
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[12] ~= '' then now = tonumber(ARGV[12]) end
local n, ttl, blocked, reset, remaining
if ARGV[11] == 'sliding' then
  -- The log: one member per admitted request, scored by its time; refused attempts are only counted.
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - window_ms)
  local admitted = redis.call('ZCARD', KEYS[7])
  if admitted < limit then
    local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
    redis.call('ZADD', KEYS[7], now, now .. ':' .. seq)
    admitted = admitted + 1
    redis.call('HSET', KEYS[1], 'b', 0)
    blocked = 0
    n = admitted
  else
    blocked = 1
    n = admitted + redis.call('HINCRBY', KEYS[1], 'b', 1)
  end
  local oldest = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
  local newest = redis.call('ZRANGE', KEYS[7], -1, -1, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window_ms - now
  ttl = tonumber(newest[2]) + window_ms - now
  remaining = limit - admitted
  redis.call('HSET', KEYS[1], 'n', n)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[7], ttl)
else
  n = redis.call('HINCRBY', KEYS[1], 'n', 1)
  ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], window_ms)
    ttl = window_ms
  end
  blocked = 0
  if n > limit then blocked = 1 end
  reset = ttl
  remaining = limit - n
end
redis.call('HSET', KEYS[1], 'l', ARGV[1], 'w', ARGV[7], 'e', ARGV[6], 'c', ARGV[4])

redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
redis.call('ZADD', KEYS[3], n, ARGV[3])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 16)
local excess = redis.call('ZCARD', KEYS[2]) - #gone - tonumber(ARGV[8])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], #gone, #gone + math.min(excess, 16) - 1)
  for _, m in ipairs(oldest) do table.insert(gone, m) end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[2], unpack(gone))
  redis.call('ZREM', KEYS[3], unpack(gone))
end
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < window_ms then redis.call('PEXPIRE', KEYS[i], window_ms) end
end

local stats_ttl = tonumber(ARGV[10])
local cap = tonumber(ARGV[9])
redis.call('HINCRBY', KEYS[4], 'total', 1)
if blocked == 1 then redis.call('HINCRBY', KEYS[4], 'blocked', 1) end
redis.call('EXPIRE', KEYS[4], stats_ttl)
for i = 5, 6 do
  local member = ARGV[i - 1]
  if redis.call('ZSCORE', KEYS[i], member) or redis.call('ZCARD', KEYS[i]) < cap then
    redis.call('ZINCRBY', KEYS[i], 1, member)
  else
    local smallest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    redis.call('ZREM', KEYS[i], smallest[1])
    redis.call('ZADD', KEYS[i], tonumber(smallest[2]) + 1, member)
  end
  redis.call('EXPIRE', KEYS[i], stats_ttl)
end
return {n, blocked, reset, remaining}
`;

// KEYS: 1 active:exp, 2 active:n, 3 and 4 scratch keys, then HOUR_MINUTES each of minute hashes,
// client zsets and endpoint zsets. ARGV: 1 window key prefix, 2 windows to list, 3 top length.
const DASHBOARD_SCRIPT = `
local minutes = ${HOUR_MINUTES}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
local active = {}
for _, m in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1)) do
  local key = ARGV[1] .. m
  local f = redis.call('HMGET', key, 'n', 'l', 'w', 'e', 'c')
  local ttl = redis.call('PTTL', key)
  if f[1] and ttl > 0 then
    table.insert(active, {f[1], f[2] or '0', f[3] or '0', f[4] or '', f[5] or '', ttl})
  end
end
local total, blocked = 0, 0
for i = 5, 4 + minutes do
  local v = redis.call('HMGET', KEYS[i], 'total', 'blocked')
  total = total + (tonumber(v[1]) or 0)
  blocked = blocked + (tonumber(v[2]) or 0)
end
local top = tonumber(ARGV[3]) - 1
redis.call('ZUNIONSTORE', KEYS[3], minutes, unpack(KEYS, 5 + minutes, 4 + 2 * minutes))
local clients = redis.call('ZREVRANGE', KEYS[3], 0, top, 'WITHSCORES')
redis.call('ZUNIONSTORE', KEYS[4], minutes, unpack(KEYS, 5 + 2 * minutes, 4 + 3 * minutes))
local endpoints = redis.call('ZREVRANGE', KEYS[4], 0, top, 'WITHSCORES')
redis.call('DEL', KEYS[3], KEYS[4])
return {active, total, blocked, clients, endpoints}
`;

type HitReply = [number, number, number, number];
type DashboardReply = [[string, string, string, string, string, number][], number, number, string[], string[]];

interface ScriptedRedis {
  nestEggRateLimitHit(...args: (string | number)[]): Promise<HitReply>;
  nestEggRateLimitDashboard(...args: (string | number)[]): Promise<DashboardReply>;
}

function pairs(flat: string[]): [string, number][] {
  const out: [string, number][] = [];
  // Stryker disable next-line EqualityOperator: equivalent, WITHSCORES replies have an even length, so i + 1 <= length stops at the same pair
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

export class RedisStore implements RateLimitStore {
  readonly kind = 'redis' as const;
  private readonly scripted: ScriptedRedis;

  private readonly now: () => number;
  /** True when the clock was injected (tests): it then replaces Redis's TIME in the windows too. */
  private readonly sendClock: boolean;

  constructor(
    readonly client: Redis,
    /** Every key starts with this, e.g. `nest-egg:rl:`. */
    private readonly prefix: string,
    /**
     * By default windows run on Redis's clock (TIME in the script), one clock for every replica,
     * and this process's clock only picks the dashboard's minute buckets. A clock given here is
     * used for both (tests drive windows with it).
     */
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
    // Stryker disable next-line ConditionalExpression: equivalent on one host: sending Date.now() instead of using Redis's TIME differs only by the skew between two clocks, which a test on one machine cannot have
    this.sendClock = now !== undefined;
    // defineCommand sends EVALSHA and falls back to EVAL once after a restart (NOSCRIPT).
    client.defineCommand('nestEggRateLimitHit', { numberOfKeys: 7, lua: HIT_SCRIPT });
    client.defineCommand('nestEggRateLimitDashboard', { numberOfKeys: 4 + 3 * HOUR_MINUTES, lua: DASHBOARD_SCRIPT });
    this.scripted = client as unknown as ScriptedRedis;
  }

  /** False while disconnected: commands would fail at once (there is no offline queue). */
  available(): boolean {
    return this.client.status === 'ready';
  }

  async hit(h: Hit): Promise<Decision> {
    const now = this.now();
    const minute = minuteOf(now);
    const p = this.prefix;
    const sliding = h.algorithm === 'sliding';
    const [count, blocked, resetMs, remaining] = await this.scripted.nestEggRateLimitHit(
      `${p}w:${h.windowId}`, `${p}active:exp`, `${p}active:n`, `${p}m:${minute}`, `${p}m:${minute}:c`, `${p}m:${minute}:e`, `${p}log:${h.windowId}`,
      h.limit, h.windowSeconds * 1000, h.windowId, h.clientId, h.endpoint, h.windowEndpoint, h.windowSeconds,
      ACTIVE_CAP, PER_MINUTE_CAP, STATS_TTL_SECONDS, sliding ? 'sliding' : 'fixed', this.sendClock ? now : '',
    );
    // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent, for a fixed window the script returns exactly decisionFor's fields (blocked = n > limit, remaining = limit - n, reset = ttl), both paths clamp at 0
    if (!sliding) return decisionFor(Number(count), h.limit, Number(resetMs));
    return { count: Number(count), limit: h.limit, remaining: Math.max(0, Number(remaining)), blocked: Number(blocked) === 1, resetMs: Math.max(0, Number(resetMs)) };
  }

  async dashboard(): Promise<RateLimitDashboard> {
    const now = this.now();
    const last = minuteOf(now);
    const p = this.prefix;
    const minutes = Array.from({ length: HOUR_MINUTES }, (_, i) => last - HOUR_MINUTES + 1 + i);
    // Scratch keys for ZUNIONSTORE: a script runs atomically, so one fixed pair serves every caller.
    // Stryker disable next-line StringLiteral: equivalent, the scratch keys are written and deleted inside one atomic script: their name is never seen
    const scratch = `${p}scratch`;
    const [active, total, blocked, clients, endpoints] = await this.scripted.nestEggRateLimitDashboard(
      `${p}active:exp`, `${p}active:n`, `${scratch}:c`, `${scratch}:e`,
      ...minutes.map((m) => `${p}m:${m}`),
      ...minutes.map((m) => `${p}m:${m}:c`),
      ...minutes.map((m) => `${p}m:${m}:e`),
      `${p}w:`, DASHBOARD_ACTIVE_LIMIT, DASHBOARD_TOP,
    );
    return {
      current_active_limits: active.map(([n, l, w, e, c, ttl]) => ({
        endpoint: e,
        client_id: c,
        requests: Number(n),
        limit: Number(l),
        window_seconds: Number(w),
        resets_at: isoSeconds(now + Number(ttl)),
        blocked: Number(n) > Number(l),
      })),
      total_requests_last_hour: Number(total),
      blocked_requests_last_hour: Number(blocked),
      top_clients: pairs(clients).map(([client_id, requests]) => ({ client_id, requests })),
      top_endpoints: pairs(endpoints).map(([endpoint, requests]) => ({ endpoint, requests })),
    };
  }

  /** One MULTI: each window's hash and log, and its entries in the two active-window sets. */
  async reset(windowIds: readonly string[]): Promise<number> {
    if (windowIds.length === 0) return 0;
    const p = this.prefix;
    const tx = this.client.multi();
    for (const id of windowIds) tx.del(`${p}w:${id}`, `${p}log:${id}`);
    tx.zrem(`${p}active:exp`, ...windowIds).zrem(`${p}active:n`, ...windowIds);
    const replies = (await tx.exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    // DEL counts the hash and the log: a window is there when either was.
    return replies.slice(0, windowIds.length).filter(([, n]) => Number(n) > 0).length;
  }
}
