// fetch wrapper for /ops/api: same-origin cookie session, CSRF header on state changes,
// problem+json errors as ApiError, and one hook for "the session has ended" (401).
import type { Problem, Session } from './types.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  readonly retryAfterSeconds: number | null;

  constructor(status: number, problem: Problem, retryAfterSeconds: number | null) {
    super(problem.detail || problem.title || `Request failed (HTTP ${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Thrown after a 401 on an authenticated call; the app has already returned to sign-in. */
export class SessionEnded extends Error {
  constructor() {
    super('Your session has ended; sign in again');
    this.name = 'SessionEnded';
  }
}

let csrfToken = '';
let onSessionEnded: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function onUnauthorized(handler: () => void): void {
  onSessionEnded = handler;
}

async function problemOf(res: Response): Promise<Problem> {
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      const body: unknown = await res.json();
      if (body && typeof body === 'object') return body as Problem;
    } catch {
      // fall through
    }
  }
  return { status: res.status, title: res.statusText, detail: `Request failed (HTTP ${res.status} ${res.statusText})`.trim() };
}

function retryAfter(res: Response): number | null {
  const value = res.headers.get('retry-after');
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

interface RequestOptions {
  body?: unknown;
  /** a 401 is an answer (sign-in), not the end of the session */
  anonymous?: boolean;
  csrf?: boolean;
}

/**
 * True while the auto-refresh timer's refresh runs: its reads say so (`X-Console-Refresh: auto`),
 * and the server does not count them as activity, so an unattended console still reaches its
 * idle timeout.
 */
let autoRefreshing = false;

export function setAutoRefreshing(on: boolean): void {
  autoRefreshing = on;
}

async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (autoRefreshing && method === 'GET') headers['X-Console-Refresh'] = 'auto';
  const init: RequestInit = { method, credentials: 'same-origin', headers, cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  if (opts.csrf) headers['X-CSRF-Token'] = csrfToken;

  const res = await fetch(path, init);
  if (res.status === 401 && !opts.anonymous) {
    onSessionEnded();
    throw new SessionEnded();
  }
  if (!res.ok) throw new ApiError(res.status, await problemOf(res), retryAfter(res));
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string): Promise<T> => request<T>('GET', path);

/** POST with the CSRF header and a JSON body ({} when there is nothing to send). */
export const post = <T>(path: string, body: unknown = {}): Promise<T> => request<T>('POST', path, { body, csrf: true });

/** The current session, or null when signed out (the server answers `{"signed_in": false}`). */
export async function getSession(): Promise<Session | null> {
  const answer = await request<Session | { signed_in: false }>('GET', '/ops/api/session', { anonymous: true });
  return answer.signed_in ? answer : null;
}

export const signIn = (email: string, password: string): Promise<Session> =>
  request<Session>('POST', '/ops/api/session', { body: { email, password }, anonymous: true });

export const signOut = (): Promise<void> => request<void>('DELETE', '/ops/api/session', { csrf: true, anonymous: true });

/** A user-facing message for an error from a call. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) {
    const fields = err.problem.errors?.map((e) => `${e.field}: ${e.message}`).join('; ');
    return fields ? `${err.message} (${fields})` : err.message;
  }
  if (err instanceof TypeError) return 'The API could not be reached; check the connection';
  return err instanceof Error ? err.message : String(err);
}
