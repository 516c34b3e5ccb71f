/**
 * The keyset cursor of every paginated list: an opaque base64url JSON object made by encodeCursor,
 * and validated in one place when it comes back. A cursor that was tampered with, is malformed or
 * belongs to another list is a 422 on `query.cursor`, never a database error.
 */
import type { z } from 'zod';
import { unprocessable } from './errors.ts';

export function encodeCursor(parts: Record<string, string>): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export const invalidCursor = () =>
  unprocessable('The cursor is not valid', [{ field: 'query.cursor', message: 'is not a cursor from a previous page' }]);

/** Decodes a cursor made by encodeCursor and checks it against the list's own schema. */
export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw invalidCursor();
  return result.data;
}
