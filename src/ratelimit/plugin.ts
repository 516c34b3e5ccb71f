/**
 * Rate limiting in the request lifecycle. Registered after the auth plugin, so its onRequest hook
 * runs once request.userId is known and before any body is parsed. Every limited response carries
 * the draft-ietf-httpapi-ratelimit-headers fields; a refused one is a 429 problem+json with
 * Retry-After. The limiter is decorated as app.rateLimiter for the admin dashboard, also when
 * RATE_LIMIT_ENABLED=false (then there is no hook and the dashboard stays empty).
 */
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { endpointLabel } from '../http/metrics.ts';
import { AppError } from '../lib/errors.ts';
import { getLogger, type Logger } from '../observability/logging.ts';
import { createAccountThrottle, type AccountThrottle, type LoginThrottleOptions } from './account-throttle.ts';
import { createRateLimiter, createStoreBreaker, type RateLimitEvents, type RateLimiter } from './limiter.ts';
import { policyHeader, rateLimitHeader, type RateLimitOptions } from './policies.ts';

declare module 'fastify' {
  interface FastifyInstance {
    rateLimiter: RateLimiter;
    /** Per-account throttling of failed sign-ins, used by the login route. */
    loginThrottle: AccountThrottle;
  }
}

interface LabelledCounter<L extends string> {
  inc(labels: Record<L, string>): void;
}

export interface RateLimitMetrics {
  /** rate_limit_requests_total{endpoint}: every decision. */
  requests: LabelledCounter<'endpoint'>;
  /** rate_limit_hits_total{endpoint}: every refusal. */
  hits: LabelledCounter<'endpoint'>;
  /** Failed or timed-out calls to the shared store, by reason. */
  storeErrors?: LabelledCounter<'reason'>;
  /** Called once for each route template a policy covers (to start its series at zero). */
  limitedRoute?: (endpoint: string) => void;
}

export interface RateLimitPluginOptions {
  config: RateLimitOptions;
  /** The shared store's client (REDIS_URL); without it limits are per process. */
  redis?: Redis;
  metrics?: RateLimitMetrics;
  /** The per-account sign-in throttle (on whatever RATE_LIMIT_ENABLED says). */
  loginThrottle: LoginThrottleOptions;
  /** A secret every replica shares, from which the throttle's account-hash key is derived. */
  accountKeySecret: string;
}

export default fp<RateLimitPluginOptions>(
  async (app, opts) => {
    const log = getLogger(app.log as Logger, 'ratelimit');
    const events: RateLimitEvents = {
      onDecision: (endpoint, blocked) => {
        opts.metrics?.requests.inc({ endpoint });
        if (blocked) opts.metrics?.hits.inc({ endpoint });
      },
      onStoreError: (reason) => opts.metrics?.storeErrors?.inc({ reason }),
      // One line per switch, not per failed call: an outage must not flood the log.
      onModeChange: (mode, reason, error) => {
        if (mode === 'local') log.warn({ reason, error: { message: (error as Error | undefined)?.message } }, 'rate_limit_store_fallback');
        else log.info('rate_limit_store_restored');
      },
    };
    // One breaker for everything this process keeps in the shared store: one outage, one switch.
    const breaker = opts.redis ? createStoreBreaker(opts.config, events) : undefined;
    const limiter = createRateLimiter(opts.config, opts.redis, events, breaker);
    app.decorate('rateLimiter', limiter);
    app.decorate(
      'loginThrottle',
      createAccountThrottle(opts.loginThrottle, { redis: opts.redis, keyPrefix: opts.config.keyPrefix, breaker, secret: opts.accountKeySecret }),
    );
    if (!opts.config.enabled) return;

    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const covered = methods.some((m) => limiter.resolver.match(m, route.url, true) || limiter.resolver.match(m, route.url, false));
      if (covered) opts.metrics?.limitedRoute?.(endpointLabel(route.url));
    });

    app.addHook('onRequest', async (request, reply) => {
      let outcome;
      try {
        outcome = await limiter.check({ method: request.method, route: request.routeOptions.url, userId: request.userId, ip: request.ip });
      } catch (error) {
        // Both stores failing is a bug, not a reason to refuse service: let the request through.
        request.log.error({ error }, 'rate_limit_check_failed');
        return;
      }
      if (!outcome) return;
      const { policy, decision } = outcome;
      const resetSeconds = Math.ceil(decision.resetMs / 1000);
      reply.header('ratelimit-policy', policyHeader(policy));
      reply.header('ratelimit', rateLimitHeader(policy, decision.remaining, resetSeconds));
      if (!decision.blocked) return;
      reply.header('retry-after', String(Math.max(1, resetSeconds)));
      // One warning per window and client; the attempts after it are counted, not logged.
      const fields = { policy: policy.name, client_id: outcome.clientId, ip: request.ip, endpoint: outcome.endpoint, limit: policy.limit, window_seconds: policy.windowSeconds };
      if (decision.count === policy.limit + 1) getLogger(request.log as Logger, 'ratelimit').warn(fields, 'rate_limit_exceeded');
      else request.log.debug(fields, 'rate_limit_exceeded');
      throw new AppError(429, `Rate limit exceeded: ${policy.limit} requests per ${policy.windowSeconds} s (policy ${policy.name}); retry after ${Math.max(1, resetSeconds)} s`);
    });
  },
  { name: 'rate-limit', dependencies: ['auth'] },
);
