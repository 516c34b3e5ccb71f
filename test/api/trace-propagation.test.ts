/**
 * Outgoing calls and the trace (issue 14): Plaid — a third party — gets no trace headers by
 * default; a host listed in TRACE_PROPAGATION_TARGETS gets the request's traceparent. The
 * subscription is process-wide, so the configured app is started after the default one's calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canPropagate } from '../../src/observability/trace-context.ts';
import { bearer, createTestApp, registerAndLogin, type TestApp } from '../helpers/app.ts';
import { FAKE_PLAID_CLIENT_ID, FAKE_PLAID_SECRET, FakePlaid } from '../helpers/fake-plaid.ts';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const PARENT = 'b7ad6b7169203331';

describe('trace headers on outgoing calls', () => {
  let fake: FakePlaid;
  beforeAll(async () => {
    fake = await FakePlaid.start([18650, 18699]);
  });
  afterAll(async () => fake?.close());

  const linkThroughPlaid = async (t: TestApp) => {
    const user = await registerAndLogin(t.app);
    const before = fake.requests.length;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/plaid/exchange-token',
      headers: { ...bearer(user.token), traceparent: `00-${TRACE}-${PARENT}-01` },
      payload: { public_token: fake.createPublicToken() },
    });
    expect(res.statusCode, res.body).toBe(201);
    const calls = fake.requests.slice(before);
    expect(calls.map((c) => c.path)).toContain('/item/public_token/exchange');
    return calls;
  };

  it('Plaid gets no traceparent by default; a configured host gets the request\'s', async () => {
    const env = { RATE_LIMIT_ENABLED: 'false', PLAID_CLIENT_ID: FAKE_PLAID_CLIENT_ID, PLAID_SECRET: FAKE_PLAID_SECRET, PLAID_BASE_URL: fake.url, OTEL_TRACES_SAMPLER: 'always_on' };
    const plain = await createTestApp(env);
    try {
      const calls = await linkThroughPlaid(plain);
      for (const call of calls) {
        expect(call.headers.traceparent).toBeUndefined();
        expect(call.headers['sentry-trace']).toBeUndefined();
        expect(call.headers.baggage).toBeUndefined();
      }
    } finally {
      await plain.close();
    }

    const listed = await createTestApp({ ...env, TRACE_PROPAGATION_TARGETS: `${new URL(fake.url).hostname},*.internal` });
    try {
      const calls = await linkThroughPlaid(listed);
      if (!canPropagate()) {
        // Node 20 publishes no channel before a request's headers are stored: nothing is sent, and start-up says so.
        for (const call of calls) expect(call.headers.traceparent).toBeUndefined();
        expect(listed.logs().some((l) => l.includes('"trace_propagation_unsupported"'))).toBe(true);
        return;
      }
      const exchange = calls.find((c) => c.path === '/item/public_token/exchange')!;
      const header = String(exchange.headers.traceparent);
      expect(header).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
      // The span it names is this request's own, not the caller's.
      expect(header.split('-')[2]).not.toBe(PARENT);
      const done = listed.logs().map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'request_completed' && l.route === '/api/v1/plaid/exchange-token');
      expect(header.split('-')[2]).toBe(done?.span_id);
    } finally {
      await listed.close();
    }
  });

  it('a bad TRACE_PROPAGATION_TARGETS stops start-up with a clear line', async () => {
    await expect(createTestApp({ TRACE_PROPAGATION_TARGETS: 'https://not a host/' })).rejects.toThrow(/^Invalid configuration: TRACE_PROPAGATION_TARGETS must be a comma-separated list of host names/);
  });
});
