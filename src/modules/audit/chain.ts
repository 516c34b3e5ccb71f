/**
 * The audit trail's hash chain. Each row's hash is
 *
 *     sha256_hex(prev_hash + "\n" + id + "\n" + canonical(row))
 *
 * where `canonical(row)` is a JSON array of the row's columns in a fixed order (details with its
 * keys sorted, recursively; the time as ISO 8601 with milliseconds). The first row ever written
 * chains from GENESIS_HASH. Pure functions: the recorder builds the payload here and lets Postgres
 * hash it inside the appending statement; `verifyChain` recomputes every hash here.
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export type AuditDetails = Record<string, string | number | boolean | null>;

/** The columns a hash covers (everything but the id, the previous hash and the hash itself). */
export interface AuditPayload {
  occurredAt: Date;
  actor: string;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  traceId: string | null;
  details: unknown;
}

export interface ChainedRow extends AuditPayload {
  id: number;
  prevHash: string;
  hash: string;
}

/** JSON with object keys sorted at every level, so jsonb's own key order never changes a hash. */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function canonicalPayload(row: AuditPayload): string {
  return canonicalJson([
    row.occurredAt.toISOString(),
    row.actor,
    row.action,
    row.targetType,
    row.targetId,
    row.outcome,
    row.ip,
    row.userAgent,
    row.requestId,
    row.traceId,
    row.details ?? null,
  ]);
}

/** What gets hashed for a row; Postgres hashes the same text in the appending statement. */
export function chainInput(prevHash: string, id: number, payload: string): string {
  return `${prevHash}\n${id}\n${payload}`;
}

export function rowHash(prevHash: string, id: number, payload: string): string {
  return createHash('sha256').update(chainInput(prevHash, id, payload), 'utf8').digest('hex');
}

export type ChainBreak = { id: number; reason: 'hash_mismatch' | 'prev_hash_mismatch' | 'id_gap' | 'head_mismatch' };

/**
 * Walks rows in id order and keeps what the next batch needs. The first row's prev_hash is
 * accepted as the anchor (after a retention purge it is the hash of a row that is gone); from
 * then on every row must link to the one before it and hash to what it says.
 */
export class ChainWalker {
  checked = 0;
  private last: { id: number; hash: string } | undefined;
  /** The first row seen: its id and the previous hash it was accepted on. */
  anchor: { id: number; prevHash: string } | undefined;

  /** Returns the first break in `rows`, or undefined when they all hold. */
  push(rows: Iterable<ChainedRow>): ChainBreak | undefined {
    for (const row of rows) {
      if (this.last) {
        if (row.id !== this.last.id + 1) return { id: row.id, reason: 'id_gap' };
        if (row.prevHash !== this.last.hash) return { id: row.id, reason: 'prev_hash_mismatch' };
      } else {
        this.anchor = { id: row.id, prevHash: row.prevHash };
      }
      if (rowHash(row.prevHash, row.id, canonicalPayload(row)) !== row.hash) return { id: row.id, reason: 'hash_mismatch' };
      this.last = { id: row.id, hash: row.hash };
      this.checked++;
    }
    return undefined;
  }

  /** The chain's end must be the head's last row (a removed newest row leaves the head ahead). */
  finish(head: { lastId: number; lastHash: string } | undefined): ChainBreak | undefined {
    if (!head) return this.last ? { id: this.last.id, reason: 'head_mismatch' } : undefined;
    if (!this.last) return head.lastId > 0 ? { id: head.lastId, reason: 'head_mismatch' } : undefined;
    if (this.last.id !== head.lastId) return { id: Math.min(this.last.id + 1, head.lastId), reason: 'head_mismatch' };
    if (this.last.hash !== head.lastHash) return { id: this.last.id, reason: 'head_mismatch' };
    return undefined;
  }
}
