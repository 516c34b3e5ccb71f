import { describe, expect, it } from 'vitest';
import { isSecretKey, maskDigits, maskEmail, REDACTED, scrub, scrubText, scrubTextFully } from '../../src/observability/redact.ts';

describe('maskEmail', () => {
  it('keeps the first letter and the domain', () => {
    expect(maskEmail('jane.doe@example.com')).toBe('j***@example.com');
    expect(maskEmail('a@b.co')).toBe('a***@b.co');
  });

  it('hides a value that is not an address at all', () => {
    expect(maskEmail('not-an-email')).toBe('***');
    expect(maskEmail('@example.com')).toBe('***');
  });
});

describe('maskDigits', () => {
  it('keeps the last four digits only', () => {
    expect(maskDigits('123456789')).toBe('*****6789');
    expect(maskDigits('4111-1111-1111-1111')).toBe('************1111');
    expect(maskDigits('123')).toBe('****');
  });
});

describe('isSecretKey', () => {
  it.each(['password', 'Password', 'new_password', 'token', 'access_token', 'refresh_token', 'Authorization', 'cookie', 'set-cookie', 'api_key', 'apiKey', 'x-api-key', 'client_secret', 'jwt', 'private_key', 'credentials', 'session_id'])(
    '%s is secret',
    (key) => expect(isSecretKey(key)).toBe(true),
  );

  it.each(['user_id', 'email', 'amount', 'merchant_name', 'status', 'duration_ms'])('%s is not', (key) => expect(isSecretKey(key)).toBe(false));
});

describe('scrubText', () => {
  it('masks every email in free text', () => {
    expect(scrubText('from jane.doe@example.com to bob+tag@mail.example.org')).toBe('from j***@example.com to b***@mail.example.org');
  });

  it('masks account and card numbers, spaced or dashed', () => {
    expect(scrubText('account 000123456789 debited')).toBe('account ********6789 debited');
    expect(scrubText('card 4111 1111 1111 1111')).toBe('card ************1111');
    expect(scrubText('card 4111-1111-1111-1111.')).toBe('card ************1111.');
  });

  it('removes bearer and basic credentials', () => {
    expect(scrubText('Authorization: Bearer eyJhbGciOi.abc.def')).toBe(`Authorization: Bearer ${REDACTED}`);
    expect(scrubText('basic dXNlcjpwYXNz')).toBe(`basic ${REDACTED}`);
  });

  it('masks the value of key=value and key: value secrets in free text, keeping the key', () => {
    const cases: [string, string][] = [
      ['login failed: password=hunter2 for user', 'login failed: password=[REDACTED] for user'],
      ['connect: PASSWORD = hunter2', 'connect: PASSWORD = [REDACTED]'],
      ['new_password="correct horse" rejected', 'new_password=[REDACTED] rejected'],
      ["client_secret='s3cr3t value' x", 'client_secret=[REDACTED] x'],
      ['secret:abc;next', 'secret:[REDACTED];next'],
      ['token=abc, then', 'token=[REDACTED], then'],
      ['GET /cb?access_token=at-1&refresh_token=rt-2&state=ok', 'GET /cb?access_token=[REDACTED]&refresh_token=[REDACTED]&state=ok'],
      ['body {"refresh_token":"rt-3","ok":true}', 'body {"refresh_token":[REDACTED],"ok":true}'],
      ['body {"password":"p\\"w"}', 'body {"password":[REDACTED]}'],
      ['raw {\\"api_key\\":\\"k-1\\"}', 'raw {\\"api_key\\":[REDACTED]}'],
      ['x-api-key: k-2', 'x-api-key: [REDACTED]'],
      ['API_KEY=k-3', 'API_KEY=[REDACTED]'],
      ['authorization: Bearer opaque-4', 'authorization: Bearer [REDACTED]'],
      ['Authorization=Basic dXNlcjpwYXNz', 'Authorization=Basic [REDACTED]'],
      ['password="cut off here', 'password=[REDACTED]'],
    ];
    for (const [text, want] of cases) expect(scrubText(text), text).toBe(want);
    // Mixed with the other rules in one message.
    expect(scrubText('user jane.doe@example.com password=hunter2 card 4111111111111111')).toBe(
      'user j***@example.com password=[REDACTED] card ************1111',
    );
  });

  it('leaves words that only look like secret keys alone', () => {
    for (const s of ['tokens=5', 'token_refreshed', 'refresh_token_reused', 'password_changed', 'secret_rotation_due', 'compass=north']) {
      expect(scrubText(s)).toBe(s);
    }
  });

  it('leaves identifiers, dates, timestamps and short numbers alone', () => {
    for (const s of [
      '123e4567-e89b-12d3-a456-426614174000',
      'c60631eb-5728-4494-bfea-a49bd02cf4d7',
      '2024-02-17',
      '2024-02-17T10:30:15.123Z',
      'took 1234 ms',
      'GET /api/v1/transactions?start_date=2024-01-01&end_date=2024-12-31',
    ]) {
      expect(scrubText(s)).toBe(s);
    }
  });
  it('its cheap precheck never lets through what the full scrub would change (random texts)', () => {
    // Pieces that make or almost make each pattern, joined at random: emails, bearer and basic
    // credentials, JWTs, Plaid tokens, URL passwords, digit runs with and without separators.
    const pieces = [
      'a', 'Z', '0', '1', '9', '12345678', '1234 5678', '1234-5678-9012', '2026-11-29', '-', ' ', '\t', '\n', '@', '.', '_', '/', ':',
      'jane.doe', 'example.com', 'Bearer', 'basic', 'eyJ', 'eyJhbGciOi', '.eyJzdWIi', 'access-', 'sandbox', '-sandbox-', 'PRODUCTION',
      '-development-', '0b6c1d2e-aaaa-bbbb-cccc-0123456789ab', 'https://', 'user:pw@', 'route=/api/v1/transactions/:id', 'request_completed',
    ];
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let checked = 0;
    let sensitive = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = Array.from({ length: 1 + random(8) }, () => pieces[random(pieces.length)]!).join('');
      const full = scrubTextFully(text);
      expect(scrubText(text), text).toBe(full);
      checked++;
      if (full !== text) sensitive++;
    }
    expect(checked).toBe(20_000);
    // The corpus exercises both sides of the precheck.
    expect(sensitive).toBeGreaterThan(1_000);
    expect(checked - sensitive).toBeGreaterThan(2_000);
  });

  it('its precheck never skips a key=value secret either (random texts)', () => {
    // Secret words and near misses, separators, quotes (plain and JSON-escaped), value ends and
    // other text, joined at random, with and without whitespace around the separator.
    const pieces = [
      'password', 'PASSWORD', 'Passwd', 'pwd', 'pass', 'secret', 'client_secret', 'token', 'tokens', 'access_token', 'refresh_token',
      'api_key', 'API-KEY', 'x-api-key', 'apikey', 'Authorization', 'Bearer', 'Basic', '=', '=', ':', ':', '"', "'", '\\"', '\\', '&', ',',
      ';', '}', ')', '>', ' ', '\t', 'a', 'hunter2', 'x y', '[REDACTED]', '?', '/cb', '_', '-',
    ];
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    let sensitive = 0;
    let compact = 0;
    let unchanged = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = Array.from({ length: 1 + random(6) }, () => pieces[random(pieces.length)]!).join('');
      const full = scrubTextFully(text);
      expect(scrubText(text), text).toBe(full);
      if (full === text) unchanged++;
      else {
        sensitive++;
        // caught by the precheck's secret-word branch alone (no whitespace to trip it)
        if (!/\s/.test(text)) compact++;
      }
    }
    expect(sensitive).toBeGreaterThan(500);
    expect(compact).toBeGreaterThan(200);
    expect(unchanged).toBeGreaterThan(2_000);
  });
});

