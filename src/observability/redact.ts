/**
 * One place that decides what is secret or personal. Logs (and later Sentry) pass every
 * structured value through `scrub` before it leaves the process.
 */

const SECRET_KEY = /pass(word)?|secret|token|authorization|cookie|api[-_]?key|credential|private[-_]?key|^jwt$|session/i;
const EMAIL_KEY = /^e-?mail$|_email$/i;
const ACCOUNT_NUMBER_KEY = /account[-_]?number|^iban$|routing[-_]?number/i;
const EMAIL = /([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}/g;
/**
 * Runs of 8+ digits (optionally spaced or dashed) look like account or card numbers. A run that
 * touches a letter, digit or dash is part of something else (a UUID such as a user id or request
 * id, a hash), and a plain date is a date: both are left alone.
 */
const LONG_DIGITS = /(?<![\w-])\d(?:[ -]?\d){7,}(?![\w-])/g;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** Bare JWTs (header.payload.signature) and Plaid access/public/link/processor tokens. */
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const PLAID_TOKEN = /\b(?:access|public|link|processor)-(?:sandbox|development|production)-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b/gi;
/**
 * Credentials inside a URL: `postgres://user:pass@host` → `postgres://[REDACTED]@host`, a password
 * without a user too (`redis://:pass@host`, Redis's usual form).
 */
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]*@/gi;
/**
 * `key=value` / `key: value` pairs in free text whose key names a secret (`password=…`,
 * `client_secret: …`, `"access_token":"…"`, `x-api-key: …`, `Authorization: Bearer …`), the key
 * quoted or not; the value quoted (an unterminated quote runs to the end of the text),
 * JSON-escaped-quoted (`\\"…\\"`) or bare (up to whitespace, `&`, `,`, `;`, `)`, `}` or `>`).
 * Only the value goes: `password=[REDACTED]`. The match starts at the secret word itself, so a
 * prefix (`new_`, `client_`, `x-`) stays as it is; a Bearer or Basic scheme after `authorization`
 * is kept too.
 */
