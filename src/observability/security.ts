/**
 * Security events: one place that turns "something an attacker would do happened" into the three
 * signals operators read — `security_events_total{type}`, one `security_event` warn line (logger
 * `security`, with the request's ids) and, for the high-severity types, a Sentry message.
 *
 * Callers pass scalar context only: ids, the client address, the account's keyed hash. Never an
 * email or a token (the log redaction and scrubEvent would mask them, but they have no business
 * here in the first place).
 */
import { getLogger, type Logger } from './logging.ts';
import type { Metrics, SecurityEventType } from './metrics.ts';
import { RECENT_CAPACITY, RecentList, securityEventRecord, type SecurityEventRecord } from './recent.ts';
import { captureSecurityEvent } from './sentry.ts';

/** Events that reach Sentry: each means a credential is in someone else's hands or under attack. */
const HIGH_SEVERITY: ReadonlySet<SecurityEventType> = new Set(['refresh_token_reuse', 'account_locked']);

export type SecurityEventFields = Record<string, string | number | boolean | null | undefined>;

export class SecurityEvents {
  /** This process's latest events, for the operator console. */
  readonly recent = new RecentList<SecurityEventRecord>(RECENT_CAPACITY);

  constructor(private readonly metrics: Metrics | undefined) {}

  static severity(type: SecurityEventType): 'high' | 'medium' {
    return HIGH_SEVERITY.has(type) ? 'high' : 'medium';
  }

  /**
   * `log` is the request's logger (its lines already carry request_id and the trace ids);
   * `requestId` only tags the Sentry message.
   */
  record(log: Logger, type: SecurityEventType, fields: SecurityEventFields = {}, requestId?: string): void {
    this.metrics?.recordSecurityEvent(type);
    const severity = SecurityEvents.severity(type);
    getLogger(log, 'security').warn({ type, severity, ...fields }, 'security_event');
    this.recent.push(securityEventRecord(type, severity, fields, requestId));
    if (severity === 'high') {
      const { user_id, ...rest } = fields;
      const details: Record<string, string | number | boolean | undefined> = {};
      for (const [k, v] of Object.entries(rest)) if (v !== null && v !== undefined) details[k] = v;
      captureSecurityEvent({ type, request_id: requestId, user_id: typeof user_id === 'string' ? user_id : undefined, details });
    }
  }
}
