import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthRegistry } from '../../src/observability/health.ts';

const ok = async () => {};
const fail = (message: string) => async () => {
  throw new Error(message);
};
const never = () => new Promise<void>(() => {});

describe('HealthRegistry', () => {
  it('is ready with no checks and with passing checks', async () => {
    const h = new HealthRegistry();
    expect(await h.readiness()).toEqual({ ready: true, draining: false, checks: {} });
    h.register({ name: 'database', required: true, check: ok });
    const r = await h.readiness();
    expect(r.ready).toBe(true);
    expect(r.checks.database).toEqual({ status: 'ok', duration_ms: expect.any(Number) });
    expect(h.names()).toEqual(['database']);
  });

  it('is not ready when a required check fails, and says why', async () => {
    const h = new HealthRegistry();
    h.register({ name: 'database', required: true, check: fail('connect ECONNREFUSED 127.0.0.1:5432') });
    h.register({ name: 'redis', required: false, check: ok });
    const r = await h.readiness();
    expect(r.ready).toBe(false);
    expect(r.checks.database).toMatchObject({ status: 'error', error: 'connect ECONNREFUSED 127.0.0.1:5432' });
    expect(r.checks.redis!.status).toBe('ok');
  });

  it('stays ready when only an optional check fails, and still reports it', async () => {
    const h = new HealthRegistry();
    h.register({ name: 'database', required: true, check: ok });
    h.register({ name: 'redis', required: false, check: fail('down') });
    const r = await h.readiness();
    expect(r.ready).toBe(true);
    expect(r.checks.redis).toMatchObject({ status: 'error', error: 'down' });
  });

  describe('time-box', () => {
    beforeEach(() => vi.useFakeTimers());
    afterEach(() => vi.useRealTimers());

    /** Settles `p` or reports it still pending, after the clock moved by `ms`. */
    async function after<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
      let settled: T | 'pending' = 'pending';
      void p.then((v) => (settled = v));
      await vi.advanceTimersByTimeAsync(ms);
      return settled;
    }

    it('answers with an error exactly when a check that never resolves reaches 1 s', async () => {
      const h = new HealthRegistry();
      h.register({ name: 'database', required: true, check: never });
      h.register({ name: 'redis', required: false, check: ok });
      const probe = h.readiness();
      expect(await after(probe, 999)).toBe('pending');
      const r = await after(probe, 1);
      expect(r).not.toBe('pending');
      expect(r).toMatchObject({ ready: false, checks: { database: { status: 'error', error: 'timed out after 1000 ms' }, redis: { status: 'ok' } } });
    });

    it('runs the checks together, so two hanging checks cost one time-box, not two', async () => {
      const h = new HealthRegistry();
      h.register({ name: 'a', required: true, check: never });
      h.register({ name: 'b', required: true, check: never });
      const r = await after(h.readiness(), 1_000);
      expect(r).not.toBe('pending');
      expect(r).toMatchObject({ checks: { a: { error: 'timed out after 1000 ms' }, b: { error: 'timed out after 1000 ms' } } });
    });

    it('takes another limit when given one', async () => {
      const h = new HealthRegistry(250);
      h.register({ name: 'slow', required: true, check: never });
      const probe = h.readiness();
      expect(await after(probe, 249)).toBe('pending');
      expect(await after(probe, 1)).toMatchObject({ checks: { slow: { error: 'timed out after 250 ms' } } });
    });
  });

  it('reports a check that throws synchronously or rejects with no message as an error', async () => {
    const h = new HealthRegistry();
    h.register({
      name: 'sync',
      required: true,
      check: () => {
        throw new Error('thrown before any promise');
      },
    });
    h.register({ name: 'empty', required: false, check: () => Promise.reject(new Error('')) });
    const r = await h.readiness();
    expect(r.checks.sync).toMatchObject({ status: 'error', error: 'thrown before any promise' });
    expect(r.checks.empty).toMatchObject({ status: 'error', error: 'check failed' });
    expect(r.ready).toBe(false);
  });

  it('is not ready while draining, whatever the checks say', async () => {
    const h = new HealthRegistry();
    h.register({ name: 'database', required: true, check: ok });
    expect(h.isDraining()).toBe(false);
    h.setDraining();
    const r = await h.readiness();
    expect(h.isDraining()).toBe(true);
    expect(r).toMatchObject({ ready: false, draining: true, checks: { database: { status: 'ok' } } });
  });

  it('tells listeners each outcome, and a failing listener does not break the probe', async () => {
    const h = new HealthRegistry();
    h.register({ name: 'database', required: true, check: ok });
    h.register({ name: 'redis', required: false, check: fail('down') });
    const seen: [string, boolean][] = [];
    h.onResult(() => {
      throw new Error('listener bug');
    });
    h.onResult((name, up) => seen.push([name, up]));
    const r = await h.readiness();
    expect(r.ready).toBe(true);
    expect(seen).toEqual([
      ['database', true],
      ['redis', false],
    ]);
  });
});
