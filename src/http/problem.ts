/** RFC 9457 problem details (the application's errors, src/lib/errors.ts, map onto them). */
import { STATUS_CODES } from 'node:http';
import type { FieldError } from '../lib/errors.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
  request_id?: string;
  /** The request's W3C trace id: the same as in its log lines, spans and Sentry events. */
  trace_id?: string;
}

export function problem(status: number, detail?: string, extra: Partial<Problem> = {}): Problem {
  const title = STATUS_CODES[status] ?? 'Error';
  return { type: 'about:blank', title, status, ...(detail ? { detail } : {}), ...extra };
}

