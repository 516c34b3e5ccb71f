/** Access tokens at rest: AES-256-GCM, bound to their item, with key rotation and a persisted development key. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { TokenCipher, TokenDecryptionError, keyId, resolveTokenKey } from '../../src/modules/sync/crypto.ts';

const TOKEN = 'access-sandbox-6f5a8d4c-0c5d-4a5e-9a1d-1b2c3d4e5f60';

describe('TokenCipher', () => {
  const key = randomBytes(32);
  const cipher = new TokenCipher(key);

  it('round-trips and never stores the plaintext', () => {
    const sealed = cipher.encrypt(TOKEN, 'item-1');
    expect(sealed).toMatch(/^v1\.[\w-]{8}\.[\w-]{16}\.[\w-]+\.[\w-]{22}$/);
    expect(sealed).not.toContain(TOKEN);
    expect(sealed).not.toContain(Buffer.from(TOKEN).toString('base64url').slice(0, 12));
    expect(cipher.decrypt(sealed, 'item-1')).toBe(TOKEN);
  });

  it('uses a fresh nonce each time', () => {
    const [a, b] = [cipher.encrypt(TOKEN, 'item-1'), cipher.encrypt(TOKEN, 'item-1')];
    expect(a).not.toBe(b);
    // Two nonces (the third part), and both sealings open: not just two different strings.
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
    expect([cipher.decrypt(a, 'item-1'), cipher.decrypt(b, 'item-1')]).toEqual([TOKEN, TOKEN]);
  });

  it('refuses a token moved to another item, a tampered one, and another key', () => {
    const sealed = cipher.encrypt(TOKEN, 'item-1');
    expect(() => cipher.decrypt(sealed, 'item-2')).toThrow(TokenDecryptionError);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    parts[3] = ct.toString('base64url');
    expect(() => cipher.decrypt(parts.join('.'), 'item-1')).toThrow(/authentication/);
    expect(() => new TokenCipher(randomBytes(32)).decrypt(sealed, 'item-1')).toThrow(/unknown key/);
    expect(() => cipher.decrypt('plain-token', 'item-1')).toThrow(/not a sealed token/);
  });

  it('decrypts with a previous key after rotation and seals with the new one', () => {
    const oldKey = randomBytes(32);
    const sealedOld = new TokenCipher(oldKey).encrypt(TOKEN, 'item-1');
    const rotated = new TokenCipher(key, [oldKey]);
    expect(rotated.decrypt(sealedOld, 'item-1')).toBe(TOKEN);
    expect(rotated.encrypt(TOKEN, 'item-1').split('.')[1]).toBe(keyId(key));
  });

  it('wants a 32-byte key', () => {
    expect(() => new TokenCipher(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('the token key from configuration', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('reads TOKEN_ENCRYPTION_KEY as hex or base64 and rejects other lengths', () => {
    const raw = randomBytes(32);
    expect(loadConfig({ TOKEN_ENCRYPTION_KEY: raw.toString('hex') }).bankSync.encryptionKey).toEqual(raw);
    expect(loadConfig({ TOKEN_ENCRYPTION_KEY: raw.toString('base64') }).bankSync.encryptionKey).toEqual(raw);
    expect(() => loadConfig({ TOKEN_ENCRYPTION_KEY: randomBytes(16).toString('base64') })).toThrow(/TOKEN_ENCRYPTION_KEY/);
  });

  it('is required in production when bank sync is on, and not when it is off', () => {
    const prod = { ENVIRONMENT: 'production', JWT_SECRET: 'x'.repeat(40), PLAID_CLIENT_ID: 'id', PLAID_SECRET: 'secret' };
    expect(() => loadConfig(prod)).toThrow(ConfigError);
    expect(() => loadConfig(prod)).toThrow(/TOKEN_ENCRYPTION_KEY is required/);
    expect(loadConfig({ ...prod, TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64') }).bankSync.provider).toBe('plaid');
    const off = loadConfig({ ENVIRONMENT: 'production', JWT_SECRET: 'x'.repeat(40) });
    expect(off.bankSync.provider).toBe('none');
    expect(() => resolveTokenKey(off)).toThrow(/required in production/);
  });

  it('picks the demo provider in development without credentials', () => {
    expect(loadConfig({}).bankSync.provider).toBe('demo');
    expect(loadConfig({ PLAID_CLIENT_ID: 'id', PLAID_SECRET: 's' }).bankSync.provider).toBe('plaid');
    expect(() => loadConfig({ BANK_SYNC_PROVIDER: 'plaid' })).toThrow(/PLAID_CLIENT_ID and PLAID_SECRET/);
  });

  it('outside production, generates a key once and keeps it under DATA_DIR (mode 600)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nest-egg-key-'));
    dirs.push(dir);
    const config = loadConfig({ DATA_DIR: dir });
    const first = resolveTokenKey(config);
    expect(first).toHaveLength(32);
    expect(resolveTokenKey(config)).toEqual(first);
    const file = join(dir, 'token-encryption-key');
    expect(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')).toEqual(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
