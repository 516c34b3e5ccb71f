/**
 * The application's error type: thrown by services and routes alike, turned into RFC 9457
 * problem+json with its status by the HTTP error handler (src/http/errors.ts). Knows nothing of HTTP
 * frameworks, so business logic can throw it without importing one.
 */
export interface FieldError {
  field: string;
  message: string;
}

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
