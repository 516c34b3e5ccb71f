/** Request pieces shared by every module's routes. */
import { z } from 'zod';

export const idParams = z.object({ id: z.uuid() });

/** Cursor pagination: `limit` 1..200 (default 50); `cursor` is opaque, from the previous page. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});

export const isoDate = z.iso.date();

export function encodeCursor(parts: Record<string, string>): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

/** Decodes a cursor made by encodeCursor; null when it was tampered with or is malformed. */
export function decodeCursor<K extends string>(cursor: string, keys: readonly K[]): Record<K, string> | null {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
    for (const k of keys) if (typeof parsed[k] !== 'string') return null;
    return parsed as Record<K, string>;
  } catch {
    return null;
  }
}
