/** /api/v1/auth: register, login, refresh, logout, me. Auth events are logged as `api.auth`. */
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { unauthorized } from '../../lib/errors.ts';
import { getLogger, type Logger } from '../../observability/logging.ts';
import { ANONYMOUS_ACTOR } from '../audit/trail.ts';
import { dummyHash } from './passwords.ts';
import { loginBody, refreshTokenBody, registerBody, tokenPairResponse, userResponse, type TokenPairResponse, type UserResponse } from './schemas.ts';
import { AuthService, normalizeEmail, type TokenPair, type User } from './service.ts';
import { failedLogin, succeededLogin, throttledLogin } from './login-throttle.ts';

const toUserResponse = (u: User): UserResponse => ({
  id: u.id,
  email: u.email,
  full_name: u.fullName,
  is_admin: u.isAdmin,
  created_at: u.createdAt.toISOString(),
});

const toTokenResponse = (t: TokenPair): TokenPairResponse => ({
  access_token: t.accessToken,
  refresh_token: t.refreshToken,
  token_type: 'bearer',
  expires_in: t.expiresIn,
});

/** The request's logger (with its request id) renamed for this module. Emails are masked by the logger. */
const authLog = (request: FastifyRequest): Logger => getLogger(request.log as Logger, 'api.auth');

const INVALID_CREDENTIALS = 'Incorrect email or password';
const INVALID_REFRESH = 'The refresh token is invalid, expired or revoked; log in again';

const routes: FastifyPluginAsyncZod = async (app) => {
  const auth = new AuthService(app.database.db, app.tokens, app.config.auth.refreshTokenTtlDays);
  // Computed once up front, so the first failed login for an unknown email is not the slow one.
  await dummyHash();

  app.post(
    '/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create a user account (with the default categories)',
        body: registerBody,
        response: { 201: userResponse },
      },
    },
    async (request, reply) => {
      const { email, password, full_name } = request.body;
      const user = await auth.register({ email, password, fullName: full_name });
      authLog(request).info({ user_id: user.id, email: user.email, ip: request.ip }, 'user_registered');
      return reply.code(201).send(toUserResponse(user));
    },
  );

  app.post(
    '/login',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange email and password for an access token and a refresh token',
        body: loginBody,
        response: { 200: tokenPairResponse },
      },
    },
    async (request, reply) => {
      const { email, password } = request.body;
      // Per-account throttle (across IPs and replicas), checked before the password is looked at.
      const attempt = await app.loginThrottle.begin(normalizeEmail(email));
      if (!attempt.admitted) {
        // Audited as denied, naming no user: whether the account exists is not revealed here either.
        await request.audit({ action: 'auth.login', outcome: 'denied', actor: ANONYMOUS_ACTOR, targetType: 'user', targetId: null, details: { reason: 'throttled', email } });
        throw throttledLogin(app, request, reply, attempt);
      }
      const result = await auth.login(email, password);
      if (!result.ok) {
        authLog(request).warn({ email, ip: request.ip, reason: result.reason }, 'user_login_failed');
        const userId = result.reason === 'wrong_password' ? result.userId : null;
        await request.audit({ action: 'auth.login', outcome: 'failure', actor: userId ?? ANONYMOUS_ACTOR, targetType: 'user', targetId: userId, details: { reason: result.reason, email } });
        failedLogin(app, request, attempt);
        throw unauthorized(INVALID_CREDENTIALS);
      }
      await succeededLogin(app, attempt);
      request.userId = result.user.id;
      authLog(request).info({ user_id: result.user.id, email: result.user.email, ip: request.ip }, 'user_login');
      await request.audit({ action: 'auth.login', outcome: 'success', targetType: 'user', targetId: result.user.id });
      return toTokenResponse(result.tokens);
    },
  );

  app.post(
    '/refresh',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new pair (the presented token is spent)',
        body: refreshTokenBody,
        response: { 200: tokenPairResponse },
      },
    },
    async (request) => {
      const result = await auth.refresh(request.body.refresh_token);
      const log = authLog(request);
      if (!result.ok) {
        if (result.reason === 'unknown') {
          log.info({ ip: request.ip, reason: result.reason }, 'token_refresh_failed');
        } else {
          // A spent or revoked token coming back means a copy is in someone else's hands.
          const event = result.reason === 'expired' ? 'token_refresh_failed' : 'refresh_token_reuse_detected';
          log.warn({ user_id: result.userId, family_id: result.familyId, ip: request.ip, reason: result.reason }, event);
          if (event === 'refresh_token_reuse_detected') {
            const revoked = { actor: result.userId, targetType: 'refresh_token_family', targetId: result.familyId };
            await request.audit({ action: 'auth.refresh_token_reuse', outcome: 'failure', ...revoked, details: { reason: result.reason, family_revoked: true } });
            app.securityEvents.record(request.log as Logger, 'refresh_token_reuse', { user_id: result.userId, family_id: result.familyId, ip: request.ip, reason: result.reason }, request.id);
          }
        }
        throw unauthorized(INVALID_REFRESH);
      }
      request.userId = result.userId;
      log.info({ user_id: result.userId, family_id: result.familyId, ip: request.ip }, 'token_refreshed');
      return toTokenResponse(result.tokens);
    },
  );

  app.post(
    '/logout',
    {
      schema: {
        tags: ['auth'],
        summary: 'End the session of a refresh token (idempotent)',
        body: refreshTokenBody,
      },
    },
    async (request, reply) => {
      const session = await auth.logout(request.body.refresh_token);
      if (session) {
        request.userId = session.userId;
        authLog(request).info({ user_id: session.userId, family_id: session.familyId, ip: request.ip }, 'user_logout');
        await request.audit({ action: 'auth.logout', outcome: 'success', targetType: 'refresh_token_family', targetId: session.familyId });
      }
      return reply.code(204).send();
    },
  );

  app.get(
    '/me',
    {
      onRequest: app.requireUser,
      schema: {
        tags: ['auth'],
        summary: 'The authenticated user',
        security: [{ bearer: [] }],
        response: { 200: userResponse },
      },
    },
    async (request) => {
      const user = await auth.getUser(request.userId!);
      if (!user) throw unauthorized('The user of this token no longer exists');
      return toUserResponse(user);
    },
  );
};

export default routes;
