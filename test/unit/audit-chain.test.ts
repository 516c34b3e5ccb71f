/**
 * The audit trail's pure parts: the canonical serialization and hash chain (ChainWalker finds the
 * first row that does not hold, accepts a purged chain's anchor, notices a missing newest row),
 * and what a row keeps of the client (masked address, user-agent family, scrubbed columns).
 */
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalPayload, ChainWalker, GENESIS_HASH, rowHash, type AuditPayload, type ChainedRow } from '../../src/modules/audit/chain.ts';
import { maskIp, userAgentFamily } from '../../src/modules/audit/context.ts';
import { auditPayload } from '../../src/modules/audit/trail.ts';

function payload(i: number): AuditPayload {
  return {
    occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
    actor: `user-${i}`,
    action: 'auth.login',
    targetType: 'user',
    targetId: `user-${i}`,
    outcome: i % 2 ? 'success' : 'failure',
    ip: '203.0.113.0/24',
    userAgent: 'curl',
    requestId: `req-${i}`,
    traceId: null,
    details: { reason: 'wrong_password', n: i, ok: true },
  };
}

/** A valid chain of `n` rows starting at `firstId` from `prevHash`. */
function chain(n: number, firstId = 1, prevHash = GENESIS_HASH): ChainedRow[] {
  const rows: ChainedRow[] = [];
  let prev = prevHash;
  for (let k = 0; k < n; k++) {
    const id = firstId + k;
    const p = payload(id);
    const hash = rowHash(prev, id, canonicalPayload(p));
    rows.push({ ...p, id, prevHash: prev, hash });
    prev = hash;
  }
  return rows;
}

const headOf = (rows: ChainedRow[]) => ({ lastId: rows.at(-1)!.id, lastHash: rows.at(-1)!.hash });

describe('canonical serialization', () => {
  it('sorts object keys at every level, so jsonb key order never changes a hash', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
    const a = canonicalPayload({ ...payload(1), details: { x: 1, y: 'two' } });
    const b = canonicalPayload({ ...payload(1), details: { y: 'two', x: 1 } });
    expect(a).toBe(b);
  });

  it('covers every column: changing any one changes the hash', () => {
    const base = payload(3);
    const h = rowHash(GENESIS_HASH, 3, canonicalPayload(base));
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    const changes: Partial<AuditPayload>[] = [
      { occurredAt: new Date(base.occurredAt.getTime() + 1) }, { actor: 'x' }, { action: 'x' }, { targetType: null }, { targetId: 'x' },
      { outcome: 'denied' }, { ip: null }, { userAgent: 'chrome' }, { requestId: 'x' }, { traceId: 'x' }, { details: { reason: 'x', n: 3, ok: true } },
    ];
    for (const change of changes) expect(rowHash(GENESIS_HASH, 3, canonicalPayload({ ...base, ...change }))).not.toBe(h);
    expect(rowHash(GENESIS_HASH, 4, canonicalPayload(base))).not.toBe(h);
    expect(rowHash('f'.repeat(64), 3, canonicalPayload(base))).not.toBe(h);
  });
});

describe('ChainWalker', () => {
  it('accepts an intact chain, in batches, and counts its rows', () => {
    const rows = chain(10);
    const w = new ChainWalker();
    expect(w.push(rows.slice(0, 4))).toBeUndefined();
    expect(w.push(rows.slice(4))).toBeUndefined();
    expect(w.finish(headOf(rows))).toBeUndefined();
    expect(w.checked).toBe(10);
    expect(w.anchor).toEqual({ id: 1, prevHash: GENESIS_HASH });
  });

  it('names the row whose contents were edited', () => {
    const rows = chain(6);
    rows[3] = { ...rows[3]!, outcome: 'success', actor: 'someone-else' };
    const w = new ChainWalker();
    expect(w.push(rows)).toEqual({ id: 4, reason: 'hash_mismatch' });
    expect(w.checked).toBe(3);
  });

  it('names the next row when an edited row was re-hashed', () => {
    const rows = chain(6);
    const edited = { ...rows[2]!, action: 'auth.logout' };
    edited.hash = rowHash(edited.prevHash, edited.id, canonicalPayload(edited));
    rows[2] = edited;
    expect(new ChainWalker().push(rows)).toEqual({ id: 4, reason: 'prev_hash_mismatch' });
  });

  it('names the row after one that was deleted', () => {
    const rows = chain(6);
    rows.splice(2, 1);
    expect(new ChainWalker().push(rows)).toEqual({ id: 4, reason: 'id_gap' });
  });

  it('after a retention purge, accepts the first remaining row’s previous hash as the anchor', () => {
    const rows = chain(8).slice(5);
    const w = new ChainWalker();
    expect(w.push(rows)).toBeUndefined();
    expect(w.finish(headOf(rows))).toBeUndefined();
    expect(w.anchor).toEqual({ id: 6, prevHash: chain(8)[4]!.hash });
    expect(w.checked).toBe(3);
  });

  it('notices rows missing at the end through the chain head', () => {
    const rows = chain(5);
    const w = new ChainWalker();
    expect(w.push(rows.slice(0, 3))).toBeUndefined();
    expect(w.finish(headOf(rows))).toEqual({ id: 4, reason: 'head_mismatch' });
    expect(new ChainWalker().finish(headOf(rows))).toEqual({ id: 5, reason: 'head_mismatch' });
    expect(new ChainWalker().finish(undefined)).toBeUndefined();
  });
});

describe('what a row keeps of the client', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0/24'],
    ['::ffff:198.51.100.9', '198.51.100.0/24'],
    ['2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:85a3::/48'],
    ['2001:db8::1', '2001:db8:0::/48'],
    ['::1', '0:0:0::/48'],
    ['fe80::1%eth0', 'fe80:0:0::/48'],
    ['not-an-ip', null],
    [undefined, null],
  ])('maskIp(%s) = %s', (ip, masked) => expect(maskIp(ip)).toBe(masked));

  it.each([
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 'chrome'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0', 'edge'],
    ['Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', 'firefox'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15', 'safari'],
    ['curl/8.5.0', 'curl'],
    ['python-requests/2.31', 'python'],
    ['Googlebot/2.1 (+http://www.google.com/bot.html)', 'bot'],
    ['lightMyRequest', 'other'],
    [undefined, null],
  ])('userAgentFamily(%s) = %s', (ua, family) => expect(userAgentFamily(ua)).toBe(family));

  it('applies the log scrubbing rules to every column', () => {
    const p = auditPayload({
      actor: 'jane.doe@example.com',
      action: 'auth.login',
      outcome: 'failure',
      targetType: 'user',
      targetId: 'Bearer abc.def.ghi',
      ip: '203.0.113.77',
      userAgent: 'curl/8.5.0',
      requestId: 'req-1',
      details: { email: 'jane.doe@example.com', password: 'hunter2', refresh_token: 'abc', note: 'token=abcdef', reason: 'wrong_password' },
    });
    expect(p.actor).toBe('j***@example.com');
    expect(p.targetId).toBe('Bearer [REDACTED]');
    expect(p.ip).toBe('203.0.113.0/24');
    expect(p.userAgent).toBe('curl');
    expect(p.details).toEqual({ email: 'j***@example.com', password: '[REDACTED]', refresh_token: '[REDACTED]', note: 'token=[REDACTED]', reason: 'wrong_password' });
    expect(JSON.stringify(p)).not.toMatch(/hunter2|jane\.doe/);
  });
});
