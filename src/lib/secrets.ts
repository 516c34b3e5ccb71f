/**
 * Generated development secrets: outside production, a secret that is not configured is generated
 * once and kept in a file under DATA_DIR (mode 0600), so tokens survive restarts. `memory://`
 * data keeps nothing on disk: the secret lives as long as the process.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface PersistedSecret<T> {
  /** The file's name under DATA_DIR. */
  file: string;
  /** Makes a new secret. */
  generate(): T;
  encode(secret: T): string;
  /** The stored text as a secret, or undefined when it is not a valid one (it is then replaced). */
  decode(text: string): T | undefined;
}

export function persistedSecret<T>(dataDir: string, kind: PersistedSecret<T>): T {
  if (dataDir === 'memory://') return kind.generate();
  const dir = resolve(dataDir);
  const file = join(dir, kind.file);
  try {
    const existing = kind.decode(readFileSync(file, 'utf8').trim());
    if (existing !== undefined) return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dir, { recursive: true });
  const secret = kind.generate();
  writeFileSync(file, `${kind.encode(secret)}\n`, { mode: 0o600 });
  return secret;
}

/** Random bytes, stored as base64. */
export const randomKey = (file: string, bytes: number): PersistedSecret<Buffer> => ({
  file,
  generate: () => randomBytes(bytes),
  encode: (key) => key.toString('base64'),
  decode: (text) => {
    const key = Buffer.from(text, 'base64');
    return key.length === bytes ? key : undefined;
  },
});

/** A random string (base64url), stored as is. */
export const randomString = (file: string, bytes: number, minLength: number): PersistedSecret<string> => ({
  file,
  generate: () => randomBytes(bytes).toString('base64url'),
  encode: (s) => s,
  decode: (text) => (text.length >= minLength ? text : undefined),
});
