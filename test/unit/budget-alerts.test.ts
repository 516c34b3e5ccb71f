import { describe, expect, it } from 'vitest';
import {
  budgetAlertPriority,
  MIN_PACE_ELAPSED_PERCENT,
  percentOf,
  projectedSpentCents,
  type BudgetStanding,
} from '../../src/modules/budgets/alert-rules.ts';

const DAY = 86_400_000;
const month = (elapsedDays: number) => ({ elapsedMs: Math.round(elapsedDays * DAY), totalMs: 30 * DAY });
const standing = (spentCents: bigint, over: Partial<BudgetStanding> = {}): BudgetStanding => ({
  spentCents,
  amountCents: 50_000n, // 500.00
  thresholdHundredths: 80n, // 0.80
  progress: month(15),
  ...over,
});

describe('budgetAlertPriority', () => {
  it('high at exactly 100 % and above', () => {
    expect(budgetAlertPriority(standing(50_000n))).toBe('high');
    expect(budgetAlertPriority(standing(50_001n))).toBe('high');
    expect(budgetAlertPriority(standing(120_000n, { progress: month(0) }))).toBe('high');
  });

  it('medium from the threshold up to one cent below 100 %', () => {
    expect(budgetAlertPriority(standing(40_000n))).toBe('medium'); // 400.00 = 80 %
    expect(budgetAlertPriority(standing(49_999n))).toBe('medium');
    expect(budgetAlertPriority(standing(39_999n, { progress: month(29) }))).toBeNull(); // 79.998 %, pace 82.7 %
  });

  it('uses the budget own threshold, compared exactly (no float rounding)', () => {
    // 0.33 of 100.01 = 33.0033: 33.00 is below, 33.01 is at or above.
    const s = { amountCents: 10_001n, thresholdHundredths: 33n, progress: month(29.9) };
    expect(budgetAlertPriority(standing(3_300n, s))).toBeNull();
    expect(budgetAlertPriority(standing(3_301n, s))).toBe('medium');
    // With a threshold of 1.00 only reaching the amount alerts (checked at the period's end, so no pace).
    expect(budgetAlertPriority(standing(10_000n, { thresholdHundredths: 100n, amountCents: 10_001n, progress: month(30) }))).toBeNull();
    expect(budgetAlertPriority(standing(10_001n, { thresholdHundredths: 100n, amountCents: 10_001n }))).toBe('high');
  });

  it('low when below the threshold but the pace projects over 100 %', () => {
    // 300.00 after 15 of 30 days → 600.00 projected.
    expect(budgetAlertPriority(standing(30_000n))).toBe('low');
    // 250.00 after 15 days → exactly 500.00: not over, no alert.
    expect(budgetAlertPriority(standing(25_000n))).toBeNull();
    expect(budgetAlertPriority(standing(25_001n))).toBe('low');
  });

  it(`needs at least ${MIN_PACE_ELAPSED_PERCENT} % of the period before judging the pace`, () => {
    // 3 of 30 days is exactly 10 %: 60.00 projects to 600.00.
    expect(budgetAlertPriority(standing(6_000n, { progress: month(3) }))).toBe('low');
    // One hour earlier the same spending is not judged.
    expect(budgetAlertPriority(standing(6_000n, { progress: { elapsedMs: 3 * DAY - 3_600_000, totalMs: 30 * DAY } }))).toBeNull();
    // Day 1: a single big purchase below the threshold does not alert.
    expect(budgetAlertPriority(standing(30_000n, { progress: month(0.5) }))).toBeNull();
    expect(budgetAlertPriority(standing(30_000n, { progress: month(0) }))).toBeNull();
  });

  it('nothing when spending is zero or the amount is not positive', () => {
    expect(budgetAlertPriority(standing(0n))).toBeNull();
    expect(budgetAlertPriority(standing(100n, { amountCents: 0n }))).toBeNull();
  });
});

describe('projectedSpentCents and percentOf', () => {
  it('projects spent over the whole period, rounded half up to the cent', () => {
    expect(projectedSpentCents(30_000n, month(15))).toBe(60_000n);
    expect(projectedSpentCents(100n, month(9))).toBe(333n); // 3.333…
    expect(projectedSpentCents(200n, month(9))).toBe(667n); // 6.666…
    expect(projectedSpentCents(30_000n, month(1))).toBeNull();
  });

  it('gives a percentage with two decimals', () => {
    expect(percentOf(42_550n, 50_000n)).toBe(85.1);
    expect(percentOf(1n, 3n)).toBe(33.33);
    expect(percentOf(2n, 3n)).toBe(66.67);
    expect(percentOf(60_000n, 50_000n)).toBe(120);
    expect(percentOf(0n, 50_000n)).toBe(0);
  });
});
