/** Validation pieces shared by the modules' schemas and routes. */
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
