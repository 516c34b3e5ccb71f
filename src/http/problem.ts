/** RFC 9457 problem details, and the domain errors that map onto them. */
import { STATUS_CODES } from 'node:http';

export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
  request_id?: string;
}

export function problem(status: number, detail?: string, extra: Partial<Problem> = {}): Problem {
  const title = STATUS_CODES[status] ?? 'Error';
  return { type: 'about:blank', title, status, ...(detail ? { detail } : {}), ...extra };
}

/** Thrown by services; the error handler turns it into problem+json with this status. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: FieldError[],
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what = 'Resource') => new AppError(404, `${what} not found`);
export const conflict = (detail: string) => new AppError(409, detail);
export const unauthorized = (detail = 'Authentication required') => new AppError(401, detail);
export const forbidden = (detail = 'Not allowed') => new AppError(403, detail);
export const unprocessable = (detail: string, errors?: FieldError[]) => new AppError(422, detail, errors);