const KEY_VALUE_SECRET =
  /(passw(?:or)?d|pwd|secret|token|api[-_]?key|authorization)(\\?["']?[ \t]*[=:][ \t]*)((?:Bearer|Basic)[ \t]+)?(?:\\"(?:[^"\\]|\\(?!"))*\\"|"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s"'&,;)}>]+)/gi;
/** Fields holding a URL or path, or a bare query string: their query parameters are judged by name. */
const URL_KEY = /^(?:url|uri|href|path|url\.full|url\.path|http\.url|http\.target)$/i;
const QUERY_KEY = /^(?:url\.query|http\.query|query_?string)$/i;

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

/**
 * Whatever any pattern below could match contains one of these: `@` (emails, URL credentials),
 * whitespace (Bearer/Basic, and a key=value secret with spaces around its separator), `eyJ`
 * (JWTs), a Plaid environment between dashes, eight digits with at most single spaces or dashes
 * between them, or a secret word followed by its separator (an optional quote, then `=` or `:`).
 * Most strings in a log line (event names, routes, methods, ids) contain none, and one test is
 * cheaper than the seven replaces.
 */
export const MAYBE_SENSITIVE = /[@\s]|eyJ|-(?:sandbox|development|production)-|\d(?:[ -]?\d){7}|(?:passw(?:or)?d|pwd|secret|token|api[-_]?key|authorization)\\?["']?[=:]/i;

/**
 * Masks emails, credentials (key=value secrets, bearer, JWT, Plaid tokens, URL passwords) and long
 * digit runs inside free text.
 */
export function scrubText(text: string): string {
  return MAYBE_SENSITIVE.test(text) ? scrubTextFully(text) : text;
}

/** scrubText without the precheck (exported for the test that the precheck never skips a match). */
export function scrubTextFully(text: string): string {
  return text
    .replace(KEY_VALUE_SECRET, (_m, key: string, separator: string, scheme: string | undefined) => `${key}${separator}${scheme ?? ''}${REDACTED}`)
    .replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(JWT, REDACTED)
    .replace(PLAID_TOKEN, REDACTED)
    .replace(URL_CREDENTIALS, (_m, scheme: string) => `${scheme}${REDACTED}@`)
    .replace(EMAIL, (m) => maskEmail(m))
    .replace(LONG_DIGITS, (m) => (ISO_DATE.test(m) ? m : maskDigits(m)));
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

function decodeComponent(component: string): string {
  try {
    return decodeURIComponent(component.replace(/\+/g, ' '));
  } catch {
    return component;
  }
}

/**
 * `password=x&email=jane%40example.com&q=1` → `password=[REDACTED]&email=j***@example.com&q=1`:
 * each value is decoded (so an encoded email is still seen) and judged by its parameter name.
 */
export function scrubQueryString(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq === -1) return scrubText(decodeComponent(pair));
      const key = decodeComponent(pair.slice(0, eq));
      return `${scrubText(key)}=${String(scrubEntry(key, decodeComponent(pair.slice(eq + 1)), 0, new WeakSet()))}`;
    })
    .join('&');
}

/** A URL or path: credentials, emails and long digit runs masked, query parameters judged by name. */
export function scrubUrl(url: string): string {
  const q = url.indexOf('?');
  const path = scrubText(decodeComponent(q === -1 ? url : url.slice(0, q)));
  return q === -1 ? path : `${path}?${scrubQueryString(url.slice(q + 1))}`;
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

// Stryker disable next-line ArrowFunction,StringLiteral: equivalent, both make every alternative empty, so SPECIAL_KEY matches every key and scrubEntry's shortcut is skipped: same results, slower
const alternative = (r: RegExp) => `(?:${r.source})`;
/** A key any of the five rules above could apply to; most keys (`status`, `route`, …) match none. */
// Stryker disable next-line ArrayDeclaration: equivalent, an empty list makes a pattern that matches every key (the shortcut skipped, as above)
const SPECIAL_KEY = new RegExp([SECRET_KEY, EMAIL_KEY, ACCOUNT_NUMBER_KEY, URL_KEY, QUERY_KEY].map(alternative).join('|'), 'i');

function scrubEntry(key: string, v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (v === undefined || v === null) return v;
  // Stryker disable next-line ConditionalExpression: equivalent when false, the shortcut for ordinary keys: without it they go through the five rules, none applies, and the last line does the same
  if (!SPECIAL_KEY.test(key)) return scrub(v, depth + 1, seen);
  if (SECRET_KEY.test(key)) return REDACTED;
  if (EMAIL_KEY.test(key) && typeof v === 'string') return maskEmail(v);
  if (ACCOUNT_NUMBER_KEY.test(key) && (typeof v === 'string' || typeof v === 'number')) return maskDigits(String(v));
  if (URL_KEY.test(key) && typeof v === 'string') return scrubUrl(v);
  if (QUERY_KEY.test(key) && typeof v === 'string') return scrubQueryString(v.replace(/^\?/, ''));
  return scrub(v, depth + 1, seen);
}

/**
 * drizzle's failed-query error repeats every bound value (password hashes, names, amounts) after
 * `params:` in its message and stack, and in a `params` property. The SQL and the cause stay.
 */
const QUERY_PARAMS = /\nparams: [\s\S]*?(?=\n {4}at |$)/;
const isQueryError = (err: Error) => 'query' in err && 'params' in err;

function scrubError(err: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const withoutParams = (s: string) => (isQueryError(err) ? s.replace(QUERY_PARAMS, `\nparams: ${REDACTED}`) : s);
  const out: Record<string, unknown> = {
    type: err.name,
    message: scrubText(withoutParams(err.message)),
    stack: err.stack ? scrubText(withoutParams(err.stack)) : undefined,
  };
  for (const [key, v] of Object.entries(err)) {
    if (key === 'message' || key === 'stack' || key === 'cause') continue;
    out[key] = key === 'params' && isQueryError(err) ? REDACTED : scrubEntry(key, v, depth, seen);
  }
  if (err.cause !== undefined) out.cause = scrub(err.cause, depth + 1, seen);
  return out;
}

/** An error message already taken from its error (e.g. by an error tracker): drizzle's bound values go too. */
export function scrubErrorMessage(message: string): string {
  return scrubText(message.replace(QUERY_PARAMS, `\nparams: ${REDACTED}`));
}
