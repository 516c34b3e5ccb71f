/** Request pieces shared by every module's routes. */
import { z } from 'zod';

export const idParams = z.object({ id: z.uuid() });

/** Cursor pagination: `limit` 1..200 (default 50); `cursor` is opaque, from the previous page. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});

export const isoDate = z.iso.date();

/** A calendar date Postgres can store: isoDate without year 0000 (which `date` rejects). */
export const calendarDate = isoDate.refine((v) => !v.startsWith('0000'), { message: 'year must be 0001 or later' });

/** Free text from a client: trimmed, bounded, and without U+0000 (Postgres text cannot hold it). */
export function textField(max: number, min = 1) {
  return z
    .string()
    .trim()
    .min(min)
    .max(max)
    .refine((v) => !v.includes('\u0000'), { message: 'must not contain NUL characters' });
}

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
