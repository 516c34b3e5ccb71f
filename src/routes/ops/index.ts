/**
 * /ops: the operator console, served by the API itself — one HTML page and its two built assets
 * (src/routes/ops/assets/, built from ops-ui/ by `npm run build:ops`), and its JSON API under
 * /ops/api (./api.ts). Platform admins only, signed in with email and password into a cookie
 * session of its own (./sessions.ts), never an API bearer token.
 *
 * Every /ops response carries CONSOLE_CSP (no inline script or style, nothing from another origin,
 * framed by no one) and, but for the assets, `Cache-Control: no-store`. Every state-changing call
 * is refused (403) when the browser says it comes from another site (Sec-Fetch-Site, Origin), and,
 * once signed in, without the session's CSRF token in `X-CSRF-Token` — checked in onRequest, before
 * any body is read. The session cookie is httpOnly, SameSite=Strict, Path=/ops, Secure outside
 * development.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import { z } from 'zod';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError, forbidden, unauthorized } from '../../lib/errors.ts';
import { AuthService } from '../../modules/auth/service.ts';
import { isPlatformAdmin } from '../../modules/auth/admin.ts';
import { signIn } from '../../modules/auth/sign-in.ts';
import { MetricsHistory } from '../../observability/metrics-history.ts';
import consoleApi, { type ReplicaInfo } from './api.ts';
import { ConsoleSessions, MemorySessionStore, RedisSessionStore, csrfMatches, type ConsoleSession } from './sessions.ts';

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/** The sampled history covers the last hour. */
const HISTORY_WINDOW_MS = 3_600_000;

const ASSET_TYPES = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' } as const;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

function loadAsset(name: string, type: string): Asset {
  const body = readFileSync(new URL(`./assets/${name}`, import.meta.url));
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session of an /ops/api request (set by the console's onRequest hook). */
    opsSession: ConsoleSession | null;
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SESSION_PATH = '/ops/api/session';
const ASSET_ROUTE = '/ops/assets/:name';

/**
 * True when the browser says the call comes from another site (a form or script elsewhere):
 * `Sec-Fetch-Site` when it sends one, else an `Origin` whose host is not ours. Hosts, not whole
 * origins: behind a TLS-terminating proxy the request's own scheme is http unless TRUST_PROXY lets
 * X-Forwarded-Proto through.
 */
function crossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site !== 'same-origin';
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== request.host;
  } catch {
    return true;
  }
}

const signInBody = z.object({ email: z.string().min(1).max(320), password: z.string().min(1).max(1024) });

