/**
 * One place that decides what is secret or personal. Logs (and later Sentry) pass every
 * structured value through `scrub` before it leaves the process.
 */

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|credential|private[-_]?key|^jwt$|session/i;
const EMAIL_KEY = /^e-?mail$|_email$/i;
const ACCOUNT_NUMBER_KEY = /account[-_]?number|^iban$|routing[-_]?number/i;
const EMAIL = /([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}/g;
/** Runs of 8+ digits (optionally spaced or dashed) look like account or card numbers. */
const LONG_DIGITS = /\b\d(?:[ -]?\d){7,}\b/g;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;

export const REDACTED = '[REDACTED]';

/** `jane.doe@example.com` → `j***@example.com` (domain kept for debugging deliverability). */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***${email.slice(at)}`;
}

/** Keeps the last four digits: `123456789` → `*****6789`. */
export function maskDigits(value: string): string {
  const digits = value.replace(/\D/g, '');
  return digits.length <= 4 ? '****' : `${'*'.repeat(digits.length - 4)}${digits.slice(-4)}`;
}

/** Masks emails, bearer credentials and long digit runs inside free text. */
export function scrubText(text: string): string {
  return text
    .replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(EMAIL, (m) => maskEmail(m))
    .replace(LONG_DIGITS, (m) => maskDigits(m));
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Deep copy with secrets removed and personal data masked; cycles and depth are bounded. */
export function scrub(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8 || seen.has(value)) return '[Truncated]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1, seen));
  if (value instanceof Error) return scrubError(value, depth, seen);
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = scrubEntry(key, v, depth, seen);
  }
  return out;
}

function scrubEntry(key: string, v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (v === undefined || v === null) return v;
  if (SECRET_KEY.test(key)) return REDACTED;
  if (EMAIL_KEY.test(key) && typeof v === 'string') return maskEmail(v);
  if (ACCOUNT_NUMBER_KEY.test(key) && (typeof v === 'string' || typeof v === 'number')) return maskDigits(String(v));
  return scrub(v, depth + 1, seen);
}

function scrubError(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: err.name,
    message: scrubText(err.message),
    stack: err.stack ? scrubText(err.stack) : undefined,
  };
  for (const [key, v] of Object.entries(err)) {
    if (key !== 'message' && key !== 'stack') out[key] = scrubEntry(key, v, depth, seen);
  }
  if (err.cause !== undefined) out.cause = scrub(err.cause, depth + 1, seen);
  return out;
}
