/** Request and response shapes of /api/v1/accounts. */
import { z } from 'zod';
import type { accounts } from '../../db/schema.ts';
import { textField } from '../../lib/schemas.ts';
import { formatMoney, moneySchema } from '../../lib/money.ts';

export type AccountRow = typeof accounts.$inferSelect;

export const ACCOUNT_TYPES = ['checking', 'savings', 'credit_card', 'loan', 'investment', 'other'] as const;

const fields = {
  name: textField(100),
  type: z.enum(ACCOUNT_TYPES),
  institution: textField(100).nullable(),
  // Only the last digits of an account number are ever stored, never the number itself.
  mask: z.string().regex(/^\d{2,4}$/, { message: 'must be the last 2 to 4 digits of the account number' }).nullable(),
  current_balance: moneySchema,
  currency: z
    .string()
    .trim()
    .toUpperCase()
    .regex(/^[A-Z]{3}$/, { message: 'must be a 3-letter ISO 4217 currency code' }),
};

export const createAccountBody = z.object({
  name: fields.name,
  type: fields.type,
  institution: fields.institution.optional(),
  mask: fields.mask.optional(),
  // A new manual account without a balance starts at zero. `prefault` (not `default`): the value
  // is an input that is parsed like any other, so the OpenAPI document shows the default too.
  current_balance: fields.current_balance.prefault('0.00'),
  currency: fields.currency.default('USD'),
});

export const updateAccountBody = z.object({
  name: fields.name.optional(),
  type: fields.type.optional(),
  institution: fields.institution.optional(),
  mask: fields.mask.optional(),
  current_balance: fields.current_balance.optional(),
  currency: fields.currency.optional(),
});

export type CreateAccount = z.output<typeof createAccountBody>;
export type UpdateAccount = z.output<typeof updateAccountBody>;

export const accountSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  type: z.enum(ACCOUNT_TYPES),
  institution: z.string().nullable(),
  mask: z.string().nullable(),
  current_balance: z.string(),
  currency: z.string(),
  source: z.enum(['manual', 'plaid']),
  created_at: z.string(),
  updated_at: z.string(),
});

export type AccountView = z.infer<typeof accountSchema>;

export function accountView(row: AccountRow): AccountView {
  return {
    id: row.id,
    name: row.name,
    type: row.type,
    institution: row.institution,
    mask: row.mask,
    current_balance: formatMoney(row.currentBalance),
    currency: row.currency,
    source: row.source,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
