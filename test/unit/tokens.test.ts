import { decodeJwt, decodeProtectedHeader, SignJWT, UnsecuredJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { TokenService } from '../../src/modules/auth/tokens.ts';

const SECRET = 'unit-test-secret-that-is-at-least-32-characters';
const USER = '0b7c4f0e-3a5d-4c1e-9f7a-2d6b8e1c5a90';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

/** A token as TokenService would issue it, with each part overridable. */
function craft(
  opts: { alg?: 'HS256' | 'HS384' | 'HS512'; secret?: Uint8Array; sub?: string | null; iss?: string; typ?: string; exp?: number } = {},
): Promise<string> {
  const jwt = new SignJWT({ typ: opts.typ ?? 'access' })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' })
    .setIssuer(opts.iss ?? 'nest-egg')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now() + 600);
  if (opts.sub !== null) jwt.setSubject(opts.sub ?? USER);
  return jwt.sign(opts.secret ?? key);
}

describe('TokenService', () => {
  const tokens = new TokenService(SECRET, 900);

  it('issues an HS256 access token that verifies to its user id', async () => {
    const token = await tokens.issueAccess(USER);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ sub: USER, iss: 'nest-egg', typ: 'access' });
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(await tokens.verifyAccess(token)).toBe(USER);
  });

  it('takes its lifetime from the constructor', async () => {
    const short = new TokenService(SECRET, 60);
    const claims = decodeJwt(await short.issueAccess(USER));
    expect(claims.exp! - claims.iat!).toBe(60);
    expect(short.accessTtlSeconds).toBe(60);
  });

  it('gives each token a unique id, so two issued in one second differ', async () => {
    const [a, b] = await Promise.all([tokens.issueAccess(USER), tokens.issueAccess(USER)]);
    expect(a).not.toBe(b);
    expect(decodeJwt(a!).jti).not.toBe(decodeJwt(b!).jti);
  });

  it('accepts a well-formed token it did not issue itself (control for the cases below)', async () => {
    expect(await tokens.verifyAccess(await craft())).toBe(USER);
  });

  it('rejects an expired token', async () => {
    expect(await tokens.verifyAccess(await craft({ exp: now() - 1 }))).toBeNull();
  });

  it('rejects `alg: none`', async () => {
    const unsecured = new UnsecuredJWT({ typ: 'access' }).setSubject(USER).setIssuer('nest-egg').setIssuedAt().setExpirationTime('10m').encode();
    expect(decodeProtectedHeader(unsecured).alg).toBe('none');
    expect(await tokens.verifyAccess(unsecured)).toBeNull();
  });

  it('rejects other HMAC algorithms, even with the right secret', async () => {
    expect(await tokens.verifyAccess(await craft({ alg: 'HS512' }))).toBeNull();
    expect(await tokens.verifyAccess(await craft({ alg: 'HS384' }))).toBeNull();
  });

  it('rejects a token signed with another secret', async () => {
    const other = new TokenService('another-secret-that-is-also-32-characters-long', 900);
    expect(await tokens.verifyAccess(await other.issueAccess(USER))).toBeNull();
  });

  it('rejects a tampered signature and a tampered payload', async () => {
    const [header, payload, signature] = (await tokens.issueAccess(USER)).split('.') as [string, string, string];
    const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
    expect(await tokens.verifyAccess(`${header}.${payload}.${flipped}`)).toBeNull();

    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(`${header}.${payload}.${signature}`), sub: 'someone-else' })).toString('base64url');
    expect(await tokens.verifyAccess(`${header}.${forged}.${signature}`)).toBeNull();
  });

  it('rejects a token of another issuer, another type, or without a subject', async () => {
    expect(await tokens.verifyAccess(await craft({ iss: 'someone-else' }))).toBeNull();
    expect(await tokens.verifyAccess(await craft({ typ: 'refresh' }))).toBeNull();
    expect(await tokens.verifyAccess(await craft({ sub: null }))).toBeNull();
  });

  it('returns null, never throws, for garbage', async () => {
    for (const junk of ['', 'not-a-jwt', 'a.b.c', '..', 'eyJhbGciOiJIUzI1NiJ9.e30.', 'x'.repeat(10_000)]) {
      expect(await tokens.verifyAccess(junk)).toBeNull();
    }
  });
});
