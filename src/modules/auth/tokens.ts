/** Access tokens: HS256 JWTs signed with JWT_SECRET (jose). Only HS256 is accepted, so `alg: none` fails. */
import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';

export class TokenService {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    readonly accessTtlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issueAccess(userId: string): Promise<string> {
    return new SignJWT({ typ: 'access' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt()
      .setIssuer('nest-egg')
      // Two tokens issued in the same second for the same user still differ.
      .setJti(randomUUID())
      .setExpirationTime(`${this.accessTtlSeconds}s`)
      .sign(this.key);
  }

  /** The user id of a valid access token, or null for anything else (bad signature, expired, wrong alg). */
  async verifyAccess(token: string): Promise<string | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: 'nest-egg' });
      return payload.typ === 'access' && typeof payload.sub === 'string' ? payload.sub : null;
    } catch {
      return null;
    }
  }
}
