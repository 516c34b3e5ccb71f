/** The categories every new user starts with. */
import type { Db } from '../../db/client.ts';
import { categories } from '../../db/schema.ts';

export const DEFAULT_CATEGORIES = [
  'Groceries', 'Dining', 'Rent', 'Utilities', 'Transportation', 'Shopping', 'Entertainment',
  'Health', 'Travel', 'Income', 'Transfer', 'Fees', 'Other',
] as const;

export async function seedDefaultCategories(db: Db, userId: string): Promise<void> {
  await db
    .insert(categories)
    .values(DEFAULT_CATEGORIES.map((name) => ({ userId, name, isDefault: true })))
    .onConflictDoNothing();
}
