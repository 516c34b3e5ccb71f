/**
 * The operator console's sessions: a random 256-bit token in an httpOnly cookie, separate from the
 * API's bearer tokens. The store keeps only the token's SHA-256 (a leaked store or Redis dump holds
 * no usable session), the admin's id and email, the session's CSRF token and its two clocks: it
 * ends `ttl` after sign-in, or `idle` after its last request, whichever comes first.
 * Embedded mode keeps sessions in memory (one process); server mode in Redis, so every replica
 * behind the load balancer knows every session.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError } from '../../lib/errors.ts';

export interface ConsoleSession {
  userId: string;
  email: string;
  csrfToken: string;
  createdAt: number;
  /** Hard end: sign-in + ttl. */
  expiresAt: number;
  lastSeenAt: number;
}

export interface SessionStore {
  put(key: string, session: ConsoleSession, ttlMs: number): Promise<void>;
  /** Writes the session back only if it is still there (a sign-out racing a request wins); false when it was not. */
  touch(key: string, session: ConsoleSession, ttlMs: number): Promise<boolean>;
  get(key: string): Promise<ConsoleSession | null>;
  delete(key: string): Promise<void>;
}

/** At most this many live sessions in memory; the oldest is forgotten first. */
const MEMORY_CAPACITY = 10_000;

export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, { session: ConsoleSession; until: number }>();

  constructor(private readonly now: () => number = () => Date.now()) {}

  async put(key: string, session: ConsoleSession, ttlMs: number): Promise<void> {
    this.sessions.delete(key);
    this.sessions.set(key, { session, until: this.now() + ttlMs });
    while (this.sessions.size > MEMORY_CAPACITY) this.sessions.delete(this.sessions.keys().next().value as string);
  }

  async touch(key: string, session: ConsoleSession, ttlMs: number): Promise<boolean> {
    if (!this.sessions.has(key)) return false;
    await this.put(key, session, ttlMs);
    return true;
  }

  async get(key: string): Promise<ConsoleSession | null> {
    const entry = this.sessions.get(key);
    if (!entry) return null;
    if (entry.until <= this.now()) {
      this.sessions.delete(key);
      return null;
    }
    return { ...entry.session };
  }

  async delete(key: string): Promise<void> {
    this.sessions.delete(key);
  }
}

/** Redis did not answer: the console cannot tell who is signed in, so it answers 503, not 500. */
const unavailable = () => new AppError(503, 'The session store (Redis) does not answer; try again shortly');

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async put(key: string, session: ConsoleSession, ttlMs: number): Promise<void> {
    await this.redis.set(this.keyOf(key), JSON.stringify(session), 'PX', Math.max(1, Math.ceil(ttlMs))).catch(rethrowUnavailable);
  }

  async touch(key: string, session: ConsoleSession, ttlMs: number): Promise<boolean> {
    // XX: only if the key is still there, so a sign-out in between is never undone.
    const reply = await this.redis.set(this.keyOf(key), JSON.stringify(session), 'PX', Math.max(1, Math.ceil(ttlMs)), 'XX').catch(rethrowUnavailable);
    return reply === 'OK';
  }

  async get(key: string): Promise<ConsoleSession | null> {
    const raw = await this.redis.get(this.keyOf(key)).catch(rethrowUnavailable);
    return raw ? (JSON.parse(raw) as ConsoleSession) : null;
  }

  async delete(key: string): Promise<void> {
    await this.redis.del(this.keyOf(key)).catch(rethrowUnavailable);
  }

  private keyOf(key: string): string {
    return `${this.prefix}session:${key}`;
  }
}

function rethrowUnavailable(): never {
  throw unavailable();
}

export interface SessionPolicy {
  ttlSeconds: number;
  idleSeconds: number;
}

const keyOf = (token: string) => createHash('sha256').update(token).digest('hex');
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export class ConsoleSessions {
  constructor(
    private readonly store: SessionStore,
    readonly policy: SessionPolicy,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async create(user: { id: string; email: string }): Promise<{ token: string; session: ConsoleSession }> {
    const token = randomBytes(32).toString('base64url');
    const at = this.now();
    const session: ConsoleSession = {
      userId: user.id,
      email: user.email,
      csrfToken: randomBytes(32).toString('base64url'),
      createdAt: at,
      expiresAt: at + this.policy.ttlSeconds * 1000,
      lastSeenAt: at,
    };
    await this.store.put(keyOf(token), session, this.remainingMs(session, at));
    return { token, session };
  }

  /**
   * The session of a cookie's token, its idle clock restarted (unless `touch` is false); null when
   * unknown, expired or idle too long.
   */
  async resume(token: string | undefined, opts: { touch?: boolean } = {}): Promise<ConsoleSession | null> {
    if (!token || !TOKEN_SHAPE.test(token)) return null;
    const key = keyOf(token);
    const session = await this.store.get(key);
    const at = this.now();
    if (!session) return null;
    if (session.expiresAt <= at || session.lastSeenAt + this.policy.idleSeconds * 1000 <= at) {
      await this.store.delete(key);
      return null;
    }
    if (opts.touch === false) return session;
    session.lastSeenAt = at;
    return (await this.store.touch(key, session, this.remainingMs(session, at))) ? session : null;
  }

  async end(token: string | undefined): Promise<void> {
    if (token && TOKEN_SHAPE.test(token)) await this.store.delete(keyOf(token));
  }

  private remainingMs(s: ConsoleSession, at: number): number {
    return Math.min(s.expiresAt - at, this.policy.idleSeconds * 1000);
  }
}

/** The CSRF header against the session's token, in constant time. */
export function csrfMatches(session: ConsoleSession, presented: string | string[] | undefined): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
