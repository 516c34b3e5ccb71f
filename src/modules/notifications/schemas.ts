/** The JSON shape of a notification, shared by /notifications and /budgets/check-alerts. */
import { z } from 'zod';
import type { notifications } from '../../db/schema.ts';

export type NotificationRow = typeof notifications.$inferSelect;

export const notificationSchema = z.object({
  id: z.uuid(),
  type: z.string(),
  priority: z.enum(['low', 'medium', 'high']),
  title: z.string(),
  message: z.string(),
  budget_id: z.uuid().nullable(),
  period_start: z.string().nullable(),
  data: z.record(z.string(), z.unknown()).nullable(),
  read_at: z.string().nullable(),
  created_at: z.string(),
});

export type NotificationView = z.infer<typeof notificationSchema>;

export function notificationView(row: NotificationRow): NotificationView {
  return {
    id: row.id,
    type: row.type,
    priority: row.priority,
    title: row.title,
    message: row.message,
    budget_id: row.budgetId,
    period_start: row.periodStart,
    data: (row.data as Record<string, unknown> | null) ?? null,
    read_at: row.readAt ? row.readAt.toISOString() : null,
    created_at: row.createdAt.toISOString(),
  };
}
