/**
 * Per-request isolation of Sentry events under concurrency (issue 13): 50 requests in flight at
 * once on one API process (the real SDK, sending to a local receiver), half of them failing with
 * an error event, half answering 401 after a warning. Each error event must carry only its own
 * request id, user, request data and breadcrumbs — on traced and untraced requests alike (the
 * sample rate is 0.5, so both paths run, and the test checks that both did).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/modules/auth/tokens.ts';
import { startSentryReceiver, type SentryEvent, type SentryReceiver } from '../helpers/sentry-receiver.ts';
import { CHILD_JWT_SECRET, request, startServer, type ServerProcess } from '../helpers/server.ts';

interface Crumb {
  category?: string;
  message?: string;
  data?: Record<string, unknown>;
}

describe('Sentry events under concurrency', () => {
  let receiver: SentryReceiver;
  let api: ServerProcess;

  beforeAll(async () => {
    receiver = await startSentryReceiver();
    api = await startServer({
      env: { SENTRY_DSN: receiver.dsn, ENVIRONMENT: 'staging', SENTRY_TRACES_SAMPLE_RATE: '0.5', RATE_LIMIT_ENABLED: 'false', DATA_DIR: 'memory://' },
    });
  }, 120_000);

  afterAll(async () => {
    await api?.cleanup();
    await receiver?.close();
  });

  it('50 concurrent requests, half failing: every error event carries only its own request id, user, body and breadcrumbs', async () => {
    const tokens = new TokenService(CHILD_JWT_SECRET, 900);
    const failing = await Promise.all(
      Array.from({ length: 25 }, async (_, i) => {
        const userId = randomUUID();
        return { i, userId, requestId: `iso-fail-${i}-${randomUUID().slice(0, 8)}`, token: await tokens.issueAccess(userId) };
      }),
    );
    const json = { 'content-type': 'application/json' };
    const calls = [
      ...failing.map((f) =>
        request(`${api.url}/api/v1/dev/test-sentry`, {
          method: 'POST',
          headers: { ...json, authorization: `Bearer ${f.token}`, 'x-request-id': f.requestId },
          body: JSON.stringify({ message: `marker-${f.i}` }),
        }),
      ),
      // The other half: a failed sign-in each, which logs a warning (a breadcrumb) and makes no event.
      ...Array.from({ length: 25 }, (_, i) =>
        request(`${api.url}/api/v1/auth/login`, {
          method: 'POST',
          headers: { ...json, 'x-request-id': `iso-ok-${i}` },
          body: JSON.stringify({ email: `nobody-${i}@example.com`, password: 'wrong password 123' }),
        }),
      ),
    ];
    const answers = await Promise.all(calls);
    expect(answers.slice(0, 25).map((a) => a.status)).toEqual(Array(25).fill(500));
    expect(answers.slice(25).map((a) => a.status)).toEqual(Array(25).fill(401));

    const isFailing = (e: SentryEvent) => typeof e.tags?.request_id === 'string' && String(e.tags.request_id).startsWith('iso-fail-');
    const events = await receiver.waitFor((item) => item.header.type === 'event' && isFailing(item.payload as SentryEvent), { count: 25, timeoutMs: 30_000 });
    expect(events).toHaveLength(25);
    expect(receiver.errorEvents().filter((e) => String(e.tags?.request_id ?? '').startsWith('iso-ok-'))).toEqual([]);

    const traceIds = new Set<string>();
    for (const f of failing) {
      const mine = events.filter((e) => e.tags?.request_id === f.requestId);
      expect(mine, f.requestId).toHaveLength(1);
      const event = mine[0]!;
      expect(event.user).toEqual({ id: f.userId });
      expect(event.transaction).toBe('POST /api/v1/dev/test-sentry');
      const req = event.request as { headers: Record<string, string>; data: string };
      expect(req.headers['x-request-id']).toBe(f.requestId);
      expect(JSON.parse(req.data)).toEqual({ message: `marker-${f.i}` });
      const exception = (event.exception as { values: { value: string }[] }).values.at(-1)!;
      expect(exception.value).toContain(`marker-${f.i}`);
      expect(exception.value).not.toMatch(new RegExp(`marker-(?!${f.i}\\b)\\d+`));

      const logs = ((event.breadcrumbs ?? []) as Crumb[]).filter((b) => b.category === 'log');
      // Its own warning is there, and no breadcrumb of any other request.
      expect(logs).toContainEqual(expect.objectContaining({ message: 'sentry_test_error_requested', data: expect.objectContaining({ request_id: f.requestId }) }));
      expect(logs.filter((b) => b.data?.request_id !== f.requestId)).toEqual([]);
      expect(logs.some((b) => b.message === 'user_login_failed')).toBe(false);
      traceIds.add((event.contexts as { trace: { trace_id: string } }).trace.trace_id);
    }
    // Each event is in a trace of its own.
    expect(traceIds.size).toBe(25);

    // Both paths ran: some of the failing requests were traced (a transaction in the event's trace), some not.
    await receiver.waitFor((item) => item.header.type === 'transaction' && (item.payload as SentryEvent).transaction === 'POST /api/v1/dev/test-sentry', { timeoutMs: 10_000 });
    const tracedTraces = new Set(receiver.transactions().map((t) => (t.contexts as { trace: { trace_id: string } }).trace.trace_id));
    const traced = [...traceIds].filter((id) => tracedTraces.has(id)).length;
    expect(traced).toBeGreaterThan(0);
    expect(traced).toBeLessThan(25);
  }, 120_000);
});
