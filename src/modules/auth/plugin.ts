/**
 * Who is calling: a valid `Authorization: Bearer <access token>` sets request.userId (null otherwise).
 * Routes opt in with `onRequest: app.requireUser` or `app.requireAdmin`, so an anonymous request is
 * refused before its body is read or validated.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isPlatformAdmin } from './admin.ts';
import { forbidden, unauthorized } from '../../lib/errors.ts';
import type { Logger } from '../../observability/logging.ts';
import { TokenService } from './tokens.ts';

export type PreHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

declare module 'fastify' {
  interface FastifyRequest {
    userId: string | null;
  }
  interface FastifyInstance {
    tokens: TokenService;
    requireUser: PreHandler;
    requireAdmin: PreHandler;
  }
}

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

export default fp(
  async (app, opts: { jwtSecret: string; accessTtlSeconds: number }) => {
    const tokens = new TokenService(opts.jwtSecret, opts.accessTtlSeconds);
    app.decorate('tokens', tokens);
    app.decorateRequest('userId', null);

    // Callback-style: a request without a bearer token (probes, sign-in, the docs) makes no promise.
    app.addHook('onRequest', (request, _reply, done) => {
      const token = bearerToken(request.headers.authorization);
      if (!token) return done();
      tokens.verifyAccess(token).then((userId) => {
        request.userId = userId;
        done();
      }, done);
    });

    app.decorate('requireUser', async (request: FastifyRequest) => {
      if (!request.userId) throw unauthorized('A valid bearer access token is required');
    });

    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      if (!request.userId) throw unauthorized('A valid bearer access token is required');
      const admin = await isPlatformAdmin(app.database.db, request.userId);
      if (admin === undefined) throw unauthorized('The user of this token no longer exists');
      if (!admin) {
        app.securityEvents.record(request.log as Logger, 'admin_denied', { user_id: request.userId, route: request.routeOptions.url ?? 'unmatched', ip: request.ip }, request.id);
        throw forbidden('Only platform admins may read this');
      }
    });
  },
  { name: 'auth' },
);
