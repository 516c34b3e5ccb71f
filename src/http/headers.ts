/**
 * The browser-facing headers of every response, as constants computed once at start-up:
 *
 * - the security headers (helmet's set, which this replaces) with a strict Content-Security-Policy
 *   for a JSON API; /docs (the Swagger UI) sends DOCS_CSP instead, through @fastify/swagger-ui's
 *   staticCSP option, which overwrites the header on its own routes only;
 * - `Cache-Control: no-store` on every request that carries credentials (an Authorization header:
 *   every authenticated response, and the 401 of a bad token) and on every auth endpoint
 *   (`/api/v1/auth/*`: token responses), errors included;
 * - CORS for the exact origins of CORS_ORIGINS, nothing at all when it is empty.
 *
 * Both hooks are callback-style onRequest hooks that only copy constant strings onto the reply.
 * They run before the auth and rate-limit hooks, so a preflight is answered before either: it
 * needs no token and is not counted against a limit.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/** The CSP of every response but the Swagger UI's: a JSON API loads nothing and may be framed by no one. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * The Swagger UI's CSP: its page loads only same-origin scripts and stylesheets (no inline ones:
 * @fastify/swagger-ui's csp.json lists no hashes), data: images from its CSS, and fetches the
 * OpenAPI document (and "Try it out" calls) from the same origin.
 */
export const DOCS_CSP =
  "default-src 'none'; base-uri 'none'; connect-src 'self'; font-src 'self' data:; form-action 'self'; " +
  "frame-ancestors 'none'; img-src 'self' data:; object-src 'none'; script-src 'self'; style-src 'self'";

/** helmet 8's defaults (what @fastify/helmet sent before), with API_CSP instead of no CSP; exported for answers made outside the hooks (pre-routing rejections). */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = Object.freeze([
  ['content-security-policy', API_CSP],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
  ['origin-agent-cluster', '?1'],
  ['referrer-policy', 'no-referrer'],
  ['strict-transport-security', 'max-age=31536000; includeSubDomains'],
  ['x-content-type-options', 'nosniff'],
  ['x-dns-prefetch-control', 'off'],
  ['x-download-options', 'noopen'],
  ['x-frame-options', 'SAMEORIGIN'],
  ['x-permitted-cross-domain-policies', 'none'],
  ['x-xss-protection', '0'],
] as const);

const AUTH_PREFIX = '/api/v1/auth/';

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    for (const [name, value] of SECURITY_HEADERS) reply.header(name, value);
    if (request.headers.authorization !== undefined || request.routeOptions.url?.startsWith(AUTH_PREFIX)) {
      reply.header('cache-control', 'no-store');
    }
    done();
  });
}

export interface CorsOptions {
  /** Exact origins, as browsers send them in `Origin`. Empty: no hook, no CORS headers. */
  origins: readonly string[];
  allowCredentials: boolean;
}

export const CORS_ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
export const CORS_ALLOWED_HEADERS = 'Authorization, Content-Type, X-Request-ID';
export const CORS_EXPOSED_HEADERS = 'X-Request-ID, Retry-After, RateLimit, RateLimit-Policy';
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * CORS for an allow list of exact origins. Every response varies by Origin (`Vary: Origin`).
 * A request from an allowed origin gets `Access-Control-Allow-Origin: <origin>` and the exposed
 * headers (plus `Access-Control-Allow-Credentials: true` when configured). A preflight (OPTIONS
 * with Origin and Access-Control-Request-Method) is answered 204 at once: from an allowed origin
 * with the allowed methods, headers and max age; from a refused one with no CORS header, so the
 * browser blocks the call. A plain OPTIONS is no preflight and is answered as before (404).
 * Preflights are measured under the endpoint `/*` (a hidden OPTIONS route), one bounded series.
 */
export function registerCors(app: FastifyInstance, opts: CorsOptions): void {
  if (opts.origins.length === 0) return;
  const allowed = new Set(opts.origins);
  const credentials = opts.allowCredentials;
  const maxAge = String(CORS_MAX_AGE_SECONDS);

  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    reply.header('vary', 'Origin');
    const origin = request.headers.origin;
    if (origin === undefined) return done();
    const ok = allowed.has(origin);
    if (ok) {
      reply.header('access-control-allow-origin', origin);
      if (credentials) reply.header('access-control-allow-credentials', 'true');
    }
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
      if (ok) {
        reply.header('access-control-allow-methods', CORS_ALLOWED_METHODS);
        reply.header('access-control-allow-headers', CORS_ALLOWED_HEADERS);
        reply.header('access-control-max-age', maxAge);
      }
      reply.code(204).send();
      return;
    }
    if (ok) reply.header('access-control-expose-headers', CORS_EXPOSED_HEADERS);
    done();
  });

  // Gives preflights a route (endpoint label `/*` rather than `unmatched`); they never reach its
  // handler, which answers any other OPTIONS as the not-found handler always has.
  app.options('/*', { schema: { hide: true } }, (_request, reply) => {
    reply.callNotFound();
  });
}
