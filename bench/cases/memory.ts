/**
 * Memory under sustained load: the instrumented server takes BENCH_MEMORY_ROUNDS rounds of mixed
 * traffic built to grow any per-client or per-path state — /health, the list endpoint for the
 * seeded user and for thousands of distinct users (each a rate-limit window), and 404s on
 * never-repeating paths (each a would-be metric series and limiter key). Memory is read after a
 * full GC once the first round has touched every client, and again after the last round; the
 * exported series and their endpoint label values are read at the same two points.
 */
import { runLoad } from '../load.ts';
import type { ApiServer } from '../processes.ts';
import type { BenchSettings } from '../settings.ts';
import { fmt, MiB } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';

/** Heap growth above this, after a full GC, over the measured rounds is called growth. */
const HEAP_GROWTH_LIMIT = 4 * MiB;

interface Exposition {
  /** Samples of the service's own metrics (process_* and nodejs_* describe the runtime, which may add a GC kind or handle type). */
  samples: Set<string>;
  /** Every value of the `endpoint` label. */
  endpoints: Set<string>;
}

async function exposition(url: string): Promise<Exposition> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const samples = new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('process_') && !l.startsWith('nodejs_')).map((l) => l.slice(0, l.lastIndexOf(' '))));
  const endpoints = new Set([...samples].flatMap((s) => [...s.matchAll(/endpoint="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!)));
  return { samples, endpoints };
}

export async function memoryCase(mode: string, server: ApiServer, token: string, strangers: string[], settings: BenchSettings, progress: Progress): Promise<Row[]> {
  let stranger = 0;
  let missing = 0;
  const requests = [
    { method: 'GET', path: '/health' },
    { method: 'GET', path: '/api/v1/transactions?limit=50', headers: { authorization: `Bearer ${token}` } },
    {
      method: 'GET',
      path: '/api/v1/transactions?limit=50',
      setupRequest: (req: { headers?: Record<string, string> }) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${strangers[stranger++ % strangers.length]}` } }),
    },
    { method: 'GET', path: '/nope', setupRequest: (req: object) => ({ ...req, path: `/nope/${missing++}` }) },
  ];
  const round = async (i: number) => {
    // A quarter of the responses are 404s by design: load.ts is told not to count them against the run.
    const r = await runLoad({ url: server.url, path: '/', requests, connections: settings.connections, duration: settings.duration, allowNon2xx: 0.3 }, server.child);
    progress(`memory ${mode} round ${i}/${settings.memoryRounds}: ${fmt(r.rps)} req/s`);
    return r.requests;
  };

  await round(1);
  const before = await server.child.memory();
  const seriesBefore = await exposition(server.url);
  let requestsBetween = 0;
  for (let i = 2; i <= settings.memoryRounds; i++) requestsBetween += await round(i);
  const after = await server.child.memory();
  const seriesAfter = await exposition(server.url);

  const heapGrowth = after.heapUsed - before.heapUsed;
  // A request cut off when a load run ends is recorded as 499: a new status of an existing endpoint,
  // one of a bounded set. Growth would be a new endpoint value, e.g. one per 404 path or user.
  const newEndpoints = [...seriesAfter.endpoints].filter((e) => !seriesBefore.endpoints.has(e));
  const newSeries = [...seriesAfter.samples].filter((s) => !seriesBefore.samples.has(s) && !s.includes('_bucket{'));
  const mib = (n: number) => `${fmt(n / MiB, 1)} MiB`;
  const growth = (n: number) => `${n >= 0 ? '+' : ''}${fmt(n / MiB, 1)} MiB`;
  const note = `${fmt(requestsBetween)} requests between readings; ${fmt(strangers.length)} distinct users, ${fmt(missing)} distinct 404 paths in all`;
  return [
    {
      case: 'Memory',
      mode,
      measure: 'heap used after GC, after round 1 → last',
      baseline: mib(before.heapUsed),
      result: mib(after.heapUsed),
      ratio: growth(heapGrowth),
      target: `< +${fmt(HEAP_GROWTH_LIMIT / MiB, 0)} MiB`,
      ok: heapGrowth < HEAP_GROWTH_LIMIT,
      note,
    },
    { case: 'Memory', mode, measure: 'RSS after GC, after round 1 → last', baseline: mib(before.rss), result: mib(after.rss), ratio: growth(after.rss - before.rss) },
    {
      case: 'Memory',
      mode,
      measure: 'exported series, after round 1 → last',
      baseline: fmt(seriesBefore.samples.size, 0),
      result: fmt(seriesAfter.samples.size, 0),
      ratio: `${seriesAfter.samples.size - seriesBefore.samples.size >= 0 ? '+' : ''}${seriesAfter.samples.size - seriesBefore.samples.size}`,
      target: 'no new endpoint',
      ok: newEndpoints.length === 0,
      note: `endpoint values ${seriesBefore.endpoints.size} → ${seriesAfter.endpoints.size}${newEndpoints.length ? ` (new: ${newEndpoints.slice(0, 3).join(', ')})` : ''}${newSeries.length ? `; new series e.g. ${newSeries[0]}` : ''}`,
    },
  ];
}
