/**
 * The rate-limit policies, in one table. A request is counted against the first policy that
 * matches its method, route template (request.routeOptions.url, never the raw path) and whether
 * it carries a valid token. Quotas are overridable with RATE_LIMIT_POLICIES (see config.ts).
 * This module is plain data and functions: config.ts imports it to validate the overrides.
 */

export type PolicyName =
  | 'auth-login'
  | 'auth-register'
  | 'auth-refresh'
  | 'ops-console'
  | 'plaid-webhook'
  | 'bank-linking'
  | 'budget-check-alerts'
  | 'transactions'
  | 'default'
  | 'anonymous';

export interface Policy {
  name: PolicyName;
  /** What the dashboard shows as `endpoint` for a window of this policy. */
  endpoint: string;
  /** HTTP methods it applies to; undefined for every method. */
  methods?: readonly string[];
  /** Route templates: exact, `/prefix/*` for the prefix and everything beneath it, or `*` for any route. */
  routes: readonly string[];
  /** Which callers it applies to: with a valid token, without one, or either. */
  callers: 'user' | 'anonymous' | 'any';
  /**
   * Whose quota: `client` is the user id when the token is valid, else the IP; `ip` is always the IP
   * (credential endpoints, so one attacker cannot multiply attempts by holding many accounts' tokens).
   */
  key: 'client' | 'ip';
  limit: number;
  windowSeconds: number;
  /**
   * `fixed`: a counter that starts at the client's first request and lasts `windowSeconds` (cheap:
   * one hash per client). `sliding`: a log of the admitted requests, so that no `windowSeconds`
   * span, wherever it starts, admits more than `limit` (the credential endpoints: a fixed window
   * lets a client spend two quotas across one boundary). See docs/MONITORING.md.
   */
  algorithm: 'fixed' | 'sliding';
}

/** First match wins, so specific policies come before the two defaults. */
export const POLICIES: readonly Policy[] = [
  { name: 'auth-login', endpoint: '/api/v1/auth/login', methods: ['POST'], routes: ['/api/v1/auth/login', '/ops/api/session'], callers: 'any', key: 'ip', limit: 10, windowSeconds: 60, algorithm: 'sliding' },
  { name: 'auth-register', endpoint: '/api/v1/auth/register', methods: ['POST'], routes: ['/api/v1/auth/register'], callers: 'any', key: 'ip', limit: 10, windowSeconds: 3600, algorithm: 'sliding' },
  { name: 'auth-refresh', endpoint: '/api/v1/auth/refresh', methods: ['POST'], routes: ['/api/v1/auth/refresh'], callers: 'any', key: 'ip', limit: 30, windowSeconds: 60, algorithm: 'sliding' },
  // The provider's webhook calls come from a few provider addresses: generous, but not unlimited.
  // The operator console's own calls (its sign-in is auth-login's): apart from the API's budgets, so an
  // open console never eats an address's anonymous allowance, and bounded for anyone without a session.
  { name: 'ops-console', endpoint: '/ops', routes: ['/ops/*'], callers: 'any', key: 'ip', limit: 600, windowSeconds: 60, algorithm: 'fixed' },
  { name: 'plaid-webhook', endpoint: '/api/v1/plaid/webhook', methods: ['POST'], routes: ['/api/v1/plaid/webhook'], callers: 'any', key: 'ip', limit: 600, windowSeconds: 60, algorithm: 'fixed' },
  { name: 'bank-linking', endpoint: '/api/v1/plaid', routes: ['/api/v1/plaid/*'], callers: 'any', key: 'client', limit: 20, windowSeconds: 60, algorithm: 'fixed' },
  { name: 'budget-check-alerts', endpoint: '/api/v1/budgets/check-alerts', methods: ['POST'], routes: ['/api/v1/budgets/check-alerts'], callers: 'any', key: 'client', limit: 10, windowSeconds: 60, algorithm: 'fixed' },
  // The guide's example: 100 requests per 60 s on transactions.
  { name: 'transactions', endpoint: '/api/v1/transactions', routes: ['/api/v1/transactions/*'], callers: 'any', key: 'client', limit: 100, windowSeconds: 60, algorithm: 'fixed' },
  { name: 'default', endpoint: '/api/v1', routes: ['*'], callers: 'user', key: 'client', limit: 300, windowSeconds: 60, algorithm: 'fixed' },
  { name: 'anonymous', endpoint: '/api/v1', routes: ['*'], callers: 'anonymous', key: 'client', limit: 60, windowSeconds: 60, algorithm: 'fixed' },
];

