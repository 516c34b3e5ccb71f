/**
 * The StoreBreaker (src/ratelimit/breaker.ts) on its own, with stand-in primaries: its defaults,
 * how long it waits, what it reports, and when a late answer closes it.
 */
import { describe, expect, it } from 'vitest';
import { StoreBreaker, StoreTimeoutError, StoreUnavailableError, reasonOf, type StoreErrorReason } from '../../src/ratelimit/breaker.ts';

const never = () => new Promise<string>(() => {});
const after = (ms: number, value = 'primary') => new Promise<string>((r) => setTimeout(() => r(value), ms));

describe('StoreBreaker', () => {
  it('names its errors and maps them to reasons', () => {
    expect(new StoreTimeoutError('x').name).toBe('StoreTimeoutError');
    expect(new StoreUnavailableError('x').name).toBe('StoreUnavailableError');
    expect([reasonOf(new StoreTimeoutError('x')), reasonOf(new StoreUnavailableError('x')), reasonOf(new Error('x'))]).toEqual(['timeout', 'unavailable', 'error']);
  });

  it('starts shared, and reports a mode change only when the mode changes', async () => {
    const modes: string[] = [];
    const b = new StoreBreaker({ cooldownMs: 0, onModeChange: (m) => modes.push(m) });
    expect(b.currentMode()).toBe('shared');
    for (let i = 0; i < 3; i++) expect(await b.run(() => true, async () => 'primary', () => 'fallback')).toBe('primary');
    expect(modes).toEqual([]);
    for (let i = 0; i < 2; i++) expect(await b.run(() => false, async () => 'primary', () => 'fallback')).toBe('fallback');
    expect(modes).toEqual(['local']);
    expect(await b.run(() => true, async () => 'primary', () => 'fallback')).toBe('primary');
    expect(modes).toEqual(['local', 'shared']);
  });

  it('works without any callbacks', async () => {
    const b = new StoreBreaker({ timeoutMs: 10 });
    expect(await b.run(() => true, async () => Promise.reject(new Error('down')), () => 'fallback')).toBe('fallback');
    expect(b.currentMode()).toBe('local');
  });

  it('says why: an unavailable store, with its message', async () => {
    const errors: [StoreErrorReason, unknown][] = [];
    const b = new StoreBreaker({ onStoreError: (r, e) => errors.push([r, e]) });
    await b.run(() => false, async () => 'primary', () => 'fallback');
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBe('unavailable');
    expect((errors[0]![1] as Error).message).toBe('redis is not connected');
  });

  it('times a silent store out after its timeout (50 ms by default), not after the longest wait', async () => {
    const errors: unknown[] = [];
    const b = new StoreBreaker({ onStoreError: (_r, e) => errors.push(e) });
    const start = performance.now();
    expect(await b.run(() => true, never, () => 'fallback')).toBe('fallback');
    const took = performance.now() - start;
    expect(took).toBeGreaterThanOrEqual(45);
    expect(took).toBeLessThan(500);
    expect(errors[0]).toBeInstanceOf(StoreTimeoutError);
    expect((errors[0] as Error).message).toMatch(/^no answer within (\d+) ms$/);
    expect(Number(/(\d+)/.exec((errors[0] as Error).message)![1])).toBeGreaterThanOrEqual(45);
  });

  it('uses the timeout it is given', async () => {
    const b = new StoreBreaker({ timeoutMs: 250 });
    const start = performance.now();
    expect(await b.run(() => true, never, () => 'fallback')).toBe('fallback');
    expect(performance.now() - start).toBeGreaterThanOrEqual(240);
  });

  it('stays open for the cool-down it is given (1 s by default)', async () => {
    const clock = { t: 0 };
    let calls = 0;
    const primary = async () => {
      calls++;
      throw new Error('down');
    };
    const b = new StoreBreaker({ cooldownMs: 5_000, now: () => clock.t });
    await b.run(() => true, primary, () => 'fallback');
    clock.t = 4_999;
    await b.run(() => true, primary, () => 'fallback');
    expect(calls).toBe(1);
    clock.t = 5_000;
    await b.run(() => true, primary, () => 'fallback');
    expect(calls).toBe(2);
    const d = new StoreBreaker({ now: () => clock.t });
    clock.t = 0;
    await d.run(() => true, primary, () => 'fallback');
    clock.t = 999;
    await d.run(() => true, primary, () => 'fallback');
    expect(calls).toBe(3);
    clock.t = 1_000;
    await d.run(() => true, primary, () => 'fallback');
    expect(calls).toBe(4);
  });

  it('waits on a store that answers other calls, but no longer than maxWaitMs', async () => {
    const errors: StoreErrorReason[] = [];
    const b = new StoreBreaker({ timeoutMs: 20, maxWaitMs: 120, onStoreError: (r) => errors.push(r) });
    const start = performance.now();
    const slow = b.run(() => true, () => after(600), () => 'fallback');
    let running = true;
    const others = (async () => {
      while (running) await b.run(() => true, () => after(5), () => 'fallback');
    })();
    expect(await slow).toBe('fallback');
    running = false;
    await others;
    const took = performance.now() - start;
    expect(took).toBeGreaterThanOrEqual(110);
    expect(took).toBeLessThan(500);
    expect(errors[0]).toBe('timeout');
  });

  it('a late answer closes a breaker opened by its timeout, not one opened by an error', async () => {
    let answer: (v: string) => void = () => {};
    const late = () => new Promise<string>((r) => (answer = r));
    const b = new StoreBreaker({ timeoutMs: 10, cooldownMs: 60_000 });
    expect(await b.run(() => true, late, () => 'fallback')).toBe('fallback'); // timed out
    // Then another call fails outright: the breaker is open because of an error now.
    const c = new StoreBreaker({ timeoutMs: 10, cooldownMs: 60_000 });
    let answerC: (v: string) => void = () => {};
    expect(await c.run(() => true, () => new Promise<string>((r) => (answerC = r)), () => 'fallback')).toBe('fallback');
    // b: the late answer arrives; b closes.
    answer('primary');
    await new Promise((r) => setImmediate(r));
    expect(await b.run(() => true, async () => 'primary', () => 'fallback')).toBe('primary');
    // c: an error opened it after the timeout; the late answer does not close it.
    const d = new StoreBreaker({ timeoutMs: 10, cooldownMs: 60_000 });
    let answerD: (v: string) => void = () => {};
    expect(await d.run(() => true, () => new Promise<string>((r) => (answerD = r)), () => 'fallback')).toBe('fallback');
    answerC('primary');
    await new Promise((r) => setImmediate(r));
    expect(await c.run(() => true, async () => 'primary', () => 'fallback')).toBe('primary');
    // d: a fresh error after the timeout, then the late answer: still open.
    const clock = { t: 0 };
    const e = new StoreBreaker({ timeoutMs: 10, cooldownMs: 60_000, now: () => clock.t });
    let answerE: (v: string) => void = () => {};
    expect(await e.run(() => true, () => new Promise<string>((r) => (answerE = r)), () => 'fallback')).toBe('fallback');
    clock.t = 60_000;
    expect(await e.run(() => true, async () => Promise.reject(new Error('down')), () => 'fallback')).toBe('fallback');
    answerE('primary');
    answerD('primary');
    await new Promise((r) => setImmediate(r));
    let called = false;
    expect(await e.run(() => true, async () => ((called = true), 'primary'), () => 'fallback')).toBe('fallback');
    expect(called).toBe(false);
  });

  it('an answer in time does not close a breaker another call opened', async () => {
    const b = new StoreBreaker({ timeoutMs: 200, cooldownMs: 60_000 });
    const slow = b.run(() => true, () => after(50), () => 'fallback');
    expect(await b.run(() => true, async () => Promise.reject(new Error('down')), () => 'fallback')).toBe('fallback');
    expect(await slow).toBe('primary');
    let called = false;
    expect(await b.run(() => true, async () => ((called = true), 'primary'), () => 'fallback')).toBe('fallback');
    expect(called).toBe(false);
  });
});
