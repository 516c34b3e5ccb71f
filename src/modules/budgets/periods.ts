/**
 * Budget periods: calendar month, quarter or year, in UTC. Pure functions of `now`, so the period
 * maths is testable without a clock.
 */

export const BUDGET_PERIODS = ['monthly', 'quarterly', 'yearly'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

export interface PeriodWindow {
  period: BudgetPeriod;
  /** First day of the period, YYYY-MM-DD (inclusive). */
  start: string;
  /** Last day of the period, YYYY-MM-DD (inclusive): transactions dated up to this day count. */
  end: string;
  /** 00:00 UTC of the first day. */
  startsAt: Date;
  /** 00:00 UTC of the day after the last day (the next period's start; exclusive). */
  endsAt: Date;
}

/** How far through its period `now` is, in whole milliseconds (exact, for bigint projections). */
export interface PeriodProgress {
  elapsedMs: number;
  totalMs: number;
}

const MONTHS_PER_PERIOD: Record<BudgetPeriod, number> = { monthly: 1, quarterly: 3, yearly: 12 };

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The period of the given kind that contains `now` (UTC calendar). */
export function periodWindow(period: BudgetPeriod, now: Date): PeriodWindow {
  const months = MONTHS_PER_PERIOD[period];
  const year = now.getUTCFullYear();
  const firstMonth = Math.floor(now.getUTCMonth() / months) * months;
  const startsAt = new Date(Date.UTC(year, firstMonth, 1));
  // Date.UTC rolls month 12 over into January of the next year.
  const endsAt = new Date(Date.UTC(year, firstMonth + months, 1));
  const lastDay = new Date(endsAt.getTime() - 86_400_000);
  return { period, start: isoDay(startsAt), end: isoDay(lastDay), startsAt, endsAt };
}

export function periodProgress(window: PeriodWindow, now: Date): PeriodProgress {
  const totalMs = window.endsAt.getTime() - window.startsAt.getTime();
  const elapsedMs = Math.min(totalMs, Math.max(0, now.getTime() - window.startsAt.getTime()));
  return { elapsedMs, totalMs };
}

/** Share of the period that has passed at `now`, in [0, 1]. */
export function elapsedFraction(window: PeriodWindow, now: Date): number {
  const { elapsedMs, totalMs } = periodProgress(window, now);
  return elapsedMs / totalMs;
}
