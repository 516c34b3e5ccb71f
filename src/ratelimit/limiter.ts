/**
 * The rate limiter: policy table + client identity + store. Knows nothing of Fastify (plugin.ts
 * wires it into the request lifecycle), so it is driven directly by unit tests.
 */
import type { Redis } from 'ioredis';
// The same `endpoint` label as the HTTP metrics: the route template without a trailing slash, one value for unmatched requests.
import { endpointLabel } from '../http/metrics.ts';
import { StoreBreaker, type StoreErrorReason } from './breaker.ts';
import { FallbackStore } from './fallback-store.ts';
import { clientId } from './identity.ts';
import { MemoryStore } from './memory-store.ts';
import { PolicyResolver, type Policy, type RateLimitOptions } from './policies.ts';
import { RedisStore } from './redis-store.ts';
import type { Decision, RateLimitDashboard, RateLimitStore } from './store.ts';


export interface RateLimitEvents {
  /** Every decision (the requests counter) and whether it blocked (the hits counter). */
  onDecision?: (endpoint: string, blocked: boolean) => void;
  onStoreError?: (reason: StoreErrorReason, error: unknown) => void;
  onModeChange?: (mode: 'shared' | 'local', reason?: StoreErrorReason, error?: unknown) => void;
}

export interface LimitRequest {
  method: string;
  /** The route template (request.routeOptions.url); undefined when no route matched. */
  route: string | undefined;
  userId: string | null;
  ip: string | undefined;
}

export interface LimitOutcome {
  policy: Policy;
  clientId: string;
  endpoint: string;
  decision: Decision;
}

export class RateLimiter {
  readonly resolver: PolicyResolver;

  constructor(
    private readonly policies: readonly Policy[],
    readonly store: RateLimitStore,
    private readonly events: RateLimitEvents = {},
  ) {
    this.resolver = new PolicyResolver(policies);
  }

  /** Counts the request against its policy; null when the route is exempt. */
  async check(req: LimitRequest): Promise<LimitOutcome | null> {
    const policy = this.resolver.match(req.method, req.route, req.userId !== null);
    if (!policy) return null;
    const client = clientId(policy, req.userId, req.ip);
    const endpoint = endpointLabel(req.route);
    const decision = await this.store.hit({
      windowId: `${policy.name}:${client}`,
      policy: policy.name,
      clientId: client,
      limit: policy.limit,
      windowSeconds: policy.windowSeconds,
      windowEndpoint: policy.endpoint,
      endpoint,
      algorithm: policy.algorithm,
    });
    this.events.onDecision?.(endpoint, decision.blocked);
    return { policy, clientId: client, endpoint, decision };
  }

  dashboard(): Promise<RateLimitDashboard> {
    return this.store.dashboard();
  }

  /**
   * Unblocks a client: forgets its windows, under every policy or only those shown with `endpoint`
   * (the dashboard's endpoint label). Its next request starts a new window. Resolves to how many
   * windows there were.
   */
  reset(clientId: string, endpoint?: string): Promise<number> {
    const ids = this.policies.filter((p) => endpoint === undefined || p.endpoint === endpoint).map((p) => `${p.name}:${clientId}`);
    return this.store.reset(ids);
  }
}

/** The breaker every user of the shared store goes through (the limiter and the sign-in throttle). */
export function createStoreBreaker(config: RateLimitOptions, events: RateLimitEvents = {}): StoreBreaker {
  return new StoreBreaker({
    timeoutMs: config.storeTimeoutMs,
    cooldownMs: config.storeCooldownMs,
    onStoreError: events.onStoreError,
    onModeChange: events.onModeChange,
  });
}

/** Memory store without Redis; Redis with a memory fallback when a client is given (through `breaker`, or one of its own). */
export function createRateLimiter(config: RateLimitOptions, redis: Redis | undefined, events: RateLimitEvents = {}, breaker?: StoreBreaker): RateLimiter {
  const memory = new MemoryStore();
  const store = redis
    ? new FallbackStore(new RedisStore(redis, config.keyPrefix), memory, { breaker: breaker ?? createStoreBreaker(config, events) })
    : memory;
  return new RateLimiter(config.policies, store, events);
}
