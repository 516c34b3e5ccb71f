/**
 * What the trace context costs a request that is not sampled (issue 14: ≤ 5 µs), in process: the
 * head decision (ids from the random pool, the sampler), running the request in its
 * AsyncLocalStorage context, the trace ids merged into one log line, and the exemplar check —
 * against the same log line written outside any trace. Timed over BENCH_TRACE_ITERATIONS
 * requests after a warm-up, as the CPU time of the loop (process.cpuUsage) per request.
 */
import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logging.ts';
import { exemplarOf } from '../../src/observability/metrics.ts';
import { requestTrace, runInTrace, samplingPolicy } from '../../src/observability/trace-context.ts';
import type { BenchSettings } from '../settings.ts';
import { fmt } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';

const ITERATIONS = Number(process.env.BENCH_TRACE_ITERATIONS ?? 200_000);

function cpuMicros(fn: () => void, n: number): number {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / n;
}

export function tracingCase(_settings: BenchSettings, progress: Progress): Row[] {
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  const log = createLogger({ level: 'info', format: 'json', destination: sink });
  const policy = samplingPolicy({ sampleRate: 0, parentBased: true });
  const fields = { method: 'GET', route: '/api/v1/transactions', status: 200, duration_ms: 1.23 };
  const request = () => ({ url: '/api/v1/transactions', headers: {} }) as unknown as IncomingMessage;
  const untraced = () => {
    request();
    log.info(fields, 'request_completed');
  };
  const traced = () => {
    const ctx = requestTrace(request(), policy);
    runInTrace(ctx, () => {
      exemplarOf(ctx);
      log.info(fields, 'request_completed');
    });
  };
  // Warm up both paths (JIT), then alternate three rounds and take the median difference.
  cpuMicros(untraced, ITERATIONS / 4);
  cpuMicros(traced, ITERATIONS / 4);
  const diffs: number[] = [];
  let base = 0;
  for (let round = 0; round < 3; round++) {
    const b = cpuMicros(untraced, ITERATIONS);
    const t = cpuMicros(traced, ITERATIONS);
    base = b;
    diffs.push(t - b);
  }
  diffs.sort((a, b) => a - b);
  const cost = diffs[1]!;
  progress(`tracing: unsampled request ${fmt(cost, 2)} µs (one log line ${fmt(base, 2)} µs)`);
  return [
    {
      case: 'Tracing',
      mode: 'in-process',
      measure: 'CPU µs per unsampled request: trace ids, context, ids on one log line, exemplar check',
      baseline: fmt(base, 2),
      result: fmt(base + cost, 2),
      ratio: fmt(cost, 2),
      target: '≤ 5 µs',
      ok: cost <= 5,
      note: `+${fmt(cost, 2)} µs per request over the same log line outside a trace (median of 3 × ${ITERATIONS})`,
    },
  ];
}
