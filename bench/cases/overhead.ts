/**
 * B1 (the price of observability) and B2 (the framework ceiling), measured side by side.
 *
 * The same endpoint is loaded on each server in turn — everything off, everything on, and for
 * /health a bare Fastify route — for BENCH_ROUNDS rounds whose order rotates (off/on/bare, then
 * on/bare/off, …), so drift on the machine falls on every variant alike. A ratio is the median of
 * the per-round ratios, each taken between runs seconds apart.
 */
import { runLoad, type LoadResult } from '../load.ts';
import type { Child } from '../processes.ts';
import type { BenchSettings } from '../settings.ts';
import { fmt, mean, median } from '../stats.ts';
import type { Row } from '../table.ts';

export interface Target {
  name: 'off' | 'on' | 'bare' | 'peer';
  url: string;
  child: Child;
}

export interface Endpoint {
  label: string;
  path: string;
  headers?: Record<string, string>;
  /** The least "on" throughput as a share of "off" (issue 13: 0.85 on /health, 0.90 on the list). */
  onVsOff: number;
  targets: Target[];
}

type Runs = Map<Target['name'], LoadResult[]>;

export type Progress = (line: string) => void;

async function alternate(endpoint: Endpoint, settings: BenchSettings, progress: Progress): Promise<Runs> {
  const spec = (t: Target, duration: number) => ({ url: t.url, path: endpoint.path, headers: endpoint.headers, connections: settings.connections, duration });
  for (const t of endpoint.targets) if (settings.warmup > 0) await runLoad(spec(t, settings.warmup), t.child);
  const runs: Runs = new Map(endpoint.targets.map((t) => [t.name, []]));
  for (let round = 0; round < settings.rounds; round++) {
    const n = endpoint.targets.length;
    const order = endpoint.targets.map((_, i) => endpoint.targets[(i + round) % n]!);
    for (const t of order) {
      const r = await runLoad(spec(t, settings.duration), t.child);
      runs.get(t.name)!.push(r);
      progress(`${endpoint.label} round ${round + 1}/${settings.rounds} ${t.name}: ${fmt(r.rps)} req/s, p99 ${fmt(r.p99)} ms`);
    }
  }
  return runs;
}

/** Median over rounds of measured[i] / baseline[i]. */
function pairedRatio(measured: LoadResult[], baseline: LoadResult[], pick: (r: LoadResult) => number): number {
  return median(measured.map((m, i) => pick(m) / pick(baseline[i]!)));
}

const cpu = (runs: LoadResult[]) => `${fmt(mean(runs.map((r) => r.cpuShare * 100)), 0)}%`;

function comparison(caseName: string, mode: string, label: string, measured: LoadResult[], baseline: LoadResult[], target: number, what: string, p99Target?: number): Row[] {
  const p99Ratio = pairedRatio(measured, baseline, (r) => r.p99);
  const ratio = pairedRatio(measured, baseline, (r) => r.rps);
  return [
    {
      case: caseName,
      mode,
      measure: `${label} req/s, ${what}`,
      baseline: fmt(mean(baseline.map((r) => r.rps))),
      result: fmt(mean(measured.map((r) => r.rps))),
      ratio: fmt(ratio, 2),
      target: `≥ ${target.toFixed(2)}`,
      ok: ratio >= target,
      note: `server CPU ${cpu(baseline)} → ${cpu(measured)} of a core`,
    },
    {
      case: caseName,
      mode,
      measure: `${label} p99 ms`,
      baseline: fmt(median(baseline.map((r) => r.p99))),
      result: fmt(median(measured.map((r) => r.p99))),
      ratio: fmt(p99Ratio, 2),
      ...(p99Target === undefined ? {} : { target: `≤ ${p99Target.toFixed(2)}`, ok: p99Ratio <= p99Target }),
      note: `p50 ${fmt(median(baseline.map((r) => r.p50)))} → ${fmt(median(measured.map((r) => r.p50)))} ms`,
    },
    {
      case: caseName,
      mode,
      measure: `${label} server CPU µs/request`,
      baseline: fmt(median(baseline.map((r) => r.cpuPerRequestUs))),
      result: fmt(median(measured.map((r) => r.cpuPerRequestUs))),
      ratio: fmt(pairedRatio(measured, baseline, (r) => r.cpuPerRequestUs), 2),
    },
  ];
}

export async function overheadCase(mode: string, endpoints: Endpoint[], settings: BenchSettings, progress: Progress): Promise<Row[]> {
  const rows: Row[] = [];
  const b2: Row[] = [];
  for (const endpoint of endpoints) {
    const runs = await alternate(endpoint, settings, (line) => progress(`B1/B2 ${mode} ${line}`));
    const off = runs.get('off')!;
    const on = runs.get('on')!;
    // /health: p99 with everything on at most 1.5× off (issue 13, target 5).
    rows.push(...comparison('B1 overhead', mode, endpoint.label, on, off, endpoint.onVsOff, 'on vs off', endpoint.path === '/health' ? 1.5 : undefined));
    const bare = runs.get('bare');
    if (bare) {
      b2.push(comparison('B2 ceiling', mode, endpoint.label, on, bare, 0.55, 'on vs bare Fastify')[0]!);
      // The product's own per-request work: everything off against the bare route.
      b2.push(comparison('B2 ceiling', mode, endpoint.label, off, bare, 0.8, 'off vs bare Fastify')[0]!);
    }
    const peer = runs.get('peer');
    if (peer) {
      const [throughput] = comparison('B2 peer', mode, endpoint.label, on, peer, 1.2, 'on vs the typical peer');
      const peerVsBare = pairedRatio(peer, bare ?? peer, (r) => r.rps);
      b2.push({ ...throughput!, note: `${throughput!.note}; peer vs bare: ${fmt(peerVsBare, 2)}` });
    }
  }
  return [...rows, ...b2];
}
