import { describe, expect, it } from 'vitest';
import { FallbackStore, type PrimaryStore, type StoreErrorReason } from '../../src/ratelimit/fallback-store.ts';
import { MemoryStore } from '../../src/ratelimit/memory-store.ts';
import { decisionFor, type Decision, type Hit, type RateLimitDashboard } from '../../src/ratelimit/store.ts';

const hit: Hit = { windowId: 'default:a', policy: 'default', clientId: 'a', limit: 2, windowSeconds: 60, windowEndpoint: '/api/v1', endpoint: '/api/v1/x' };

/** A primary store whose behaviour the test switches: answer, fail, hang, or be disconnected. */
class FakePrimary implements PrimaryStore {
  readonly kind = 'redis' as const;
  mode: 'ok' | 'fail' | 'hang' | 'late' | 'down' = 'ok';
  /** In 'late' mode: answers the pending call. */
  answerLate: () => void = () => {};
  /** When set, the next call answers only after this many ms. */
  delayNextMs = 0;
  calls = 0;
  available() {
    return this.mode !== 'down';
  }
  async hit(): Promise<Decision> {
    this.calls++;
    if (this.mode === 'fail') throw new Error('ECONNRESET');
    if (this.mode === 'hang') return new Promise<never>(() => {});
    if (this.mode === 'late') return new Promise<Decision>((r) => (this.answerLate = () => r(decisionFor(999, 2, 1_000))));
    if (this.delayNextMs) {
      const ms = this.delayNextMs;
      this.delayNextMs = 0;
      await new Promise((r) => setTimeout(r, ms));
    }
    return decisionFor(999, 2, 1_000); // recognisable: only the primary says 999
  }
  async dashboard(): Promise<RateLimitDashboard> {
    return { current_active_limits: [], total_requests_last_hour: 999, blocked_requests_last_hour: 0, top_clients: [], top_endpoints: [] };
  }
  resets: string[][] = [];
  async reset(ids: readonly string[]): Promise<number> {
    this.resets.push([...ids]);
    if (this.mode === 'fail') throw new Error('ECONNRESET');
    return ids.length;
  }
}

function setup(timeoutMs = 20) {
  const clock = { t: 1_000_000 };
  const errors: StoreErrorReason[] = [];
  const modes: string[] = [];
  const primary = new FakePrimary();
  const store = new FallbackStore(primary, new MemoryStore(), {
    timeoutMs,
    cooldownMs: 1_000,
    now: () => clock.t,
    onStoreError: (r) => errors.push(r),
    onModeChange: (m) => modes.push(m),
  });
  return { clock, errors, modes, primary, store };
}

describe('FallbackStore', () => {
  it('uses the shared store while it answers', async () => {
    const { store, errors } = setup();
    expect((await store.hit(hit)).count).toBe(999);
    expect(errors).toEqual([]);
    expect(store.currentMode()).toBe('shared');
  });

  it('falls back at once on an error and skips the shared store during the cool-down', async () => {
    const { store, primary, errors, modes, clock } = setup();
    primary.mode = 'fail';
    const first = await store.hit(hit);
    expect(first.count).toBe(1); // from memory
    expect(errors).toEqual(['error']);
    expect(modes).toEqual(['local']);
    const callsAfterTrip = primary.calls;
    // Memory limits apply meanwhile, and the primary is not touched.
    expect((await store.hit(hit)).blocked).toBe(false);
    expect((await store.hit(hit)).blocked).toBe(true);
    expect(primary.calls).toBe(callsAfterTrip);
    // After the cool-down a healthy primary takes over again without any restart.
    primary.mode = 'ok';
    clock.t += 1_000;
    expect((await store.hit(hit)).count).toBe(999);
    expect(modes).toEqual(['local', 'shared']);
    expect(errors).toEqual(['error']);
  });

  it('gives a hanging store no more than its timeout', async () => {
    const { store, primary, errors } = setup(20);
    primary.mode = 'hang';
    // The primary never answers: the decision still comes (from memory), so the timer fired.
    const d = await store.hit(hit);
    expect(d.count).toBe(1);
    expect(errors).toEqual(['timeout']);
    // The breaker is open: the next decision does not go near the hanging store.
    expect((await store.hit(hit)).count).toBe(2);
    expect(primary.calls).toBe(1);
  });

  it('keeps waiting past the timeout while the store answers other calls (a busy process, not a dead Redis)', async () => {
    const { store, primary, errors } = setup(40);
    primary.delayNextMs = 200;
    const slow = store.hit(hit);
    // Other decisions get answers meanwhile, so the slow one is behind a queue, not lost.
    for (let i = 0; i < 25; i++) {
      await new Promise((r) => setTimeout(r, 10));
      expect((await store.hit(hit)).count).toBe(999);
    }
    expect((await slow).count).toBe(999);
    expect(errors).toEqual([]);
    expect(store.currentMode()).toBe('shared');
  });

  it('closes the breaker at once when a timed-out call is answered after all', async () => {
    const { store, primary, errors } = setup(20);
    primary.mode = 'late';
    expect((await store.hit(hit)).count).toBe(1); // timed out: from memory
    expect(errors).toEqual(['timeout']);
    expect((await store.hit(hit)).count).toBe(2); // breaker open: memory, no call
    expect(primary.calls).toBe(1);
    primary.mode = 'ok';
    primary.answerLate();
    await new Promise((r) => setImmediate(r));
    // Redis was alive all along: shared decisions resume without waiting out the cool-down.
    expect((await store.hit(hit)).count).toBe(999);
    expect(store.currentMode()).toBe('shared');
  });

  it('does not call a disconnected store, and counts it as unavailable', async () => {
    const { store, primary, errors } = setup();
    primary.mode = 'down';
    expect((await store.hit(hit)).count).toBe(1);
    expect(primary.calls).toBe(0);
    expect(errors).toEqual(['unavailable']);
  });

  it("serves the dashboard from this process's memory while the shared store is away", async () => {
    const { store, primary } = setup();
    expect((await store.dashboard()).total_requests_last_hour).toBe(999);
    primary.mode = 'down';
    await store.hit(hit);
    expect((await store.dashboard()).total_requests_last_hour).toBe(1);
  });

  it('reset: clears the local windows and the shared ones; only the local ones while Redis is away; a failing Redis is an error', async () => {
    const { store, primary } = setup();
    primary.mode = 'down';
    await store.hit(hit);
    expect(await store.reset(['default:a'])).toBe(1);
    expect(primary.resets).toEqual([]);
    expect(await store.reset(['default:a'])).toBe(0);
    primary.mode = 'ok';
    expect(await store.reset(['default:a', 'default:b'])).toBe(2);
    expect(primary.resets).toEqual([['default:a', 'default:b']]);
    primary.mode = 'fail';
    await expect(store.reset(['default:a'])).rejects.toThrow('ECONNRESET');
  });
});