export const POLICY_NAMES: readonly string[] = POLICIES.map((p) => p.name);

/** Never limited: liveness, metrics, the API docs and the readiness probe. */
const EXEMPT_EXACT = new Set(['/health', '/metrics', '/api/v1/monitoring/health']);

export function isExempt(route: string | undefined): boolean {
  if (route === undefined) return false;
  return EXEMPT_EXACT.has(route) || route === '/docs' || route.startsWith('/docs/');
}

export interface PolicyOverride {
  limit: number;
  windowSeconds: number;
}

/** The table with configured quotas applied. */
export function resolvePolicies(overrides: Partial<Record<string, PolicyOverride>> = {}): Policy[] {
  return POLICIES.map((p) => {
    const o = overrides[p.name];
    return o ? { ...p, limit: o.limit, windowSeconds: o.windowSeconds } : { ...p };
  });
}

function routeMatches(pattern: string, route: string | undefined): boolean {
  if (pattern === '*') return true;
  if (route === undefined) return false;
  if (pattern.endsWith('/*')) {
    const base = pattern.slice(0, -2);
    return route === base || route.startsWith(`${base}/`);
  }
  return route === pattern;
}

/**
 * Picks the policy for a request. Matches are cached per (method, template, caller kind): the set
 * of route templates is finite, so the cache is bounded. Unmatched requests (404s) fall under the
 * caller's default policy, so a scanner cannot probe unknown paths without limit.
 */
export class PolicyResolver {
  private readonly cache = new Map<string, Policy | null>();

  constructor(readonly policies: readonly Policy[]) {}

  match(method: string, route: string | undefined, authenticated: boolean): Policy | null {
    if (isExempt(route)) return null;
    const cacheKey = route === undefined ? undefined : `${method} ${route} ${authenticated ? 'u' : 'a'}`;
    if (cacheKey !== undefined) {
      const hit = this.cache.get(cacheKey);
      if (hit !== undefined) return hit;
    }
    const found =
      this.policies.find(
        (p) =>
          (p.methods === undefined || p.methods.includes(method)) &&
          (p.callers === 'any' || (p.callers === 'user') === authenticated) &&
          p.routes.some((r) => routeMatches(r, route)),
      ) ?? null;
    if (cacheKey !== undefined) this.cache.set(cacheKey, found);
    return found;
  }
}

/** `RateLimit-Policy: "default";q=100;w=60` (draft-ietf-httpapi-ratelimit-headers). */
export function policyHeader(p: Policy): string {
  return `"${p.name}";q=${p.limit};w=${p.windowSeconds}`;
}

/** `RateLimit: "default";r=42;t=18`: remaining quota and seconds until the window resets. */
export function rateLimitHeader(p: Policy, remaining: number, resetSeconds: number): string {
  return `"${p.name}";r=${remaining};t=${resetSeconds}`;
}

/** What the rate limiter is configured with (config.ts maps the environment onto it). */
export interface RateLimitOptions {
  enabled: boolean;
  /** The policies table with RATE_LIMIT_POLICIES applied. */
  policies: Policy[];
  /** Redis key prefix of the shared store. */
  keyPrefix: string;
  /** How long a decision may wait on Redis before falling back to memory. */
  storeTimeoutMs: number;
  /** After a Redis failure, how long decisions skip Redis. */
  storeCooldownMs: number;
}
