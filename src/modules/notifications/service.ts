/** Notifications of one user: newest first, mark one or all as read. */
import { and, desc, eq, isNull, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../../db/client.ts';
import { notifications } from '../../db/schema.ts';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { notFound } from '../../lib/errors.ts';
import type { NotificationRow } from './schemas.ts';

export interface NotificationPage {
  items: NotificationRow[];
  nextCursor: string | null;
}

/**
 * The cursor carries created_at at full (microsecond) precision as a fixed UTC text, since a JS
 * Date would cut it to milliseconds and skip or repeat rows at a page edge.
 */
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const cursorTime = sql<string>`to_char(${notifications.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** A real instant after 1970 (no month 13, no 30 February), so the SQL cast can never fail. */
function isCursorTime(t: string): boolean {
  if (!CURSOR_TIME.test(t)) return false;
  const iso = `${t.slice(0, 23)}Z`;
  const d = new Date(iso);
  return !Number.isNaN(d.getTime()) && d.getTime() >= 0 && d.toISOString() === iso;
}

const cursorSchema = z.object({ t: z.string().refine(isCursorTime), i: z.uuid() });

export class NotificationService {
  constructor(private readonly db: Db) {}

  async list(userId: string, opts: { limit: number; cursor?: string; unreadOnly?: boolean }): Promise<NotificationPage> {
    const conditions: (SQL | undefined)[] = [eq(notifications.userId, userId)];
    if (opts.unreadOnly) conditions.push(isNull(notifications.readAt));
    if (opts.cursor) {
      const c = decodeCursor(opts.cursor, cursorSchema);
      conditions.push(sql`(${notifications.createdAt}, ${notifications.id}) < (${c.t}::timestamptz, ${c.i}::uuid)`);
    }
    const rows = await this.db
      .select({ row: notifications, cursorTime })
      .from(notifications)
      .where(and(...conditions))
      .orderBy(desc(notifications.createdAt), desc(notifications.id))
      .limit(opts.limit + 1);
    const page = rows.slice(0, opts.limit);
    const last = page.at(-1);
    const nextCursor = rows.length > opts.limit && last ? encodeCursor({ t: last.cursorTime, i: last.row.id }) : null;
    return { items: page.map((r) => r.row), nextCursor };
  }

  /** Sets read_at once; reading an already-read notification keeps its first read_at. */
  async markRead(userId: string, id: string): Promise<NotificationRow> {
    const [row] = await this.db
      .update(notifications)
      .set({ readAt: sql`coalesce(${notifications.readAt}, now())` })
      .where(and(eq(notifications.id, id), eq(notifications.userId, userId)))
      .returning();
    if (!row) throw notFound('Notification');
    return row;
  }

  async markAllRead(userId: string): Promise<number> {
    const rows = await this.db
      .update(notifications)
      .set({ readAt: sql`now()` })
      .where(and(eq(notifications.userId, userId), isNull(notifications.readAt)))
      .returning({ id: notifications.id });
    return rows.length;
  }
}
