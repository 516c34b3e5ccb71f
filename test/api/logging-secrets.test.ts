/**
 * A whole session (register, login, failed login, a 500, refresh, reuse, logout) in each log
 * format: no password, no token and no full email address reaches the log, the login is logged
 * as the guide shows it, and every request leaves exactly one completion line.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/db/schema.ts';
import { getLogger, type Logger } from '../../src/observability/logging.ts';
import { bearer, createTestApp, json, type TestApp } from '../helpers/app.ts';

type Fields = Record<string, unknown>;

const DIGIT_LED_UUID = '12345678-aaaa-4bbb-8ccc-123456789abc';
const CARD = '4111 1111 1111 1111';

interface LogLine {
  logger: string;
  level: string;
  event: string;
  fields: Fields;
}

/** `2024-02-17 10:30:15 api.auth INFO user_login user_id=123 email=j***@example.com ip=127.0.0.1` */
const TEXT_LINE = /^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (\S+) ([A-Z]+) (\S+)(?: (.*))?$/;

function parseLine(format: 'json' | 'text', line: string): LogLine {
  if (format === 'json') {
    const { logger, level, event, timestamp, ...fields } = JSON.parse(line) as Fields;
    expect(String(timestamp)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    return { logger: String(logger), level: String(level), event: String(event), fields };
  }
  const m = TEXT_LINE.exec(line);
  expect(m, `not a text log line: ${line}`).not.toBeNull();
  const fields: Fields = {};
  // Values written by the text format are unquoted; the fields these tests read have no spaces.
  for (const [, key, value] of (m![5] ?? '').matchAll(/(?:^| )([a-z_]+)=(\S*)/g)) fields[key!] = value;
  return { logger: m![2]!, level: m![3]!.toLowerCase(), event: m![4]!, fields };
}

for (const format of ['json', 'text'] as const) {
  describe(`log hygiene with LOG_FORMAT=${format}`, () => {
    let t: TestApp;
    let lines: LogLine[];
    let raw: string;
    const requests: { id: string; method: string; route: string; status: number; userId?: string }[] = [];
    const secrets: string[] = [];

    const email = `Jane.Secretive+${format}@Example.com`;
    const normalizedEmail = email.toLowerCase();
    const password = `pw-${format}-Very-Private-Phrase`;
    const wrongPassword = `pw-${format}-Wrong-Guess-Phrase`;
    let userId = '';
    let passwordHash = '';

    beforeAll(async () => {
      t = await createTestApp({ LOG_FORMAT: format });
      let n = 0;
      const call = async (
        method: 'GET' | 'POST',
        url: string,
        route: string,
        opts: { payload?: Record<string, unknown>; token?: string; authenticatedAs?: () => string } = {},
      ) => {
        const id = `hygiene-${format}-${++n}`;
        const res = await t.app.inject({
          method,
          url,
          payload: opts.payload,
          headers: { 'x-request-id': id, ...(opts.token ? bearer(opts.token) : {}) },
        });
        expect(res.headers['x-request-id']).toBe(id);
        requests.push({ id, method, route, status: res.statusCode, userId: opts.authenticatedAs?.() });
        return res;
      };

      const reg = await call('POST', '/api/v1/auth/register', '/api/v1/auth/register', {
        payload: { email, password, full_name: 'Jane Secretive' },
      });
      expect(reg.statusCode).toBe(201);
      userId = json<{ id: string }>(reg).id;

      const login = await call('POST', '/api/v1/auth/login', '/api/v1/auth/login', {
        payload: { email, password },
        authenticatedAs: () => userId,
      });
      expect(login.statusCode).toBe(200);
      const first = json<{ access_token: string; refresh_token: string }>(login);
      secrets.push(first.access_token, first.refresh_token);

      const failed = await call('POST', '/api/v1/auth/login', '/api/v1/auth/login', { payload: { email, password: wrongPassword } });
      expect(failed.statusCode).toBe(401);

      const me = await call('GET', '/api/v1/auth/me', '/api/v1/auth/me', { token: first.access_token, authenticatedAs: () => userId });
      expect(me.statusCode).toBe(200);

      const boom = await call('POST', '/api/v1/dev/test-sentry', '/api/v1/dev/test-sentry', {
        payload: {},
        token: first.access_token,
        authenticatedAs: () => userId,
      });
      expect(boom.statusCode).toBe(500);

      const refreshed = await call('POST', '/api/v1/auth/refresh', '/api/v1/auth/refresh', {
        payload: { refresh_token: first.refresh_token },
        authenticatedAs: () => userId,
      });
      expect(refreshed.statusCode).toBe(200);
      const second = json<{ access_token: string; refresh_token: string }>(refreshed);
      secrets.push(second.access_token, second.refresh_token);

      // A replayed refresh token is logged as a warning, still without the token.
      const replay = await call('POST', '/api/v1/auth/refresh', '/api/v1/auth/refresh', { payload: { refresh_token: first.refresh_token } });
      expect(replay.statusCode).toBe(401);

      // A bad bearer token on a protected route, and a validation error echoing nothing back.
      const forged = await call('GET', '/api/v1/auth/me', '/api/v1/auth/me', { token: `${second.access_token.slice(0, -4)}AAAA` });
      expect(forged.statusCode).toBe(401);
      const invalid = await call('POST', '/api/v1/auth/register', '/api/v1/auth/register', {
        payload: { email: normalizedEmail, password: 'short' },
      });
      expect(invalid.statusCode).toBe(422);

      const logout = await call('POST', '/api/v1/auth/logout', '/api/v1/auth/logout', {
        payload: { refresh_token: second.refresh_token },
        authenticatedAs: () => userId,
      });
      expect(logout.statusCode).toBe(204);

      const notFound = await call('GET', '/api/v1/auth/nowhere?email=' + encodeURIComponent(email), 'unmatched');
      expect(notFound.statusCode).toBe(404);

      // A query that fails carries its bound values; log a real one whose values are the stored
      // password hash and the email (a duplicate, so the cause names the email too).
      const [stored] = await t.db.database.db.select({ passwordHash: users.passwordHash }).from(users).where(eq(users.id, userId));
      passwordHash = stored!.passwordHash;
      const queryError: unknown = await t.db.database.db
        .insert(users)
        .values({ email: normalizedEmail, passwordHash, fullName: 'Jane Secretive' })
        .then(() => null, (err: unknown) => err);
      expect(queryError).toBeInstanceOf(Error);
      expect(String((queryError as Error).message)).toContain(passwordHash);
      getLogger(t.app.log as Logger, 'test').error({ error: queryError }, 'query_failed_probe');
      // Ids and dates that start with digits are not account numbers; account numbers are.
      getLogger(t.app.log as Logger, 'test').info(
        { user_id: DIGIT_LED_UUID, period_start: '2024-02-01', note: `card ${CARD}`, account_number: '000123456789' },
        'masking_probe',
      );

      raw = t.logs().join('\n');
      lines = t.logs().map((l) => parseLine(format, l));
    });
    afterAll(async () => t.close());

    it('writes no password', () => {
      // The sign-ins that carried them were logged (by route), so their absence means something.
      expect(lines.filter((l) => JSON.stringify(l).includes('/api/v1/auth/login')).length).toBeGreaterThanOrEqual(2);
      expect(raw).not.toContain(password);
      expect(raw).not.toContain(wrongPassword);
      expect(raw).not.toContain('Very-Private');
    });

    it('writes no bound value of a failed query (the password hash), but keeps the SQL and the cause', () => {
      const probe = lines.filter((l) => l.event === 'query_failed_probe');
      expect(probe).toHaveLength(1);
      expect(passwordHash).toMatch(/^\$argon2id\$/);
      expect(raw).not.toContain(passwordHash.split('$').at(-1)!);
      expect(raw).not.toContain('$argon2id$');
      expect(raw).not.toContain('Jane Secretive');
      const line = t.logs().find((l) => l.includes('query_failed_probe'))!;
      expect(line).toContain('insert into');
      expect(line).toContain('23505'); // the unique violation, from the cause
    });

    it('masks account and card numbers but leaves ids and dates intact', () => {
      const probe = lines.filter((l) => l.event === 'masking_probe');
      expect(probe).toHaveLength(1);
      expect(probe[0]!.fields).toMatchObject({ user_id: DIGIT_LED_UUID, period_start: '2024-02-01', account_number: '********6789' });
      expect(raw).not.toContain(CARD);
      expect(raw).toContain('************1111');
    });

    it('writes no access or refresh token', () => {
      expect(secrets).toHaveLength(4);
      for (const s of secrets) expect(raw).not.toContain(s);
      // Not even a piece of one: every JWT starts with the same encoded header.
      expect(raw).not.toContain(secrets[0]!.split('.')[0]!);
      for (const s of secrets) expect(raw).not.toContain(s.split('.').at(-1)!.slice(0, 16));
    });

    it('writes no full email address, only the masked form', () => {
      expect(raw.toLowerCase()).not.toContain(normalizedEmail);
      expect(raw.toLowerCase()).not.toContain('jane.secretive');
      expect(raw).toContain('j***@example.com');
    });

    it('logs user_login with the user id, masked email and ip', () => {
      const logins = lines.filter((l) => l.event === 'user_login');
      expect(logins).toHaveLength(1);
      expect(logins[0]).toMatchObject({
        logger: 'api.auth',
        level: 'info',
        fields: { user_id: userId, email: 'j***@example.com', ip: '127.0.0.1', request_id: requests[1]!.id },
      });
    });

    it('logs the failed login with the masked email and ip', () => {
      const failures = lines.filter((l) => l.event === 'user_login_failed');
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ logger: 'api.auth', fields: { email: 'j***@example.com', ip: '127.0.0.1' } });
      expect(failures[0]!.fields.user_id).toBeUndefined();
    });

    it('logs the refresh-token replay as a warning', () => {
      const reuse = lines.filter((l) => l.event === 'refresh_token_reuse_detected');
      expect(reuse).toHaveLength(1);
      expect(reuse[0]).toMatchObject({ logger: 'api.auth', level: 'warn', fields: { user_id: userId } });
    });

    it('logs the replay once more as a security_event (type, severity, ids; no token, no email)', () => {
      const events = lines.filter((l) => l.event === 'security_event');
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ logger: 'security', level: 'warn', fields: { type: 'refresh_token_reuse', severity: 'high', user_id: userId } });
      expect(JSON.stringify(events[0])).not.toMatch(/example\.com|refresh_token"/);
    });

    it('writes exactly one completion line per request, with its route, status, duration and user', () => {
      const completions = lines.filter((l) => l.event === 'request_completed');
      expect(completions).toHaveLength(requests.length);
      for (const r of requests) {
        const mine = completions.filter((l) => l.fields.request_id === r.id);
        expect(mine, r.id).toHaveLength(1);
        const { fields, level } = mine[0]!;
        expect(String(fields.method)).toBe(r.method);
        expect(String(fields.route)).toBe(r.route);
        expect(Number(fields.status)).toBe(r.status);
        expect(Number(fields.duration_ms)).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(Number(fields.duration_ms))).toBe(true);
        expect(level).toBe(r.status >= 500 ? 'error' : 'info');
        if (r.userId) expect(fields.user_id, r.id).toBe(r.userId);
        else expect(fields.user_id, r.id).toBeUndefined();
      }
    });

    it('logs the 500 with its error, and every line is one well-formed record', () => {
      const errors = lines.filter((l) => l.event === 'unhandled_error');
      expect(errors).toHaveLength(1);
      expect(errors[0]!.fields.request_id).toBe(requests[4]!.id);
      expect(raw).toContain('SentryTestError');
      expect(lines.length).toBe(t.logs().length);
      for (const l of lines) expect(['http', 'api.auth', 'security', 'test']).toContain(l.logger);
    });
  });
}