const routes: FastifyPluginAsyncZod = async (app) => {
  const { config } = app;
  const opsConfig = config.ops;
  const secure = config.environment !== 'development';
  const cookieName = secure ? '__Secure-nest_egg_ops' : 'nest_egg_ops';
  const sessions = new ConsoleSessions(
    app.redis ? new RedisSessionStore(app.redis, opsConfig.sessionKeyPrefix) : new MemorySessionStore(),
    { ttlSeconds: opsConfig.sessionTtlSeconds, idleSeconds: opsConfig.sessionIdleSeconds },
  );
  const auth = new AuthService(app.database.db, app.tokens, config.auth.refreshTokenTtlDays);
  const replica: ReplicaInfo = { id: `${hostname()}-${process.pid}`, hostname: hostname(), pid: process.pid };
  const mode = config.redisUrl ? 'server' : 'embedded';

  const history = new MetricsHistory(app.metrics, {
    intervalMs: opsConfig.sampleIntervalSeconds * 1000,
    windowMs: HISTORY_WINDOW_MS,
    excludeRoute: (route) => route.includes(' /ops'),
  });
  if (config.metrics.enabled) app.addHook('onReady', async () => history.start());
  app.addHook('onClose', async () => history.stop());

  const page = loadAsset('index.html', 'text/html; charset=utf-8');
  const assets = new Map(Object.entries(ASSET_TYPES).map(([name, type]) => [name, loadAsset(name, type)]));

  app.decorateRequest('opsSession', null);

  const tokenOf = (request: FastifyRequest): string | undefined => parseCookies(request.headers.cookie ?? '')[cookieName];

  /** The signed-in admin of a request, or null (the session is ended when its account is no longer an admin). */
  const adminSession = async (request: FastifyRequest): Promise<ConsoleSession | null> => {
    // The auto-refresh's reads do not restart the idle clock: an unattended console still times out.
    const session = await sessions.resume(tokenOf(request), { touch: request.headers['x-console-refresh'] !== 'auto' });
    if (!session) return null;
    // Still an admin? A demoted or deleted account loses the console at its next request.
    if (await isPlatformAdmin(app.database.db, session.userId)) return session;
    await sessions.end(tokenOf(request));
    return null;
  };

  app.addHook('onRequest', async (request, reply) => {
    // Decided on the matched route, never the raw URL (`/ops/%61pi/…` is routed as `/ops/api/…`).
    const route = request.routeOptions.url ?? '';
    reply.header('content-security-policy', CONSOLE_CSP);
    if (route !== ASSET_ROUTE) reply.header('cache-control', 'no-store');
    const changing = STATE_CHANGING.has(request.method);
    if (changing && crossSite(request)) throw forbidden('Cross-site requests to the operator console are refused');
    if (!route.startsWith('/ops/api/')) return;
    if (request.method === 'POST' && route === SESSION_PATH) return;
    const session = await adminSession(request);
    // "Am I signed in?" is a question with an answer, not an error (the page asks it when it loads).
    if (!session && request.method === 'GET' && route === SESSION_PATH) return;
    if (!session) throw unauthorized('Sign in to the operator console');
    if (changing && !csrfMatches(session, request.headers['x-csrf-token'])) throw forbidden('The CSRF token is missing or wrong; reload the console');
    request.opsSession = session;
    request.userId = session.userId;
  });

  const setSessionCookie = (reply: FastifyReply, token: string, maxAgeSeconds: number) =>
    reply.header('set-cookie', serializeCookie(cookieName, token, { httpOnly: true, secure, sameSite: 'strict', path: '/ops', maxAge: maxAgeSeconds }));

  const sessionView = (s: ConsoleSession) => ({
    signed_in: true,
    user: { id: s.userId, email: s.email },
    csrf_token: s.csrfToken,
    expires_at: new Date(s.expiresAt).toISOString(),
    idle_timeout_seconds: sessions.policy.idleSeconds,
    replica,
    mode,
    version: config.version,
    sample_interval_seconds: opsConfig.sampleIntervalSeconds,
  });

  const hidden = { hide: true };

  const sendPage = (_request: FastifyRequest, reply: FastifyReply) => reply.type(page.type).send(page.body);
  app.get('/', { schema: hidden }, sendPage);

  app.get('/assets/:name', { schema: { ...hidden, params: z.object({ name: z.string() }) } }, async (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) throw new AppError(404, 'No such console asset');
    reply.header('etag', asset.etag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.type).send(asset.body);
  });

  app.post('/api/session', { schema: { ...hidden, body: signInBody } }, async (request, reply) => {
    const user = await signIn(app, request, reply, auth, request.body, { action: 'ops.sign_in', adminOnly: true });
    // A new session each sign-in (no fixation); the one this browser had, if any, ends.
    await sessions.end(tokenOf(request));
    const { token, session } = await sessions.create(user);
    setSessionCookie(reply, token, opsConfig.sessionTtlSeconds);
    return sessionView(session);
  });

  app.get('/api/session', { schema: hidden }, async (request) => (request.opsSession ? sessionView(request.opsSession) : { signed_in: false }));

  app.delete('/api/session', { schema: hidden }, async (request, reply) => {
    await sessions.end(tokenOf(request));
    await request.audit({ action: 'ops.sign_out', outcome: 'success', targetType: 'user', targetId: request.opsSession!.userId });
    setSessionCookie(reply, '', 0);
    return reply.code(204).send();
  });

  await app.register(consoleApi, { prefix: '/api', history, replica, mode });
};

export default routes;
