/**
 * Checking a sign-in, with every login defence, for the two places a person signs in: the API's
 * POST /api/v1/auth/login (tokens) and the operator console's POST /ops/api/session (a cookie
 * session). The per-IP limit is the rate limiter's (both routes share the auth-login policy); here:
 * the per-account throttle before the password is checked, the same answer for an unknown email
 * and a wrong password, auth_login_attempts_total, the security events, the log lines and the
 * audit rows. Resolves to the user; throws the problem to answer otherwise.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../../lib/errors.ts';
import { getLogger, type Logger } from '../../observability/logging.ts';
import { ANONYMOUS_ACTOR } from '../audit/trail.ts';
import { failedLogin, succeededLogin, throttledLogin } from './login-throttle.ts';
import { normalizeEmail, type AuthService, type User } from './service.ts';

export const INVALID_CREDENTIALS = 'Incorrect email or password';

export interface SignInOptions {
  /** The audit action of the attempt: `auth.login` or `ops.sign_in`. */
  action: string;
  /** Only platform admins may sign in (the console): anyone else is refused with 403 after the password check. */
  adminOnly?: boolean;
}

/** The request's logger (with its request id) renamed for this module. Emails are masked by the logger. */
export const authLog = (request: FastifyRequest): Logger => getLogger(request.log as Logger, 'api.auth');

export async function signIn(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  auth: AuthService,
  credentials: { email: string; password: string },
  opts: SignInOptions,
): Promise<User> {
  const { email, password } = credentials;
  const { action } = opts;
  // Per-account throttle (across IPs and replicas), checked before the password is looked at.
  const attempt = await app.loginThrottle.begin(normalizeEmail(email));
  if (!attempt.admitted) {
    // Audited as denied, naming no user: whether the account exists is not revealed here either.
    await request.audit({ action, outcome: 'denied', actor: ANONYMOUS_ACTOR, targetType: 'user', targetId: null, details: { reason: 'throttled', email } });
    throw throttledLogin(app, request, reply, attempt);
  }
  const result = await auth.checkCredentials(email, password);
  if (!result.ok) {
    authLog(request).warn({ email, ip: request.ip, reason: result.reason, action }, 'user_login_failed');
    const userId = result.reason === 'wrong_password' ? result.userId : null;
    await request.audit({ action, outcome: 'failure', actor: userId ?? ANONYMOUS_ACTOR, targetType: 'user', targetId: userId, details: { reason: result.reason, email } });
    failedLogin(app, request, attempt);
    throw unauthorized(INVALID_CREDENTIALS);
  }
  await succeededLogin(app, attempt);
  const { user } = result;
  if (opts.adminOnly && !user.isAdmin) {
    await request.audit({ action, outcome: 'denied', actor: user.id, targetType: 'user', targetId: user.id, details: { reason: 'not_admin' } });
    app.securityEvents.record(request.log as Logger, 'admin_denied', { user_id: user.id, route: request.routeOptions.url ?? 'unmatched', ip: request.ip }, request.id);
    throw forbidden('Only platform admins may sign in to the operator console');
  }
  request.userId = user.id;
  authLog(request).info({ user_id: user.id, email: user.email, ip: request.ip, action }, 'user_login');
  await request.audit({ action, outcome: 'success', targetType: 'user', targetId: user.id });
  return user;
}
