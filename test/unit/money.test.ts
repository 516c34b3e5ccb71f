import { describe, expect, it } from 'vitest';
import { formatMoney, fromCents, moneySchema, toCents } from '../../src/lib/money.ts';

/** A small seeded generator, so every run checks the same values. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('toCents', () => {
  it.each([
    ['84.70', 8470n],
    ['84.7', 8470n],
    ['-84.70', -8470n],
    ['0.05', 5n],
    ['-0.05', -5n],
    ['-0.5', -50n],
    ['12', 1200n],
    ['0', 0n],
    ['-0.00', 0n],
    ['999999999999.99', 99999999999999n],
  ])('%s is %s cents', (amount, cents) => {
    expect(toCents(amount)).toBe(cents);
  });
});

describe('fromCents', () => {
  it.each([
    [8470n, '84.70'],
    [-8470n, '-84.70'],
    [5n, '0.05'],
    [-5n, '-0.05'],
    [0n, '0.00'],
    [-100n, '-1.00'],
    [99999999999999n, '999999999999.99'],
  ])('%s cents is %s', (cents, amount) => {
    expect(fromCents(cents)).toBe(amount);
  });

  it('round-trips every value through toCents (seeded sample)', () => {
    const random = mulberry32(42);
    for (let i = 0; i < 2000; i++) {
      const cents = BigInt(Math.floor((random() - 0.5) * 2e14));
      expect(toCents(fromCents(cents))).toBe(cents);
    }
  });
});

describe('money arithmetic is exact', () => {
  it('0.10 + 0.20 is 0.30, unlike floating point', () => {
    expect(0.1 + 0.2).not.toBe(0.3);
    expect(fromCents(toCents('0.10') + toCents('0.20'))).toBe('0.30');
  });

  it('a thousand cents of 0.01 sum to 10.00', () => {
    let sum = 0n;
    for (let i = 0; i < 1000; i++) sum += toCents('0.01');
    expect(fromCents(sum)).toBe('10.00');
  });
});

describe('formatMoney', () => {
  it.each([
    ['84.7', '84.70'],
    ['84.70', '84.70'],
    ['-84.7', '-84.70'],
    ['0', '0.00'],
    ['-0.00', '0.00'],
    [84.7, '84.70'],
    [-3, '-3.00'],
  ])('%s formats as %s', (input, out) => {
    expect(formatMoney(input)).toBe(out);
  });
});

describe('moneySchema', () => {
  it.each([
    ['-84.70', '-84.70'],
    ['-84.7', '-84.70'],
    [' 12.5 ', '12.50'],
    ['7', '7.00'],
    [12.5, '12.50'],
    [0.1, '0.10'],
    [-0, '0.00'],
    ['999999999999.99', '999999999999.99'],
  ])('accepts %j as %s', (input, out) => {
    expect(moneySchema.parse(input)).toBe(out);
  });

  it.each([
    '1.234', 'abc', '', ' ', '1e3', '+5', '.5', '5.', '1,000.00', '--1', '0x10', '1234567890123', '12 34',
    0.30000000000000004, Number.NaN, Number.POSITIVE_INFINITY, 1e21, 1.005, true, null, undefined, {}, [],
  ])('rejects %j', (input) => {
    expect(moneySchema.safeParse(input).success).toBe(false);
  });
});
