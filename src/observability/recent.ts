/**
 * What the operator console shows of this process's recent past: the last server errors and the
 * last security events, each in a fixed-size list (the oldest entry leaves when a new one comes).
 * Per process, like the logs they mirror; nothing here is shared between replicas.
 */
import { scrub, scrubErrorMessage } from './redact.ts';

export class RecentList<T> {
  private readonly items: T[] = [];

  constructor(readonly capacity: number) {}

  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.shift();
  }

  /** Newest first. */
  list(limit = this.capacity): T[] {
    return this.items.slice(-limit).reverse();
  }
}

export interface ServerErrorRecord {
  time: string;
  method: string;
  /** The route template, or `unmatched`. */
  route: string;
  status: number;
  request_id: string;
  trace_id: string | null;
  /** The error's message, scrubbed as log lines are. */
  message: string;
  sentry_event_id: string | null;
}

export interface SecurityEventRecord {
  time: string;
  type: string;
  severity: 'high' | 'medium';
  request_id: string | null;
  /** The event's scalar context, scrubbed as log lines are. */
  details: Record<string, unknown>;
}

export const RECENT_CAPACITY = 200;

export function serverErrorRecord(e: Omit<ServerErrorRecord, 'time' | 'message'> & { error: unknown }): ServerErrorRecord {
  const { error, ...rest } = e;
  const message = error instanceof Error ? error.message : String(error);
  return { time: new Date().toISOString(), ...rest, message: scrubErrorMessage(message) };
}

export function securityEventRecord(type: string, severity: 'high' | 'medium', fields: Record<string, unknown>, requestId: string | undefined): SecurityEventRecord {
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) details[k] = v;
  return { time: new Date().toISOString(), type, severity, request_id: requestId ?? null, details: scrub(details) as Record<string, unknown> };
}
