import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, json, type TestApp } from '../helpers/app.ts';

describe('POST /api/v1/dev/test-sentry outside production', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ENVIRONMENT: 'development' });
  });
  afterAll(async () => t.close());

  it('raises a test error that leaves as a 500 problem with the request id, logged as unhandled_error', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/dev/test-sentry', headers: { 'x-request-id': 'dev-route-test-1' } });
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(json(res)).toMatchObject({ status: 500, request_id: 'dev-route-test-1' });
    const logged = t
      .logs()
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'unhandled_error' && l.request_id === 'dev-route-test-1');
    expect(logged).toMatchObject({ level: 'error', error: { type: 'SentryTestError' } });
    // Sentry is off here (no SENTRY_DSN), so there is no event id to link.
    expect(logged).not.toHaveProperty('sentry_event_id');
  });

  it('puts an optional message into the error, masked in the log', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/dev/test-sentry',
      headers: { 'x-request-id': 'dev-route-test-2' },
      payload: { message: 'ask jane.doe@example.com' },
    });
    expect(res.statusCode).toBe(500);
    const lines = t.logs().filter((l) => l.includes('dev-route-test-2'));
    expect(lines.join('\n')).toContain('j***@example.com');
    expect(lines.join('\n')).not.toContain('jane.doe@example.com');
  });

  it('answers 422 for a body that does not fit', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/dev/test-sentry', payload: { message: 42 } });
    expect(res.statusCode).toBe(422);
    expect(json(res)).toMatchObject({ status: 422, errors: [{ field: 'body.message' }] });
  });
});

describe('POST /api/v1/dev/test-sentry in production', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ ENVIRONMENT: 'production' });
  });
  afterAll(async () => t.close());

  it('does not exist', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/dev/test-sentry' });
    expect(res.statusCode).toBe(404);
    expect(json(res)).toMatchObject({ status: 404 });
    expect(t.logs().some((l) => l.includes('unhandled_error'))).toBe(false);
  });
});
