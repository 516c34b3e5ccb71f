/**
 * Accounts and sessions: registration, password login, rotating refresh tokens, logout.
 *
 * A session is a family of refresh tokens. Each refresh spends the presented token (marks it
 * revoked and points it at its successor) and issues the next one in the same family. A token that
 * is presented again after it was spent or revoked means someone else holds a copy, so the whole
 * family is revoked (reuse detection) and the caller has to log in again.
 * Refresh tokens are stored only as SHA-256 hashes: a database dump gives no usable session.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { and, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { refreshTokens, users } from '../../db/schema.ts';
import { conflict } from '../../lib/errors.ts';
import { seedDefaultCategories } from '../categories/defaults.ts';
import { dummyHash, hashPassword, verifyPassword } from './passwords.ts';
import type { TokenService } from './tokens.ts';

const DAY_MS = 86_400_000;

export interface User {
  id: string;
  email: string;
  fullName: string | null;
  isAdmin: boolean;
  createdAt: Date;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export type CredentialsResult =
  | { ok: true; user: User }
  | { ok: false; reason: 'unknown_email' }
  | { ok: false; reason: 'wrong_password'; userId: string };

export type RefreshResult =
  | { ok: true; userId: string; familyId: string; tokens: TokenPair }
  | { ok: false; reason: 'unknown' }
  | { ok: false; reason: 'expired' | 'reused' | 'revoked'; userId: string; familyId: string };

const userColumns = {
  id: users.id,
  email: users.email,
  fullName: users.fullName,
  isAdmin: users.isAdmin,
  createdAt: users.createdAt,
};

/** 32 random bytes, base64url: what the client holds. */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What the database holds. The token has 256 bits of entropy, so a plain SHA-256 is enough. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class AuthService {
  constructor(
    private readonly db: Db,
    private readonly tokens: TokenService,
    private readonly refreshTtlDays: number,
  ) {}

  /** Creates the user and its default categories in one transaction; a taken email is a 409. */
  async register(input: { email: string; password: string; fullName?: string | null }): Promise<User> {
    const email = normalizeEmail(input.email);
    // Hash outside the transaction: argon2 takes tens of milliseconds and needs no lock.
    const passwordHash = await hashPassword(input.password);
    return this.db.transaction(async (tx) => {
      // ON CONFLICT covers the unique index on lower(email), so two concurrent sign-ups with the
      // same address cannot both succeed and neither surfaces as a database error.
      const [user] = await tx
        .insert(users)
        .values({ email, passwordHash, fullName: input.fullName ?? null })
        .onConflictDoNothing()
        .returning(userColumns);
      if (!user) throw conflict('An account with this email address already exists');
      await seedDefaultCategories(tx, user.id);
      return user;
    });
  }

  /**
   * Checks the password and opens a new session. An unknown email is verified against a dummy
   * hash so both failures cost the same time; the caller answers both with the same 401.
   */
  /** A new token pair of a new refresh-token family (a sign-in). */
  async issueTokens(userId: string): Promise<TokenPair> {
    const refreshToken = await this.insertRefreshToken(this.db, userId, randomUUID());
    return this.pair(userId, refreshToken.token);
  }

  /** Email and password checked, in the same time whether the email is known or not; nothing issued. */
  async checkCredentials(emailInput: string, password: string): Promise<CredentialsResult> {
    const email = normalizeEmail(emailInput);
    const [row] = await this.db
      .select({ ...userColumns, passwordHash: users.passwordHash })
      .from(users)
      .where(eq(sql`lower(${users.email})`, email))
      .limit(1);
    const valid = await verifyPassword(row?.passwordHash ?? (await dummyHash()), password);
    if (!row) return { ok: false, reason: 'unknown_email' };
    if (!valid) return { ok: false, reason: 'wrong_password', userId: row.id };
    const { passwordHash: _hash, ...user } = row;
    return { ok: true, user };
  }

  /** Spends the presented refresh token and issues the next pair of its family. */
  async refresh(presented: string): Promise<RefreshResult> {
    const tokenHash = hashRefreshToken(presented);
    const now = new Date();
    const rotated = await this.db.transaction(async (tx) => {
      // The conditional UPDATE is the claim: of two concurrent uses of one token exactly one
      // matches `revoked_at IS NULL` (Postgres re-checks the row after the other commits).
      const [spent] = await tx
        .update(refreshTokens)
        .set({ revokedAt: now })
        .where(and(eq(refreshTokens.tokenHash, tokenHash), isNull(refreshTokens.revokedAt), gt(refreshTokens.expiresAt, now)))
        .returning({ id: refreshTokens.id, userId: refreshTokens.userId, familyId: refreshTokens.familyId });
      if (!spent) return null;
      const next = await this.insertRefreshToken(tx, spent.userId, spent.familyId);
      await tx.update(refreshTokens).set({ replacedBy: next.id }).where(eq(refreshTokens.id, spent.id));
      return { userId: spent.userId, familyId: spent.familyId, token: next.token };
    });
    if (rotated) {
      return { ok: true, userId: rotated.userId, familyId: rotated.familyId, tokens: await this.pair(rotated.userId, rotated.token) };
    }

    const [row] = await this.db
      .select({
        userId: refreshTokens.userId,
        familyId: refreshTokens.familyId,
        revokedAt: refreshTokens.revokedAt,
        replacedBy: refreshTokens.replacedBy,
      })
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, tokenHash))
      .limit(1);
    if (!row) return { ok: false, reason: 'unknown' };
    if (row.revokedAt) {
      await this.revokeFamily(row.familyId);
      return { ok: false, reason: row.replacedBy ? 'reused' : 'revoked', userId: row.userId, familyId: row.familyId };
    }
    return { ok: false, reason: 'expired', userId: row.userId, familyId: row.familyId };
  }

  /** Ends the session the token belongs to; an unknown token is not an error (logout is idempotent). */
  async logout(presented: string): Promise<{ userId: string; familyId: string } | null> {
    const [row] = await this.db
      .select({ userId: refreshTokens.userId, familyId: refreshTokens.familyId })
      .from(refreshTokens)
      .where(eq(refreshTokens.tokenHash, hashRefreshToken(presented)))
      .limit(1);
    if (!row) return null;
    await this.revokeFamily(row.familyId);
    return row;
  }

  async getUser(id: string): Promise<User | null> {
    const [user] = await this.db.select(userColumns).from(users).where(eq(users.id, id)).limit(1);
    return user ?? null;
  }

  private async revokeFamily(familyId: string): Promise<void> {
    await this.db
      .update(refreshTokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)));
  }

  private async insertRefreshToken(db: Db, userId: string, familyId: string): Promise<{ id: string; token: string }> {
    const token = newRefreshToken();
    const [row] = await db
      .insert(refreshTokens)
      .values({
        userId,
        familyId,
        tokenHash: hashRefreshToken(token),
        expiresAt: new Date(Date.now() + this.refreshTtlDays * DAY_MS),
      })
      .returning({ id: refreshTokens.id });
    return { id: row!.id, token };
  }

  private async pair(userId: string, refreshToken: string): Promise<TokenPair> {
    return { accessToken: await this.tokens.issueAccess(userId), refreshToken, expiresIn: this.tokens.accessTtlSeconds };
  }
}
