/** `nest-egg create-admin`: create a platform admin, or promote (and re-password) an existing user. */
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { users } from '../../db/schema.ts';
import { hashPassword } from './passwords.ts';
import { seedDefaultCategories } from '../categories/defaults.ts';

/** Whether the user is a platform admin; undefined when no such user exists. */
export async function isPlatformAdmin(db: Db, userId: string): Promise<boolean | undefined> {
  const [user] = await db.select({ isAdmin: users.isAdmin }).from(users).where(eq(users.id, userId));
  return user?.isAdmin;
}

export async function createOrPromoteAdmin(db: Db, email: string, password: string): Promise<{ id: string; created: boolean }> {
  const normalized = email.trim().toLowerCase();
  const passwordHash = await hashPassword(password);
  // One transaction, as in registration: a new admin never exists without its default categories.
  return db.transaction(async (tx) => {
    const [existing] = await tx.select({ id: users.id }).from(users).where(eq(sql`lower(${users.email})`, normalized));
    if (existing) {
      await tx.update(users).set({ isAdmin: true, passwordHash, updatedAt: new Date() }).where(eq(users.id, existing.id));
      return { id: existing.id, created: false };
    }
    const [user] = await tx.insert(users).values({ email: normalized, passwordHash, isAdmin: true }).returning({ id: users.id });
    await seedDefaultCategories(tx, user!.id);
    return { id: user!.id, created: true };
  });
}
