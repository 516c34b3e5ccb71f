/** Request and response shapes of /api/v1/transactions. */
import { z } from 'zod';
import type { transactions } from '../../db/schema.ts';
import { calendarDate, pageQuery, textField } from '../../lib/schemas.ts';
import { formatMoney, moneySchema, toCents } from '../../lib/money.ts';

export type TransactionRow = typeof transactions.$inferSelect;

const fields = {
  account_id: z.uuid(),
  date: calendarDate,
  // Negative is money out (an expense), positive is money in.
  amount: moneySchema,
  merchant_name: textField(200).nullable(),
  description: textField(1000).nullable(),
  category_id: z.uuid().nullable(),
  pending: z.boolean(),
};

export const createTransactionBody = z.object({
  account_id: fields.account_id,
  date: fields.date,
  amount: fields.amount,
  merchant_name: fields.merchant_name.optional(),
  description: fields.description.optional(),
  category_id: fields.category_id.optional(),
  pending: fields.pending.default(false),
});

export const updateTransactionBody = z.object({
  account_id: fields.account_id.optional(),
  date: fields.date.optional(),
  amount: fields.amount.optional(),
  merchant_name: fields.merchant_name.optional(),
  description: fields.description.optional(),
  category_id: fields.category_id.optional(),
  pending: fields.pending.optional(),
});

export type CreateTransaction = z.output<typeof createTransactionBody>;
export type UpdateTransaction = z.output<typeof updateTransactionBody>;

export const listTransactionsQuery = pageQuery
  .extend({
    account_id: z.uuid().optional(),
    category_id: z.uuid().optional(),
    start_date: calendarDate.optional(),
    end_date: calendarDate.optional(),
    min_amount: moneySchema.optional(),
    max_amount: moneySchema.optional(),
    merchant: textField(200).optional().describe('case-insensitive substring of the merchant name'),
  })
  .superRefine((q, ctx) => {
    if (q.start_date && q.end_date && q.start_date > q.end_date) {
      ctx.addIssue({ code: 'custom', path: ['end_date'], message: 'must not be before start_date' });
    }
    if (q.min_amount !== undefined && q.max_amount !== undefined && toCents(q.min_amount) > toCents(q.max_amount)) {
      ctx.addIssue({ code: 'custom', path: ['max_amount'], message: 'must not be less than min_amount' });
    }
  });

export type ListTransactionsQuery = z.output<typeof listTransactionsQuery>;

export const transactionSchema = z.object({
  id: z.uuid(),
  account_id: z.uuid(),
  date: z.string(),
  amount: z.string(),
  merchant_name: z.string().nullable(),
  description: z.string().nullable(),
  category_id: z.uuid().nullable(),
  pending: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const transactionPageSchema = z.object({ items: z.array(transactionSchema), next_cursor: z.string().nullable() });

export type TransactionView = z.infer<typeof transactionSchema>;

export function transactionView(row: TransactionRow): TransactionView {
  return {
    id: row.id,
    account_id: row.accountId,
    date: row.date,
    amount: formatMoney(row.amount),
    merchant_name: row.merchantName,
    description: row.description,
    category_id: row.categoryId,
    pending: row.pending,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
