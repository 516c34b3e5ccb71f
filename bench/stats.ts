/** Samples and their percentiles; figures formatted for the table. */

/** A growing list of numbers (latencies in ms), kept unboxed. */
export class Samples {
  private values = new Float64Array(4_096);
  private n = 0;

  add(v: number): void {
    if (this.n === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.n++] = v;
  }

  get count(): number {
    return this.n;
  }

  /** Percentiles (0..100) by the nearest-rank method. */
  percentiles(...ps: number[]): number[] {
    if (this.n === 0) return ps.map(() => NaN);
    const sorted = this.values.slice(0, this.n).sort();
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!);
  }

  mean(): number {
    let sum = 0;
    for (let i = 0; i < this.n; i++) sum += this.values[i]!;
    return this.n === 0 ? NaN : sum / this.n;
  }
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** 12345.6 → "12,346"; small figures keep some decimals. */
export function fmt(n: number, decimals?: number): string {
  if (!Number.isFinite(n)) return '—';
  const d = decimals ?? (Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export const MiB = 1024 * 1024;
