/** Categories of one user: the default set (seeded at registration) plus their own. */
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { categories } from '../../db/schema.ts';
import { conflict } from '../../lib/errors.ts';
import type { CategoryRow } from './schemas.ts';

export class CategoryService {
  constructor(private readonly db: Db) {}

  /** Sorted by name regardless of case; the C collation gives one order on every server and PGlite. */
  async list(userId: string): Promise<CategoryRow[]> {
    return this.db
      .select()
      .from(categories)
      .where(eq(categories.userId, userId))
      .orderBy(sql`lower(${categories.name}) collate "C"`, sql`${categories.name} collate "C"`, asc(categories.id));
  }

  /** Names are unique per user regardless of case (unique index on lower(name)): 409 for a second one. */
  async create(userId: string, name: string): Promise<CategoryRow> {
    const [row] = await this.db.insert(categories).values({ userId, name, isDefault: false }).onConflictDoNothing().returning();
    if (!row) throw conflict(`You already have a category named "${name}"`);
    return row;
  }

  /** True when the category exists and belongs to the user. */
  async owns(userId: string, id: string): Promise<boolean> {
    const [row] = await this.db
      .select({ id: categories.id })
      .from(categories)
      .where(and(eq(categories.id, id), eq(categories.userId, userId)));
    return row !== undefined;
  }
}
