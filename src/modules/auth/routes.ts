/** /api/v1/auth: register, login, refresh, logout, me. Auth events are logged as `api.auth`. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { unauthorized } from '../../lib/errors.ts';
import type { Logger } from '../../observability/logging.ts';
import { dummyHash } from './passwords.ts';
import { loginBody, refreshTokenBody, registerBody, tokenPairResponse, userResponse, type TokenPairResponse, type UserResponse } from './schemas.ts';
import { AuthService, type TokenPair, type User } from './service.ts';
import { authLog, signIn } from './sign-in.ts';

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
      const user = await signIn(app, request, reply, auth, request.body, { action: 'auth.login' });
      return toTokenResponse(await auth.issueTokens(user.id));
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
