import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, json, type TestApp } from '../helpers/app.ts';

describe('health endpoints', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('liveness answers healthy', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({ status: 'healthy' });
  });

  it('readiness reports the database and version', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/health' });
    expect(res.statusCode).toBe(200);
    const body = json(res);
    expect(body).toMatchObject({ status: 'healthy', version: t.config.version, database: 'ok', redis: 'not_configured' });
    expect(new Date(body.timestamp as string).toISOString()).toBe(body.timestamp);
  });

  it('readiness answers 503 while draining', async () => {
    t.app.health.setDraining();
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/monitoring/health' });
    expect(res.statusCode).toBe(503);
    expect(json(res)).toMatchObject({ status: 'unhealthy', draining: true, database: 'ok' });
    const live = await t.app.inject({ method: 'GET', url: '/health' });
    expect(live.statusCode).toBe(200);
  });
});
