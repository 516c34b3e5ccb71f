/**
 * The audit trail: the recorder every part of the service calls (routes, the CLI, jobs, and the
 * operator console's actions), the admin's filtered list, the retention purge and the chain check.
 *
 * Appending is one SQL statement, so a request waits for one round trip at most: it moves the
 * chain head (`audit_chain_head`, one row) and inserts the event from the head's new id and hash.
 * The upsert on the head takes that row's lock and works on its newest committed version (what
 * `INSERT … ON CONFLICT DO UPDATE` guarantees under READ COMMITTED), so appends from any number
 * of replicas queue on it for the few microseconds of their statement and can never both chain
 * from the same previous row. The same statement runs on PGlite (one connection: serial anyway).
 * The hash is computed by Postgres (sha256) over text built here (chain.ts), and recomputed by
 * `verify` in JavaScript.
 *
 * Recording never fails the caller: `record` resolves false instead of rejecting, after counting
 * the failure (`onWriteFailure`, wired to audit_write_failures_total) and logging it; and a caller
 * waits at most RECORD_WAIT_MS for a slow database (the write goes on in the background).
 */
import { and, asc, desc, eq, gte, inArray, lt, lte, max, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { auditChainHead, auditEvents } from '../../db/schema.ts';
import { withTimeout } from '../../lib/timeout.ts';
import type { Logger } from '../../observability/logging.ts';
import { scrub, scrubText } from '../../observability/redact.ts';
import { currentTrace } from '../../observability/trace-context.ts';
import { canonicalPayload, ChainWalker, GENESIS_HASH, type AuditDetails, type AuditPayload, type ChainBreak, type ChainedRow } from './chain.ts';
import { maskIp, userAgentFamily } from './context.ts';

export const AUDIT_OUTCOMES = ['success', 'failure', 'denied'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** The actor of work nobody signed in for: jobs and the CLI. */
export const SYSTEM_ACTOR = 'system';
/** The actor of a request without a (known) user. */
export const ANONYMOUS_ACTOR = 'anonymous';

export interface AuditEvent {
  /** A user id, SYSTEM_ACTOR or ANONYMOUS_ACTOR. */
  actor: string;
  /** `area.verb`, e.g. `auth.login`, `account.delete`, `ops.user_disable`. */
  action: string;
  outcome: AuditOutcome;
  targetType?: string | null;
  targetId?: string | null;
  /** The client address as seen (masked before it is stored). */
  ip?: string | null;
  /** The User-Agent header as sent (only its family is stored). */
  userAgent?: string | null;
  requestId?: string | null;
  traceId?: string | null;
  /** A few flat facts (reason, family id, counts); scrubbed like a log line's fields. */
  details?: AuditDetails;
  occurredAt?: Date;
}

export type AuditRow = ChainedRow;

export interface AuditFilters {
  actor?: string;
  action?: string;
  outcome?: AuditOutcome;
  requestId?: string;
  from?: Date;
  to?: Date;
  /** Rows older than this id (the cursor of the previous page). */
  beforeId?: number;
  limit: number;
}

export type VerifyResult = { ok: true; checked: number; anchor?: { id: number; prevHash: string } } | { ok: false; checked: number; broken: ChainBreak };

export interface AuditTrailOptions {
  logger: Logger;
  onWriteFailure?: () => void;
}

/** How long a caller waits for its row before going on without it (the write continues). */
export const RECORD_WAIT_MS = 2_000;
const TEXT_MAX = 200;
const VERIFY_BATCH = 1_000;
const PURGE_BATCH = 5_000;

/** A stored text column: scrubbed like a log field, bounded, without NUL (which Postgres text refuses). */
function column(value: string | null | undefined): string | null {
  if (value === undefined || value === null || value === '') return null;
  const clean = scrubText(value.replaceAll('\u0000', ''));
  return clean.length > TEXT_MAX ? clean.slice(0, TEXT_MAX) : clean;
}

/** The row as it will be stored: every column scrubbed, the address masked, the agent reduced to its family. */
export function auditPayload(event: AuditEvent): AuditPayload {
  const details = event.details && Object.keys(event.details).length > 0 ? (scrub(event.details) as AuditDetails) : null;
  return {
    occurredAt: event.occurredAt ?? new Date(),
    actor: column(event.actor) ?? ANONYMOUS_ACTOR,
    action: column(event.action) ?? 'unknown',
    targetType: column(event.targetType),
    targetId: column(event.targetId),
    outcome: event.outcome,
    ip: maskIp(event.ip),
    userAgent: userAgentFamily(event.userAgent),
    requestId: column(event.requestId),
    // The trace of the request or job that did it (the same id as its log lines and spans).
    traceId: column(event.traceId ?? currentTrace()?.traceId),
    details,
  };
}

const rowColumns = {
  id: auditEvents.id,
  occurredAt: auditEvents.occurredAt,
  actor: auditEvents.actor,
  action: auditEvents.action,
  targetType: auditEvents.targetType,
  targetId: auditEvents.targetId,
  outcome: auditEvents.outcome,
  ip: auditEvents.ip,
  userAgent: auditEvents.userAgent,
  requestId: auditEvents.requestId,
  traceId: auditEvents.traceId,
  details: auditEvents.details,
  prevHash: auditEvents.prevHash,
  hash: auditEvents.hash,
};

/** sha256 hex of the chain input (chain.ts chainInput), in SQL. */
const sqlHash = (prevHash: SQL, id: SQL, payload: string) =>
  sql`encode(sha256(convert_to(${prevHash} || chr(10) || ${id} || chr(10) || ${payload}::text, 'UTF8')), 'hex')`;

export class AuditTrail {
  constructor(
    private readonly db: Db,
    private readonly opts: AuditTrailOptions,
  ) {}

  /**
   * Appends one event; resolves true once it is stored, false when it could not be (counted and
   * logged) or is still being written after RECORD_WAIT_MS. Never rejects.
   */
  record(event: AuditEvent): Promise<boolean> {
    const write = this.append(auditPayload(event)).then(
      () => true,
      (error: unknown) => {
        this.opts.onWriteFailure?.();
        this.opts.logger.error({ action: event.action, outcome: event.outcome, error }, 'audit_write_failed');
        return false;
      },
    );
    return withTimeout(write, RECORD_WAIT_MS).catch(() => {
      this.opts.logger.warn({ action: event.action, wait_ms: RECORD_WAIT_MS }, 'audit_write_slow');
      return false;
    });
  }

  /** The one appending statement (see the file's comment). */
  private async append(row: AuditPayload): Promise<void> {
    const payload = canonicalPayload(row);
    const h = sql.raw('h');
    await this.db.execute(sql`
      with head as (
        insert into ${auditChainHead} as h (id, last_id, prev_hash, last_hash)
        values (1, 1, ${GENESIS_HASH}, ${sqlHash(sql`${GENESIS_HASH}::text`, sql`'1'`, payload)})
        on conflict (id) do update set
          last_id = ${h}.last_id + 1,
          prev_hash = ${h}.last_hash,
          last_hash = ${sqlHash(sql`${h}.last_hash`, sql`(${h}.last_id + 1)::text`, payload)}
        returning last_id, prev_hash, last_hash
      )
      insert into ${auditEvents}
        (id, occurred_at, actor, action, target_type, target_id, outcome, ip, user_agent, request_id, trace_id, details, prev_hash, hash)
      select last_id, ${row.occurredAt.toISOString()}::timestamptz, ${row.actor}, ${row.action}, ${row.targetType}, ${row.targetId},
        ${row.outcome}, ${row.ip}, ${row.userAgent}, ${row.requestId}, ${row.traceId},
        ${row.details === null ? null : JSON.stringify(row.details)}::jsonb, prev_hash, last_hash
      from head`);
  }

  /** Newest first; `limit + 1` rows are read so the caller knows whether there is a next page. */
  async list(f: AuditFilters): Promise<{ items: AuditRow[]; nextBeforeId: number | null }> {
    const where = and(
      f.actor !== undefined ? eq(auditEvents.actor, f.actor) : undefined,
      f.action !== undefined ? eq(auditEvents.action, f.action) : undefined,
      f.outcome !== undefined ? eq(auditEvents.outcome, f.outcome) : undefined,
      f.requestId !== undefined ? eq(auditEvents.requestId, f.requestId) : undefined,
      f.from ? gte(auditEvents.occurredAt, f.from) : undefined,
      f.to ? lte(auditEvents.occurredAt, f.to) : undefined,
      f.beforeId !== undefined ? lt(auditEvents.id, f.beforeId) : undefined,
    );
    const rows = (await this.db
      .select(rowColumns)
      .from(auditEvents)
      .where(where)
      .orderBy(desc(auditEvents.id))
      .limit(f.limit + 1)) as AuditRow[];
    const more = rows.length > f.limit;
    const items = more ? rows.slice(0, f.limit) : rows;
    return { items, nextBeforeId: more ? items[items.length - 1]!.id : null };
  }

  /**
   * Deletes the rows older than `cutoff`, oldest first and always a prefix of the chain (by id,
   * so two rows whose times cross by a millisecond never leave a hole). The first row left keeps
   * the hash of the last one deleted as its prev_hash: verify accepts it as the anchor.
   */
  async purgeBefore(cutoff: Date, signal?: AbortSignal): Promise<number> {
    const [bound] = await this.db.select({ id: max(auditEvents.id) }).from(auditEvents).where(lt(auditEvents.occurredAt, cutoff));
    const lastId = bound?.id === null || bound?.id === undefined ? null : Number(bound.id);
    if (lastId === null) return 0;
    let deleted = 0;
    for (;;) {
      signal?.throwIfAborted();
      const batch = this.db
        .select({ id: auditEvents.id })
        .from(auditEvents)
        .where(lte(auditEvents.id, lastId))
        .orderBy(asc(auditEvents.id))
        .limit(PURGE_BATCH);
      const rows = await this.db.delete(auditEvents).where(inArray(auditEvents.id, batch)).returning({ id: auditEvents.id });
      deleted += rows.length;
      if (rows.length < PURGE_BATCH) return deleted;
    }
  }

  /**
   * Walks the chain from its first row to the head as it was when the walk began (rows appended
   * meanwhile are left for the next run), and stops at the first row that does not hold.
   */
  async verify(): Promise<VerifyResult> {
    const [head] = await this.db
      .select({ lastId: auditChainHead.lastId, lastHash: auditChainHead.lastHash })
      .from(auditChainHead)
      .where(eq(auditChainHead.id, 1));
    const walker = new ChainWalker();
    let after = 0;
    const until = head ? head.lastId : Number.MAX_SAFE_INTEGER;
    for (;;) {
      const rows = (await this.db
        .select(rowColumns)
        .from(auditEvents)
        .where(and(sql`${auditEvents.id} > ${after}`, lte(auditEvents.id, until)))
        .orderBy(asc(auditEvents.id))
        .limit(VERIFY_BATCH)) as AuditRow[];
      const broken = walker.push(rows);
      if (broken) return { ok: false, checked: walker.checked, broken };
      if (rows.length < VERIFY_BATCH) break;
      after = rows[rows.length - 1]!.id;
    }
    const broken = walker.finish(head ? { lastId: Number(head.lastId), lastHash: head.lastHash } : undefined);
    if (broken) return { ok: false, checked: walker.checked, broken };
    return { ok: true, checked: walker.checked, anchor: walker.anchor };
  }
}
