import { describe, expect, it } from 'vitest';
import { elapsedFraction, periodProgress, periodWindow } from '../../src/modules/budgets/periods.ts';

const at = (iso: string) => new Date(iso);
const DAY = 86_400_000;

describe('periodWindow', () => {
  it('monthly: first to last day of the UTC calendar month', () => {
    const w = periodWindow('monthly', at('2023-04-17T15:00:00Z'));
    expect(w).toMatchObject({ period: 'monthly', start: '2023-04-01', end: '2023-04-30' });
    expect(w.startsAt.toISOString()).toBe('2023-04-01T00:00:00.000Z');
    expect(w.endsAt.toISOString()).toBe('2023-05-01T00:00:00.000Z');
  });

  it('monthly: 31-day months, December rolls into January of the next year', () => {
    expect(periodWindow('monthly', at('2023-01-31T23:59:59.999Z'))).toMatchObject({ start: '2023-01-01', end: '2023-01-31' });
    const dec = periodWindow('monthly', at('2023-12-15T00:00:00Z'));
    expect(dec).toMatchObject({ start: '2023-12-01', end: '2023-12-31' });
    expect(dec.endsAt.toISOString()).toBe('2024-01-01T00:00:00.000Z');
  });

  it('February has 29 days in leap years (2024, 2000) and 28 otherwise (2023, 1900)', () => {
    expect(periodWindow('monthly', at('2024-02-10T00:00:00Z')).end).toBe('2024-02-29');
    expect(periodWindow('monthly', at('2000-02-10T00:00:00Z')).end).toBe('2000-02-29');
    expect(periodWindow('monthly', at('2023-02-10T00:00:00Z')).end).toBe('2023-02-28');
    expect(periodWindow('monthly', at('1900-02-10T00:00:00Z')).end).toBe('1900-02-28');
    expect(periodWindow('monthly', at('2024-02-29T12:00:00Z')).start).toBe('2024-02-01');
  });

  it('uses UTC, not the local zone: the instant decides the period', () => {
    expect(periodWindow('monthly', at('2024-03-01T00:00:00Z')).start).toBe('2024-03-01');
    expect(periodWindow('monthly', at('2024-02-29T23:59:59.999Z')).start).toBe('2024-02-01');
    // 2024-03-01 01:00 in UTC+02:00 is still February in UTC.
    expect(periodWindow('monthly', at('2024-03-01T01:00:00+02:00')).start).toBe('2024-02-01');
  });

  it('quarterly: Jan–Mar, Apr–Jun, Jul–Sep, Oct–Dec', () => {
    expect(periodWindow('quarterly', at('2024-01-01T00:00:00Z'))).toMatchObject({ start: '2024-01-01', end: '2024-03-31' });
    expect(periodWindow('quarterly', at('2024-03-31T23:59:59Z'))).toMatchObject({ start: '2024-01-01', end: '2024-03-31' });
    expect(periodWindow('quarterly', at('2024-04-01T00:00:00Z'))).toMatchObject({ start: '2024-04-01', end: '2024-06-30' });
    expect(periodWindow('quarterly', at('2024-08-15T00:00:00Z'))).toMatchObject({ start: '2024-07-01', end: '2024-09-30' });
    const q4 = periodWindow('quarterly', at('2024-11-30T00:00:00Z'));
    expect(q4).toMatchObject({ start: '2024-10-01', end: '2024-12-31' });
    expect(q4.endsAt.toISOString()).toBe('2025-01-01T00:00:00.000Z');
  });

  it('yearly: 1 January to 31 December', () => {
    const y = periodWindow('yearly', at('2024-07-04T10:00:00Z'));
    expect(y).toMatchObject({ start: '2024-01-01', end: '2024-12-31' });
    expect(y.endsAt.getTime() - y.startsAt.getTime()).toBe(366 * DAY);
    const y2 = periodWindow('yearly', at('2023-07-04T10:00:00Z'));
    expect(y2.endsAt.getTime() - y2.startsAt.getTime()).toBe(365 * DAY);
  });
});

describe('elapsed fraction', () => {
  it('is 0 at the first instant and grows with time', () => {
    const w = periodWindow('monthly', at('2024-04-01T00:00:00Z'));
    expect(elapsedFraction(w, at('2024-04-01T00:00:00Z'))).toBe(0);
    expect(elapsedFraction(w, at('2024-04-16T00:00:00Z'))).toBe(0.5); // 15 of 30 days
    expect(elapsedFraction(w, at('2024-04-04T00:00:00Z'))).toBeCloseTo(0.1, 10); // 3 of 30 days
  });

  it('counts February 2024 as 29 days', () => {
    const w = periodWindow('monthly', at('2024-02-01T00:00:00Z'));
    const p = periodProgress(w, at('2024-02-15T12:00:00Z'));
    expect(p.totalMs).toBe(29 * DAY);
    expect(p.elapsedMs).toBe(14.5 * DAY);
    expect(elapsedFraction(w, at('2024-02-15T12:00:00Z'))).toBe(0.5);
  });

  it('quarter and year fractions', () => {
    const q = periodWindow('quarterly', at('2023-01-01T00:00:00Z'));
    expect(periodProgress(q, at('2023-02-15T00:00:00Z'))).toEqual({ elapsedMs: 45 * DAY, totalMs: 90 * DAY });
    const y = periodWindow('yearly', at('2024-01-01T00:00:00Z'));
    expect(elapsedFraction(y, at('2024-07-02T00:00:00Z'))).toBe(0.5); // 183 of 366 days
  });

  it('is clamped to [0, 1] outside the window', () => {
    const w = periodWindow('monthly', at('2024-04-10T00:00:00Z'));
    expect(elapsedFraction(w, at('2024-03-20T00:00:00Z'))).toBe(0);
    expect(elapsedFraction(w, at('2024-06-01T00:00:00Z'))).toBe(1);
  });
});
