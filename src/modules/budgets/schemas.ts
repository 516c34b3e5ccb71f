/** Request and response shapes of /api/v1/budgets. */
import { z } from 'zod';
import { formatMoney, fromCents, moneySchema, toCents } from '../../lib/money.ts';
import { textField } from '../../lib/schemas.ts';
import type { budgets } from '../../db/schema.ts';
import { BUDGET_PERIODS } from './periods.ts';

export type BudgetRow = typeof budgets.$inferSelect;

const THRESHOLD = /^(0(\.\d{1,2})?|1(\.0{1,2})?)$/;

/** alert_threshold: a share of the amount, 0 < x ≤ 1, at most two decimals ("0.80" or 0.8). */
export const thresholdSchema = z
  .union([z.string(), z.number()])
  .transform((v) => (typeof v === 'number' ? String(v) : v.trim()))
  .refine((v) => THRESHOLD.test(v) && toCents(v) > 0n, {
    message: 'must be a decimal greater than 0 and at most 1, with at most 2 decimal places',
  })
  .transform((v) => fromCents(toCents(v)));

const positiveMoney = moneySchema.refine((v) => toCents(v) > 0n, { message: 'must be greater than 0' });

const fields = {
  name: textField(100),
  amount: positiveMoney,
  period: z.enum(BUDGET_PERIODS),
  category_id: z.uuid().nullable(),
  alert_threshold: thresholdSchema,
  is_active: z.boolean(),
};

export const createBudgetBody = z.object({
  name: fields.name,
  amount: fields.amount,
  period: fields.period.default('monthly'),
  category_id: fields.category_id.optional(),
  alert_threshold: fields.alert_threshold.default('0.80'),
  is_active: fields.is_active.default(true),
});

export const updateBudgetBody = z.object({
  name: fields.name.optional(),
  amount: fields.amount.optional(),
  period: fields.period.optional(),
  category_id: fields.category_id.optional(),
  alert_threshold: fields.alert_threshold.optional(),
  is_active: fields.is_active.optional(),
});

export type CreateBudget = z.output<typeof createBudgetBody>;
export type UpdateBudget = z.output<typeof updateBudgetBody>;

export const budgetSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  amount: z.string(),
  period: z.enum(BUDGET_PERIODS),
  category_id: z.uuid().nullable(),
  alert_threshold: z.string(),
  is_active: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export function budgetView(row: BudgetRow): z.infer<typeof budgetSchema> {
  return {
    id: row.id,
    name: row.name,
    amount: formatMoney(row.amount),
    period: row.period,
    category_id: row.categoryId,
    alert_threshold: formatMoney(row.alertThreshold),
    is_active: row.isActive,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export const spendingSchema = z.object({
  budget_id: z.uuid(),
  period: z.enum(BUDGET_PERIODS),
  period_start: z.string(),
  period_end: z.string(),
  amount: z.string(),
  spent: z.string(),
  remaining: z.string(),
  percent: z.number(),
  projected_spent: z.string().nullable(),
});