describe('scrub', () => {
  it('redacts by key at any depth and masks personal data by key', () => {
    const out = scrub({
      password: 'x',
      user: { email: 'jane.doe@example.com', account_number: 123456789012, iban: 'DE89370400440532013000' },
      list: [{ token: 't' }, 'jane.doe@example.com'],
      n: 3,
      ok: true,
      none: null,
    });
    expect(out).toEqual({
      password: REDACTED,
      user: { email: 'j***@example.com', account_number: '********9012', iban: '****************3000' },
      list: [{ token: REDACTED }, 'j***@example.com'],
      n: 3,
      ok: true,
      none: null,
    });
  });

  it('does not change its input', () => {
    const input = { password: 'x', nested: { email: 'jane.doe@example.com' } };
    scrub(input);
    expect(input).toEqual({ password: 'x', nested: { email: 'jane.doe@example.com' } });
  });

  it('turns an error into a plain object with its message, stack, properties and cause scrubbed', () => {
    const err = Object.assign(new TypeError('bad input from jane.doe@example.com', { cause: new Error('card 4111111111111111') }), {
      code: 'E_BAD',
      api_key: 'k',
    });
    const out = scrub(err) as Record<string, unknown>;
    expect(out.type).toBe('TypeError');
    expect(out.message).toBe('bad input from j***@example.com');
    expect(out.stack).toContain('TypeError: bad input from j***@example.com');
    expect(out.stack).not.toContain('jane.doe');
    expect(out.code).toBe('E_BAD');
    expect(out.api_key).toBe(REDACTED);
    expect((out.cause as Record<string, unknown>).message).toBe('card ************1111');
  });

  it('survives cycles and bounds depth', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    expect(scrub(a)).toEqual({ name: 'a', self: '[Truncated]' });
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) deep = { next: deep };
    expect(JSON.stringify(scrub(deep))).toContain('[Truncated]');
  });
});
