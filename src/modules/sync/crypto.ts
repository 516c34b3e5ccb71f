/**
 * Bank access tokens at rest: AES-256-GCM with a random 96-bit nonce per token, authenticated
 * together with the row they belong to (the item id as additional data), so a ciphertext copied
 * onto another item does not decrypt. Stored as `v1.<key id>.<nonce>.<ciphertext>.<tag>`
 * (base64url); the key id (first bytes of the key's SHA-256) names the key that sealed it.
 *
 * The key is TOKEN_ENCRYPTION_KEY; outside production, when it is not set, a generated key is
 * kept under DATA_DIR (like the development JWT secret), so tokens survive restarts.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Config } from '../../config.ts';
import { persistedSecret, randomKey } from '../../lib/secrets.ts';

const VERSION = 'v1';
const NONCE_BYTES = 12;

export class TokenDecryptionError extends Error {
  override name = 'TokenDecryptionError';
}

const b64 = (b: Buffer) => b.toString('base64url');

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 8);
}

export class TokenCipher {
  private readonly keys: Map<string, Buffer>;
  private readonly currentId: string;

  /** `previous` keys still decrypt tokens sealed before a key rotation. */
  constructor(
    private readonly key: Buffer,
    previous: Buffer[] = [],
  ) {
    if (key.length !== 32) throw new Error('the token encryption key must be 32 bytes');
    this.currentId = keyId(key);
    this.keys = new Map([key, ...previous].map((k) => [keyId(k), k]));
  }

  encrypt(plaintext: string, associatedData: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, this.currentId, b64(nonce), b64(ciphertext), b64(cipher.getAuthTag())].join('.');
  }

  decrypt(sealed: string, associatedData: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new TokenDecryptionError('not a sealed token');
    const [, kid, nonce, ciphertext, tag] = parts as [string, string, string, string, string];
    const key = this.keys.get(kid);
    if (!key) throw new TokenDecryptionError(`sealed with an unknown key (${kid})`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'));
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new TokenDecryptionError('the sealed token failed authentication');
    }
  }
}

const TOKEN_KEY_FILE = randomKey('token-encryption-key', 32);

/** TOKEN_ENCRYPTION_KEY, or (outside production) a generated key persisted under DATA_DIR. */
export function resolveTokenKey(config: Config): Buffer {
  if (config.bankSync.encryptionKey) return config.bankSync.encryptionKey;
  if (config.isProduction) throw new Error('TOKEN_ENCRYPTION_KEY is required in production');
  return persistedSecret(config.database.dataDir, TOKEN_KEY_FILE);
}
