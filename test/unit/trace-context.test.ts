import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  currentTrace,
  formatTraceparent,
  jobTrace,
  parseTraceparent,
  requestTrace,
  runInTrace,
  samplingPolicy,
  traceForJob,
  traceLogFields,
  TRACE_DATA_KEY,
} from '../../src/observability/trace-context.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

const raw = (url: string, headers: Record<string, string> = {}) => ({ url, headers }) as unknown as IncomingMessage;
const always = samplingPolicy({ sampleRate: 1, parentBased: true });
const never = samplingPolicy({ sampleRate: 0, parentBased: true });

describe('traceparent', () => {
  it('parses a valid header (W3C example) with its sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01`)).toEqual({ traceId: TRACE, parentSpanId: PARENT, sampled: true });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-00`)).toEqual({ traceId: TRACE, parentSpanId: PARENT, sampled: false });
    // Only bit 0 of the flags is "sampled".
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-03`)?.sampled).toBe(true);
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-02`)?.sampled).toBe(false);
  });

  it('accepts a later version with more fields, and rejects extra fields on version 00', () => {
    expect(parseTraceparent(`01-${TRACE}-${PARENT}-01-whatever`)).toEqual({ traceId: TRACE, parentSpanId: PARENT, sampled: true });
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01-whatever`)).toBeUndefined();
  });

  it.each([
    ['empty', ''],
    ['garbage', 'not-a-traceparent'],
    ['version ff', `ff-${TRACE}-${PARENT}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ['short trace id', `00-${TRACE.slice(1)}-${PARENT}-01`],
    ['missing flags', `00-${TRACE}-${PARENT}`],
    ['oversized', `00-${TRACE}-${PARENT}-01${'-x'.repeat(400)}`],
  ])('rejects %s', (_name, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it('formats what it parses', () => {
    const header = formatTraceparent({ traceId: TRACE, spanId: PARENT, sampled: true });
    expect(header).toBe(`00-${TRACE}-${PARENT}-01`);
    expect(parseTraceparent(header)).toEqual({ traceId: TRACE, parentSpanId: PARENT, sampled: true });
    expect(formatTraceparent({ traceId: TRACE, spanId: PARENT, sampled: false })).toBe(`00-${TRACE}-${PARENT}-00`);
  });
});

describe('the head decision of a request', () => {
  it('continues an incoming trace: same trace id, the caller as parent, a new span id, tracestate kept', () => {
    const ctx = requestTrace(raw('/api/v1/accounts', { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc' }), never);
    expect(ctx.traceId).toBe(TRACE);
    expect(ctx.parentSpanId).toBe(PARENT);
    expect(ctx.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(ctx.spanId).not.toBe(PARENT);
    // Parent based: the caller's "sampled" wins over a rate of 0 …
    expect(ctx.sampled).toBe(true);
    expect(ctx.tracestate).toBe('vendor=abc');
    // … and its "not sampled" over a rate of 1.
    expect(requestTrace(raw('/x', { traceparent: `00-${TRACE}-${PARENT}-00` }), always).sampled).toBe(false);
  });

  it('a sampler that is not parent based decides by its rate alone', () => {
    const ratio = samplingPolicy({ sampleRate: 1, parentBased: false });
    expect(requestTrace(raw('/x', { traceparent: `00-${TRACE}-${PARENT}-00` }), ratio).sampled).toBe(true);
  });

  it('starts a new trace for a malformed traceparent (and drops its tracestate)', () => {
    const ctx = requestTrace(raw('/x', { traceparent: '00-zz-yy-01', tracestate: 'a=b' }), always);
    expect(ctx.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ctx.traceId).not.toBe(TRACE);
    expect(ctx.parentSpanId).toBeUndefined();
    expect(ctx.tracestate).toBeUndefined();
    expect(ctx.sampled).toBe(true);
  });

  it('continues a Sentry caller (sentry-trace) when there is no traceparent', () => {
    const ctx = requestTrace(raw('/x', { 'sentry-trace': `${TRACE}-${PARENT}-1` }), never);
    expect([ctx.traceId, ctx.parentSpanId, ctx.sampled]).toEqual([TRACE, PARENT, true]);
  });

  it('never samples probes and scrapes, even with a sampled caller', () => {
    for (const path of ['/health', '/metrics', '/api/v1/monitoring/health', '/health?x=1']) {
      expect(requestTrace(raw(path, { traceparent: `00-${TRACE}-${PARENT}-01` }), always).sampled).toBe(false);
    }
    expect(requestTrace(raw('/healthy'), always).sampled).toBe(true);
  });

  it('is taken once per request', () => {
    const request = raw('/x');
    const first = requestTrace(request, always);
    expect(requestTrace(request, never)).toBe(first);
  });

  it('makes distinct, valid ids for every new trace', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 500; i++) ids.add(requestTrace(raw('/x'), never).traceId);
    expect(ids.size).toBe(500);
    for (const id of ids) expect(id).toMatch(/^(?!0+$)[0-9a-f]{32}$/);
  });

  it('samples new traces at the rate', () => {
    const policy = samplingPolicy({ sampleRate: 0.3, parentBased: true });
    let sampled = 0;
    for (let i = 0; i < 4000; i++) if (requestTrace(raw('/x'), policy).sampled) sampled++;
    expect(sampled / 4000).toBeGreaterThan(0.25);
    expect(sampled / 4000).toBeLessThan(0.35);
  });
});

describe('jobs and log fields', () => {
  it('a job queued inside a trace carries it, and its attempt is a child of the queuing span', () => {
    const queuing = requestTrace(raw('/api/v1/plaid/sync', { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'k=v' }), never);
    const carried = runInTrace(queuing, () => traceForJob());
    expect(carried).toEqual({ traceparent: `00-${TRACE}-${queuing.spanId}-01`, tracestate: 'k=v' });
    const attempt = jobTrace(carried, { rate: 0 });
    expect(attempt.traceId).toBe(TRACE);
    expect(attempt.parentSpanId).toBe(queuing.spanId);
    expect(attempt.sampled).toBe(true);
    expect(attempt.spanId).not.toBe(queuing.spanId);
    expect(attempt.tracestate).toBe('k=v');
  });

  it('a scheduled job (or bad carried data) starts its own trace at the rate', () => {
    expect(traceForJob()).toBeUndefined();
    for (const carried of [undefined, null, 'x', { traceparent: 'garbage' }, { traceparent: 42 }]) {
      const t = jobTrace(carried, { rate: 1 });
      expect(t.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(t.parentSpanId).toBeUndefined();
      expect(t.sampled).toBe(true);
    }
    expect(jobTrace(undefined, { rate: 0 }).sampled).toBe(false);
    expect(TRACE_DATA_KEY).toBe('_trace');
  });

  it('log fields are those of the trace running now, and none outside one', () => {
    expect(traceLogFields()).toBeUndefined();
    const ctx = requestTrace(raw('/x'), never);
    const inside = runInTrace(ctx, async () => {
      await new Promise((r) => setTimeout(r, 1));
      return { fields: traceLogFields(), current: currentTrace() };
    });
    return inside.then(({ fields, current }) => {
      expect(fields).toEqual({ trace_id: ctx.traceId, span_id: ctx.spanId });
      expect(current).toBe(ctx);
    });
  });
});
