/**
 * The budget alert rule and the figures it rests on, as pure functions over integer cents.
 *
 *   high   spent ≥ 100 % of the amount
 *   medium spent ≥ alert_threshold × amount
 *   low    below the threshold, but at least MIN_PACE_ELAPSED_PERCENT (10 %) of the period has passed
 *          and the pace projects strictly over 100 % by the period end
 *          (projected = spent × period length ÷ elapsed time)
 *
 * Every comparison is done on bigint cross-products, so no float rounding decides an alert.
 */
import type { PeriodProgress } from './periods.ts';

export type AlertPriority = 'low' | 'medium' | 'high';

/**
 * A pace projection needs some history: on day 1 of a month a single purchase would otherwise
 * project to 30 times itself. 10 % is about 3 days of a month, 9 days of a quarter, 36 of a year.
 */
export const MIN_PACE_ELAPSED_PERCENT = 10;

export interface BudgetStanding {
  spentCents: bigint;
  amountCents: bigint;
  /** alert_threshold in hundredths (0.80 → 80n). */
  thresholdHundredths: bigint;
  progress: PeriodProgress;
}

function paceIsReliable({ elapsedMs, totalMs }: PeriodProgress): boolean {
  return elapsedMs > 0 && elapsedMs * 100 >= totalMs * MIN_PACE_ELAPSED_PERCENT;
}

/** The one alert a budget deserves right now (the highest that applies), or null. */
export function budgetAlertPriority(s: BudgetStanding): AlertPriority | null {
  if (s.amountCents <= 0n) return null;
  if (s.spentCents >= s.amountCents) return 'high';
  if (s.spentCents * 100n >= s.amountCents * s.thresholdHundredths) return 'medium';
  if (!paceIsReliable(s.progress)) return null;
  const { elapsedMs, totalMs } = s.progress;
  return s.spentCents * BigInt(totalMs) > s.amountCents * BigInt(elapsedMs) ? 'low' : null;
}

/** Spending projected to the period end at the current pace, in cents; null while the pace is unreliable. */
export function projectedSpentCents(spentCents: bigint, progress: PeriodProgress): bigint | null {
  if (!paceIsReliable(progress)) return null;
  const total = BigInt(progress.totalMs);
  const elapsed = BigInt(progress.elapsedMs);
  return (spentCents * total * 2n + elapsed) / (2n * elapsed); // rounded half up
}

/** spent as a percentage of amount, rounded to 2 decimals (85.5 for 85.50 %). */
export function percentOf(spentCents: bigint, amountCents: bigint): number {
  if (amountCents <= 0n) return 0;
  const basisPoints = (spentCents * 10_000n * 2n + amountCents) / (2n * amountCents);
  return Number(basisPoints) / 100;
}
