/**
 * The store contract shared by the memory and Redis stores.
 *
 * Two kinds of window (the policy's `algorithm`):
 * - `fixed`: starts at a client's first request and lasts the policy's `windowSeconds` (a counter
 *   with a TTL). Every attempt is counted, blocked ones too, so a client that keeps hammering stays
 *   blocked until its window ends, and the dashboard's `requests` is the number of attempts. Cheap,
 *   and right for the general quotas; but a client can spend one quota at the end of a window and
 *   another at the start of the next (2 × limit within a moment).
 * - `sliding`: a log of the admitted requests' times, at most `limit` of them. A request is admitted
 *   only while fewer than `limit` were admitted in the last `windowSeconds`, so no span of
 *   `windowSeconds`, wherever it starts, admits more than `limit`. Refused attempts are not logged
 *   (they spend nothing, and the log stays bounded by the limit) but are counted for the dashboard.
 *   Used by the credential endpoints. See docs/MONITORING.md.
 */

export interface Hit {
  /** `<policy>:<client id>`: one window per policy and client. */
  windowId: string;
  policy: string;
  clientId: string;
  limit: number;
  windowSeconds: number;
  /** The policy's endpoint label, shown for the window on the dashboard. */
  windowEndpoint: string;
  /** The route template (or the fixed `unmatched` value), counted in the hour's top endpoints. */
  endpoint: string;
  /** The policy's algorithm; `fixed` when left out. */
  algorithm?: 'fixed' | 'sliding';
}

export interface Decision {
  /** Attempts in the current window, this one included. */
  count: number;
  limit: number;
  remaining: number;
  blocked: boolean;
  /** Milliseconds until the window ends (sliding: until the oldest admitted request leaves it, freeing a slot). */
  resetMs: number;
}

export interface ActiveLimit {
  endpoint: string;
  client_id: string;
  requests: number;
  limit: number;
  window_seconds: number;
  resets_at: string;
  blocked: boolean;
}

/** Exactly the guide's Rate Limiting Dashboard response. */
export interface RateLimitDashboard {
  current_active_limits: ActiveLimit[];
  total_requests_last_hour: number;
  blocked_requests_last_hour: number;
  top_clients: { client_id: string; requests: number }[];
  top_endpoints: { endpoint: string; requests: number }[];
}

export interface RateLimitStore {
  readonly kind: 'memory' | 'redis';
  hit(h: Hit): Promise<Decision>;
  dashboard(): Promise<RateLimitDashboard>;
  /** Forgets these windows (an operator unblocking a client); resolves to how many there were. */
  reset(windowIds: readonly string[]): Promise<number>;
}

/** How many windows the dashboard lists (the busiest first), and the length of each top list. */
export const DASHBOARD_ACTIVE_LIMIT = 100;
export const DASHBOARD_TOP = 10;
/** The rolling hour: the current minute and the 59 before it. */
export const HOUR_MINUTES = 60;

export function decisionFor(count: number, limit: number, resetMs: number): Decision {
  return { count, limit, remaining: Math.max(0, limit - count), blocked: count > limit, resetMs: Math.max(0, resetMs) };
}

/** The guide writes `2024-02-17T10:35:00Z`: whole seconds, rounded up so it is never early. */
export function isoSeconds(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function minuteOf(ms: number): number {
  return Math.floor(ms / 60_000);
}
