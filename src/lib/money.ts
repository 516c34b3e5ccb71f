/**
 * Money is exact end to end: decimal strings in JSON, numeric(14,2) in the database, and integer
 * cents (bigint) for any arithmetic in between. Never a float.
 */
import { z } from 'zod';

const DECIMAL = /^-?\d{1,12}(\.\d{1,2})?$/;

/** A money amount in a request: a decimal string ("-84.70") or a number with at most two decimals. */
export const moneySchema = z
  .union([z.string(), z.number()])
  .transform((v) => (typeof v === 'number' ? String(v) : v.trim()))
  .refine((v) => DECIMAL.test(v), { message: 'must be a decimal amount with at most 2 decimal places and 12 integer digits' })
  .transform((v) => fromCents(toCents(v)));

export function toCents(amount: string): bigint {
  const negative = amount.startsWith('-');
  const [whole = '0', frac = ''] = amount.replace(/^[-+]/, '').split('.');
  const cents = BigInt(whole) * 100n + BigInt((frac + '00').slice(0, 2));
  return negative ? -cents : cents;
}

export function fromCents(cents: bigint): string {
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const s = `${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
  return negative ? `-${s}` : s;
}

/** Normalises a numeric value from the database ("84.7" or "84.70") to two decimals. */
export function formatMoney(amount: string | number): string {
  return fromCents(toCents(String(amount)));
}
