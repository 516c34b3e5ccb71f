/**
 * The login route's side of the per-account throttle (src/ratelimit/account-throttle.ts) and of
 * its signals: auth_login_attempts_total{outcome} and the security events. Kept out of routes.ts
 * so the route stays readable top to bottom.
 *
 * Every answer about a throttled account is the same whether the account exists or not: the same
 * 429 problem+json, the same detail, a Retry-After, and no password check (so the same time class).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../lib/errors.ts';
import type { Logger } from '../../observability/logging.ts';
import type { ThrottleAttempt } from '../../ratelimit/account-throttle.ts';

export type RefusedAttempt = ThrottleAttempt & { admitted: false };

/** The 429 for an attempt refused while its account is locked (counted and logged as login_throttled). */
export function throttledLogin(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, attempt: RefusedAttempt): AppError {
  const retryAfter = Math.max(1, Math.ceil(attempt.retryAfterMs / 1000));
  app.metrics.recordLoginAttempt('throttled');
  app.securityEvents.record(request.log as Logger, 'login_throttled', { account: attempt.account, ip: request.ip, retry_after_seconds: retryAfter }, request.id);
  reply.header('retry-after', String(retryAfter));
  return new AppError(429, `Too many failed sign-in attempts for this account; retry after ${retryAfter} s`);
}

/** A wrong password or an unknown email: bad_credentials, or locked when this failure locked the account. */
export function failedLogin(app: FastifyInstance, request: FastifyRequest, attempt: ThrottleAttempt & { admitted: true }): void {
  if (attempt.lockMs === 0) {
    app.metrics.recordLoginAttempt('bad_credentials');
    return;
  }
  app.metrics.recordLoginAttempt('locked');
  app.securityEvents.record(
    request.log as Logger,
    'account_locked',
    { account: attempt.account, ip: request.ip, failures: attempt.failures, lock_seconds: attempt.lockMs / 1000 },
    request.id,
  );
}

/** The right password: the account's streak is wiped (and a lock this attempt started is undone). */
export async function succeededLogin(app: FastifyInstance, attempt: ThrottleAttempt): Promise<void> {
  app.metrics.recordLoginAttempt('success');
  await app.loginThrottle.succeeded(attempt);
}
