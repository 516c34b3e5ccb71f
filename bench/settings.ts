/**
 * What a run does and how long it takes, from the environment. The defaults keep `npm run bench`
 * under five minutes on a 2-core machine; every knob can be raised for a steadier figure.
 */

function num(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

export interface BenchSettings {
  /** Seconds of each measured load run (one side of one round). */
  duration: number;
  /** Seconds of load that warm each server up before the first measured round (JIT, pools, caches). */
  warmup: number;
  /** Alternated rounds of B1/B2 (each round runs every variant once, in a rotating order). */
  rounds: number;
  /** Alternated rounds of each feature in the B1 breakdown (embedded mode; 0 skips it). */
  breakdownRounds: number;
  /** Connections of the B1/B2 load, the breakdown and the memory soak. */
  connections: number;
  /** Connections of the B5 data case. */
  dataConnections: number;
  /** Rounds of sustained load between the two memory readings. */
  memoryRounds: number;
  /** Transactions of the B5 user. */
  transactions: number;
  /** Other users in the same table, and the transactions of each. */
  otherUsers: number;
  otherTransactions: number;
  /** Series in the B3 registry (at least), and scrapes measured. */
  series: number;
  scrapes: number;
  /** B4 decisions measured per store. */
  decisions: number;
  /** Starts per cold-start row (the row gives their median). */
  coldStarts: number;
  /** Which modes run: embedded, server, or both. */
  modes: ('embedded' | 'server')[];
  /** Which groups of cases run: load (B1, B2, the breakdown, Memory, B5), scrape (B3), ratelimit (B4), tracing (its in-process cost), cold-start, console (the operator console's first render in Chromium). */
  cases: BenchCase[];
  postgresUrl: string;
  redisUrl: string;
  /** Keep the temporary directory (server logs, PGlite copies) for inspection. */
  keep: boolean;
}

export const BENCH_CASES = ['load', 'scrape', 'ratelimit', 'tracing', 'cold-start', 'console'] as const;
export type BenchCase = (typeof BENCH_CASES)[number];

export function loadSettings(): BenchSettings {
  const modes = (process.env.BENCH_MODES ?? 'embedded,server').split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'embedded' && m !== 'server') throw new Error(`BENCH_MODES: unknown mode ${JSON.stringify(m)} (embedded, server)`);
  const cases = (process.env.BENCH_CASES ?? BENCH_CASES.join(',')).split(',').map((c) => c.trim());
  for (const c of cases) if (!(BENCH_CASES as readonly string[]).includes(c)) throw new Error(`BENCH_CASES: unknown case ${JSON.stringify(c)} (${BENCH_CASES.join(', ')})`);
  return {
    duration: num('BENCH_DURATION', 4, 1, 600),
    warmup: num('BENCH_WARMUP', 2, 0, 600),
    rounds: num('BENCH_ROUNDS', 3, 1, 50),
    breakdownRounds: num('BENCH_BREAKDOWN_ROUNDS', 1, 0, 50),
    connections: num('BENCH_CONNECTIONS', 10, 1, 1000),
    dataConnections: num('BENCH_DATA_CONNECTIONS', 50, 1, 1000),
    memoryRounds: num('BENCH_MEMORY_ROUNDS', 4, 2, 100),
    transactions: num('BENCH_TRANSACTIONS', 100_000, 1_000, 10_000_000),
    otherUsers: num('BENCH_OTHER_USERS', 4, 0, 1_000),
    otherTransactions: num('BENCH_OTHER_TRANSACTIONS', 5_000, 0, 1_000_000),
    series: num('BENCH_SERIES', 10_000, 100, 1_000_000),
    scrapes: num('BENCH_SCRAPES', 40, 5, 10_000),
    decisions: num('BENCH_DECISIONS', 20_000, 100, 10_000_000),
    coldStarts: num('BENCH_COLD_STARTS', 5, 1, 50),
    modes: modes as BenchSettings['modes'],
    cases: cases as BenchCase[],
    postgresUrl: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    keep: process.env.BENCH_KEEP === '1',
  };
}
