/**
 * One load run: autocannon, in this process, against a server on 127.0.0.1. Latencies are taken
 * from autocannon's per-response event at microsecond resolution (its own histogram counts whole
 * milliseconds, too coarse for a sub-millisecond /health), and the server's CPU time is read from
 * its probe before and after, so each run also says what one request cost the server.
 */
import autocannon, { type RequestSpec } from 'autocannon';
import type { Child } from './processes.ts';
import { Samples } from './stats.ts';

export interface LoadSpec {
  /** Base URL, e.g. http://127.0.0.1:8000 */
  url: string;
  path: string;
  headers?: Record<string, string>;
  connections: number;
  /** Seconds. */
  duration: number;
  /** A sequence of requests each connection loops over (overrides path and headers). */
  requests?: RequestSpec[];
  /** The share of non-2xx responses the run expects (404s on purpose); more than that fails it. */
  allowNon2xx?: number;
}

export interface LoadResult {
  /** Responses per second (every response counted; runs with refusals are rejected). */
  rps: number;
  requests: number;
  p50: number;
  p99: number;
  /** Server CPU per request in microseconds, and the server's CPU use as a share of one core. */
  cpuPerRequestUs: number;
  cpuShare: number;
}

export class LoadError extends Error {
  override name = 'LoadError';
}

export async function runLoad(spec: LoadSpec, server?: Child): Promise<LoadResult> {
  const latencies = new Samples();
  const cpuBefore = server ? await server.cpuMicros() : 0;
  const instance = autocannon({
    url: `${spec.url}${spec.path}`,
    connections: spec.connections,
    duration: spec.duration,
    headers: spec.headers,
    requests: spec.requests,
    timeout: 10,
  });
  // Latency of the answers the run is about: the 2xx ones, or every one when non-2xx are the point (a 401 target).
  const everyAnswer = (spec.allowNon2xx ?? 0) >= 1;
  instance.on('response', (_client, statusCode, _bytes, ms) => {
    if (everyAnswer || (statusCode >= 200 && statusCode < 300)) latencies.add(ms);
  });
  const result = await instance;
  const cpuMicros = server ? (await server.cpuMicros()) - cpuBefore : NaN;
  const requests = result.requests.total;
  const bad = result.non2xx + result.errors;
  // A run in which the server refused or failed requests measured something else: say so.
  if (requests === 0 || bad > requests * (spec.allowNon2xx ?? 0.001)) {
    const codes = Object.entries(result.statusCodeStats).map(([code, s]) => `${code}×${s.count}`).join(' ');
    throw new LoadError(`GET ${spec.path}: ${result.non2xx} non-2xx responses and ${result.errors} errors in ${requests} (${codes})`);
  }
  const [p50, p99] = latencies.percentiles(50, 99);
  return {
    rps: requests / result.duration,
    requests,
    p50: p50!,
    p99: p99!,
    cpuPerRequestUs: cpuMicros / requests,
    cpuShare: cpuMicros / (result.duration * 1e6),
  };
}
