/** Request and response shapes of /api/v1/categories. */
import { z } from 'zod';
import type { categories } from '../../db/schema.ts';
import { textField } from '../../lib/schemas.ts';

export type CategoryRow = typeof categories.$inferSelect;

export const createCategoryBody = z.object({ name: textField(100) });

export const categorySchema = z.object({
  id: z.uuid(),
  name: z.string(),
  is_default: z.boolean(),
  created_at: z.string(),
});

export type CategoryView = z.infer<typeof categorySchema>;

export function categoryView(row: CategoryRow): CategoryView {
  return { id: row.id, name: row.name, is_default: row.isDefault, created_at: row.createdAt.toISOString() };
}
