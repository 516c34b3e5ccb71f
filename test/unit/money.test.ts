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
  // Each pair sums wrongly in floating point (0.1 + 0.2 is 0.30000000000000004, 1.1 + 2.2 is
  // 3.3000000000000003, …): summed as cents from toCents, the total is the exact decimal.
  it.each([
    ['0.10', '0.20', '0.30'],
    ['1.10', '2.20', '3.30'],
    ['0.7', '0.1', '0.80'],
    ['-0.30', '0.10', '-0.20'],
    ['84.70', '-84.7', '0.00'],
    ['999999999999.99', '0.01', '1000000000000.00'],
  ])('0.10 + 0.20 is 0.30, unlike floating point (%s + %s = %s)', (a, b, sum) => {
    expect(fromCents(toCents(a) + toCents(b))).toBe(sum);
    expect(fromCents(toCents(moneySchema.parse(a)) + toCents(moneySchema.parse(b)))).toBe(sum);
  });

  it('a thousand amounts sum to the exact total, to the cent (seeded sample)', () => {
    // Amounts written the ways they arrive ("84.7", "84.70", "-3", "0.05"), from integer cents
    // rendered here by hand; the expected total is the integer sum of those cents.
    const random = mulberry32(7);
    let expected = 0;
    let sum = 0n;
    for (let i = 0; i < 1000; i++) {
      const cents = Math.floor((random() - 0.5) * 2_000_000);
      expected += cents;
      const abs = Math.abs(cents);
      const whole = Math.floor(abs / 100);
      const frac = String(abs % 100).padStart(2, '0');
      const text = frac === '00' && i % 2 === 0 ? `${whole}` : frac.endsWith('0') && i % 3 === 0 ? `${whole}.${frac[0]}` : `${whole}.${frac}`;
      sum += toCents(cents < 0 ? `-${text}` : text);
    }
    expect(sum).toBe(BigInt(expected));
    const abs = Math.abs(expected);
    expect(fromCents(sum)).toBe(`${expected < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`);
    // a thousand times one cent is ten units, not 9.99999…
    expect(fromCents(Array.from({ length: 1000 }, () => toCents('0.01')).reduce((a, b) => a + b, 0n))).toBe('10.00');
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
