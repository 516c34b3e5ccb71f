import { describe, expect, it } from 'vitest';
import {
  isSecretKey, maskDigits, maskEmail, MAYBE_SENSITIVE, REDACTED, scrub, scrubErrorMessage, scrubQueryString, scrubText, scrubTextFully, scrubUrl,
} from '../../src/observability/redact.ts';

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
    // Four digits or fewer: nothing is kept.
    expect(maskDigits('1234')).toBe('****');
    expect(maskDigits('12345')).toBe('*2345');
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

/**
 * Each scrubbing rule on its own: what it must catch, what it must leave alone, and its edges
 * (the cases a one-character change to its pattern would get wrong).
 */
describe('each rule, its matches and its near misses', () => {
  const unchanged = (texts: string[]) => {
    expect(texts.length).toBeGreaterThan(0);
    for (const t of texts) expect(scrubText(t), t).toBe(t);
  };
  const becomes = (cases: [string, string][]) => {
    expect(cases.length).toBeGreaterThan(0);
    for (const [text, want] of cases) expect(scrubText(text), text).toBe(want);
  };

  it('secret keys: every word of the list, with and without its separator; only an exact jwt', () => {
    for (const key of ['pass', 'passphrase', 'PASS', 'password', 'secret', 'TOKEN', 'authorization', 'Cookie', 'api-key', 'api_key', 'apikey', 'credential', 'private-key', 'private_key', 'privatekey', 'jwt', 'JWT', 'session']) {
      expect(isSecretKey(key), key).toBe(true);
    }
    for (const key of ['jwt_issuer', 'my_jwt', 'api.key', 'private.key', 'priv_key', 'sess', 'credit', 'author', 'apis_key']) {
      expect(isSecretKey(key), key).toBe(false);
    }
  });

  it('email keys: email, e-mail and *_email are masked whatever the value; others are free text', () => {
    for (const key of ['email', 'Email', 'EMAIL', 'e-mail', 'E-Mail', 'user_email', 'contact_EMAIL']) {
      expect(scrub({ [key]: 'nobody' }), key).toEqual({ [key]: '***' });
    }
    for (const key of ['emails', 'email_verified', 'eemail', 'my-email', 'useremail', 'e--mail', 'x_emails']) {
      expect(scrub({ [key]: 'nobody' }), key).toEqual({ [key]: 'nobody' });
    }
    // Only a string is masked by its key.
    expect(scrub({ email: 5, user_email: true })).toEqual({ email: 5, user_email: true });
  });

  it('account-number keys: the digits are masked, a string or a number; other keys and types are left', () => {
    for (const key of ['account_number', 'account-number', 'accountnumber', 'AccountNumber', 'iban', 'IBAN', 'routing_number', 'routing-number', 'routingNumber']) {
      expect(scrub({ [key]: '12345' }), key).toEqual({ [key]: '*2345' });
      expect(scrub({ [key]: 12345 }), key).toEqual({ [key]: '*2345' });
    }
    for (const key of ['iban_country', 'my_iban', 'account_name', 'account__number', 'routing.number', 'account_num']) {
      expect(scrub({ [key]: '12345' }), key).toEqual({ [key]: '12345' });
    }
    expect(scrub({ account_number: true, iban: { bank: 'x' } })).toEqual({ account_number: true, iban: { bank: 'x' } });
  });

  it('url keys: the path is decoded and scrubbed, each query parameter judged by its name', () => {
    const url = '/users/jane%40example.com?email=nobody&password=x&q=1';
    const want = '/users/j***@example.com?email=***&password=[REDACTED]&q=1';
    for (const key of ['url', 'URL', 'uri', 'href', 'path', 'url.full', 'url.path', 'http.url', 'http.target']) {
      expect(scrub({ [key]: url }), key).toEqual({ [key]: want });
    }
    // Without a query string: the path alone.
    expect(scrub({ url: '/users/jane%40example.com' })).toEqual({ url: '/users/j***@example.com' });
    // Other keys: free text (an encoded address is not an address, and the email parameter's value is not one either).
    for (const key of ['urls', 'xurl', 'url_full', 'url.fullx', 'http_url', 'http.target2', 'paths', 'url.pathname', 'target']) {
      expect(scrub({ [key]: url }), key).toEqual({ [key]: '/users/jane%40example.com?email=nobody&password=[REDACTED]&q=1' });
    }
    expect(scrub({ url: 5 })).toEqual({ url: 5 });
  });

  it('query keys: a bare query string (a leading ? dropped), each parameter judged by its name', () => {
    for (const key of ['url.query', 'http.query', 'query_string', 'querystring', 'QueryString']) {
      expect(scrub({ [key]: '?email=nobody&password=x&q=1' }), key).toEqual({ [key]: 'email=***&password=[REDACTED]&q=1' });
    }
    // Only a leading ? goes.
    expect(scrub({ querystring: 'q=what?' })).toEqual({ querystring: 'q=what?' });
    for (const key of ['query', 'url_query', 'query__string', 'query_strings', 'my_querystring']) {
      expect(scrub({ [key]: '?email=nobody&password=x&q=1' }), key).toEqual({ [key]: '?email=nobody&password=[REDACTED]&q=1' });
    }
    expect(scrub({ querystring: 7 })).toEqual({ querystring: 7 });
  });

  it('query strings: keys and bare values scrubbed too; undecodable components kept as they are', () => {
    expect(scrub({ querystring: 'jane%40example.com&to=bob%40example.com&name=a+b' })).toEqual({ querystring: 'j***@example.com&to=b***@example.com&name=a b' });
    expect(scrub({ querystring: 'q=100%&p=%E0%A4%A' })).toEqual({ querystring: 'q=100%&p=%E0%A4%A' });
    expect(scrub({ querystring: 'token=&x=1' })).toEqual({ querystring: 'token=[REDACTED]&x=1' });
  });

  it('emails: any local part, subdomains, a two-letter TLD at least', () => {
    becomes([
      ['x@example.com', 'x***@example.com'],
      ['user.name+tag%x_y-z@example.com', 'u***@example.com'],
      ['.x@example.com', '.***@example.com'],
      ['_x@example.com', '_***@example.com'],
      ['%x@example.com', '%***@example.com'],
      ['+x@example.com', '+***@example.com'],
      ['-x@example.com', '-***@example.com'],
      ['Jane@Mail-2.Example.COM', 'J***@Mail-2.Example.COM'],
      ['to: a@b.co, c@d.io', 'to: a***@b.co, c***@d.io'],
      ['a@b.c.de', 'a***@b.c.de'],
    ]);
    unchanged(['jane@localhost', 'jane@example.c', 'jane@example.123', '@example.com', 'a @example.com']);
  });

  it('long digit runs: eight digits or more, one space or dash between them at most, standing alone', () => {
    becomes([
      ['12345678', '****5678'],
      ['1234 5678', '****5678'],
      ['1234-5678', '****5678'],
      ['1 2 3 4 5 6 7 8', '****5678'],
      ['(12345678)', '(****5678)'],
      ['12345678.', '****5678.'],
      ['n=12345678', 'n=****5678'],
      ['2024-0217', '****0217'],
      ['2024 02 17', '****0217'],
      ['2024-02-17-1', '*****2171'],
      ['12024-02-17', '*****0217'],
      ['2024-02-170', '*****2170'],
    ]);
    unchanged(['1234567', '1234  5678', '1234--5678', 'a12345678', '-12345678', '_12345678', '12345678a', '12345678-', '12345678_', '2024-02-17', 'on 2024-02-17, ok']);
  });

  it('bearer and basic credentials: the whole token, any whitespace after the scheme, any case', () => {
    becomes([
      ['Bearer abc.DEF_ghi~jkl+mno/pqr=-z', `Bearer ${REDACTED}`],
      ['Bearer\tabc', `Bearer ${REDACTED}`],
      ['Bearer   abc rest', `Bearer ${REDACTED} rest`],
      ['BEARER abc', `BEARER ${REDACTED}`],
      ['basic abc', `basic ${REDACTED}`],
      ['(Basic abc)', `(Basic ${REDACTED})`],
    ]);
    unchanged(['xBearer abc', 'Bearerabc', 'Bearer', 'Bearer [x]', 'Basics of it']);
  });

  it('JWTs: three dot-separated base64url parts starting eyJ, the last may be empty', () => {
    becomes([
      ['got eyJabcd.efgh.ijkl here', `got ${REDACTED} here`],
      ['eyJa_b-c.d_e-f.g_h-i', REDACTED],
      ['eyJabcd.efgh.', REDACTED],
      ['(eyJabcd.efgh.ijkl)', `(${REDACTED})`],
    ]);
    unchanged(['eyJabc.efgh.ijkl', 'eyJabcd.efg.ijkl', 'eyJabcd.efgh', 'xeyJabcd.efgh.ijkl', 'EYJabcd.efgh.ijkl', 'eyJab!d.efgh.ijkl']);
  });

  it('Plaid tokens: each kind and environment, any case, a whole UUID', () => {
    const uuid = 'abcdefab-abcd-abcd-abcd-abcdefabcdef';
    for (const kind of ['access', 'public', 'link', 'processor']) {
      for (const env of ['sandbox', 'development', 'production']) {
        expect(scrubText(`t ${kind}-${env}-${uuid} x`), `${kind}-${env}`).toBe(`t ${REDACTED} x`);
      }
    }
    becomes([
      [`ACCESS-SANDBOX-${uuid.toUpperCase()}`, REDACTED],
      [`(link-production-${uuid})`, `(${REDACTED})`],
    ]);
    unchanged([
      `item-sandbox-${uuid}`,
      `xaccess-sandbox-${uuid}`,
      `access-staging-${uuid}`,
      `access-sandbox-${uuid}f`,
      `access-sandbox-${uuid.slice(1)}`,
      'access-sandbox-abcdefab-abcd-abcd-abcd-abcdefabcde',
      'access-sandbox-abcdefab-abcd-abcd-abcdefabcdef',
      'access-sandbox-abcdefag-abcd-abcd-abcd-abcdefabcdef',
    ]);
  });

  it('URL credentials: user and password (or a password alone) go, the scheme and host stay', () => {
    becomes([
      ['postgres://user:pass@db/app', `postgres://${REDACTED}@db/app`],
      ['postgresql+psycopg://u:p@h', `postgresql+psycopg://${REDACTED}@h`],
      ['REDIS=redis://:s3cret@redis:6379', `REDIS=redis://${REDACTED}@redis:6379`],
      ['x_postgres://u:p@h', `x_postgres://${REDACTED}@h`],
      ['amqp://u:a:b@h', `amqp://${REDACTED}@h`],
      ['HTTPS://U:P@H', `HTTPS://${REDACTED}@H`],
      ['a://u:@h and b://v:w@h', `a://${REDACTED}@h and b://${REDACTED}@h`],
    ]);
    unchanged(['postgres://db/app', 'postgres://user@db', 'https://host:8080/a@b', 'https://h/u:p@x', '1://u:p@h', 'postgres:/u:p@h', 'postgres://u p:x@h', 'x!://u:p@h']);
  });

  it('key=value secrets: each key word, separators, quotes and the characters that end a bare value', () => {
    becomes([
      ['passwd=x', 'passwd=[REDACTED]'],
      ['pwd=x', 'pwd=[REDACTED]'],
      ['apikey=x', 'apikey=[REDACTED]'],
      ['api-key=x', 'api-key=[REDACTED]'],
      ['Token=x', 'Token=[REDACTED]'],
      ['password:x', 'password:[REDACTED]'],
      ['password\t=\tx', 'password\t=\t[REDACTED]'],
      ["'password':'x'", "'password':[REDACTED]"],
      ['"password": "x y"', '"password": [REDACTED]'],
      ['authorization: Basic abc', 'authorization: Basic [REDACTED]'],
      ['authorization: Bearer\tabc', 'authorization: Bearer\t[REDACTED]'],
      ['authorization: Bearer  abc', 'authorization: Bearer  [REDACTED]'],
      ['authorization: Bearerabc', 'authorization: [REDACTED]'],
      ['raw \\"token\\":\\"a\\nb\\" end', 'raw \\"token\\":[REDACTED] end'],
      ["password='a b", 'password=[REDACTED]'],
      ['password=ab c', 'password=[REDACTED] c'],
      ['password=ab&c', 'password=[REDACTED]&c'],
      ['password=ab,c', 'password=[REDACTED],c'],
      ['password=ab;c', 'password=[REDACTED];c'],
      ['password=ab)c', 'password=[REDACTED])c'],
      ['password=ab}c', 'password=[REDACTED]}c'],
      ['password=ab>c', 'password=[REDACTED]>c'],
      ['password=ab"c', 'password=[REDACTED]"c'],
      ["password=ab'c", "password=[REDACTED]'c"],
      ['password=ab\nc', 'password=[REDACTED]\nc'],
      ['token="a\\\\" rest', 'token=[REDACTED] rest'],
    ]);
    unchanged(['pass=x', 'passwrd=x', 'tokens=5', 'api__key=x', 'password', 'password =', 'password - x']);
  });

  it('the precheck lets the common strings of a log line through untouched and catches each kind of secret', () => {
    for (const s of ['request_completed', '/api/v1/transactions/:id', 'GET', 'abcdefab-abcd-abcd-abcd-abcdefabcdef', '1234567', '10:30:15.123Z', 'token_refreshed', 'password_changed', 'sandbox', '-sandbox', 'ey']) {
      expect(MAYBE_SENSITIVE.test(s), s).toBe(false);
    }
    for (const s of ['a@b', 'a b', 'a\tb', 'eyJ', 'EYJ', 'x-sandbox-y', '-development-', '-PRODUCTION-', '12345678', '1234 5678', '1234-5678', 'password=', 'passwd:', 'pwd=', 'secret=', 'token:', 'api_key=', 'apikey=', 'authorization:', 'token"=', "token'=", 'token\\"=']) {
      expect(MAYBE_SENSITIVE.test(s), s).toBe(true);
    }
  });
});

describe('scrubUrl, scrubQueryString and scrubErrorMessage', () => {
  it('scrubUrl: credentials and emails in the path, parameters by name', () => {
    expect(scrubUrl('https://u:p@host/users/jane%40example.com?api_key=k&page=2')).toBe(`https://${REDACTED}@host/users/j***@example.com?api_key=${REDACTED}&page=2`);
    expect(scrubUrl('/plain/path')).toBe('/plain/path');
    expect(scrubUrl('/p?')).toBe('/p?');
  });

  it('scrubQueryString: a parameter without a value is scrubbed as text', () => {
    expect(scrubQueryString('jane%40example.com&flag&session=abc')).toBe(`j***@example.com&flag&session=${REDACTED}`);
  });

  it('scrubErrorMessage: drizzle params are cut up to the stack, the rest is scrubbed', () => {
    expect(scrubErrorMessage('Failed query: insert into users\nparams: jane@example.com,hash')).toBe(`Failed query: insert into users\nparams: ${REDACTED}`);
    expect(scrubErrorMessage('Failed query: x\nparams: a,b\n    at f (file.ts:1:1)')).toBe(`Failed query: x\nparams: ${REDACTED}\n    at f (file.ts:1:1)`);
    expect(scrubErrorMessage('no params here, jane@example.com')).toBe('no params here, j***@example.com');
    expect(scrubErrorMessage('Failed query: x\nparams: Jane Doe,a hash')).toBe(`Failed query: x\nparams: ${REDACTED}`);
    expect(scrubErrorMessage('params: at start')).toBe('params: at start');
  });
});

describe('scrub of errors and structures, the edges', () => {
  it('a drizzle query error loses its bound values in message, stack and params; other errors keep a params property', () => {
    const err = Object.assign(new Error('Failed query: select 1\nparams: secret-value,42'), { query: 'select 1', params: ['secret-value', 42] });
    const out = scrub(err) as Record<string, unknown>;
    expect(out.message).toBe(`Failed query: select 1\nparams: ${REDACTED}`);
    expect(out.stack).toContain(`params: ${REDACTED}`);
    expect(out.stack).not.toContain('secret-value');
    expect(out.stack).toContain('    at ');
    expect(out.params).toBe(REDACTED);
    expect(out.query).toBe('select 1');
    const plain = Object.assign(new Error('x\nparams: kept'), { params: ['kept'] });
    const p = scrub(plain) as Record<string, unknown>;
    expect(p.params).toEqual(['kept']);
    expect(p.message).toBe('x\nparams: kept');
  });

  it('an error without a stack or a cause has none in its copy', () => {
    const err = new RangeError('r');
    err.stack = undefined;
    const out = scrub(err) as Record<string, unknown>;
    expect(out).toEqual({ type: 'RangeError', message: 'r', stack: undefined });
    expect(out).not.toHaveProperty('cause');
    expect(Object.keys(out)).toEqual(['type', 'message', 'stack']);
  });

  it('an error with a cause of undefined shows none; a falsy cause is kept', () => {
    expect(scrub(new Error('a', { cause: undefined }))).not.toHaveProperty('cause');
    expect((scrub(new Error('a', { cause: 0 })) as Record<string, unknown>).cause).toBe(0);
    expect((scrub(new Error('a', { cause: 'jane.doe@example.com' })) as Record<string, unknown>).cause).toBe('j***@example.com');
  });

  it('keeps null and undefined values as they are, under any key', () => {
    expect(scrub({ password: null, email: undefined, status: null })).toEqual({ password: null, email: undefined, status: null });
    expect(Object.keys(scrub({ password: undefined }) as object)).toEqual(['password']);
    expect((scrub({ password: undefined }) as { password: unknown }).password).toBeUndefined();
  });

  it('primitives pass through; only strings are scrubbed', () => {
    expect(scrub(12345678901)).toBe(12345678901);
    expect(scrub(true)).toBe(true);
    expect(scrub(undefined)).toBeUndefined();
    expect(scrub(null)).toBeNull();
    expect(scrub('jane.doe@example.com')).toBe('j***@example.com');
  });

  it('bounds depth at 8 levels below the top, exactly', () => {
    const nest = (levels: number): unknown => (levels === 0 ? 'leaf' : { n: nest(levels - 1) });
    // depth 0 is the top object; each nested value is one deeper.
    const path = (v: unknown, n: number) => {
      let x = v;
      for (let i = 0; i < n; i++) x = (x as { n: unknown }).n;
      return x;
    };
    expect(path(scrub(nest(9)), 9)).toBe('leaf');
    expect(path(scrub(nest(10)), 9)).toBe('[Truncated]');
    const arr = (levels: number): unknown => (levels === 0 ? 'leaf' : [arr(levels - 1)]);
    expect(JSON.stringify(scrub(arr(9)))).toContain('leaf');
    expect(JSON.stringify(scrub(arr(10)))).toContain('[Truncated]');
    // Under keys with a rule of their own (a url holding an object) too.
    const under = (key: string, levels: number): unknown => (levels === 0 ? 'leaf' : { [key]: under(key, levels - 1) });
    expect(JSON.stringify(scrub(under('url', 12)))).toContain('[Truncated]');
    expect(JSON.stringify(scrub(under('url', 9)))).toContain('leaf');
  });

  it('the same object twice (not a cycle) is shown once, then truncated', () => {
    const shared = { a: 1 };
    expect(scrub({ x: shared, y: shared })).toEqual({ x: { a: 1 }, y: '[Truncated]' });
  });

  it('a chain of causes is bounded by depth like any nesting', () => {
    let err = new Error('root');
    for (let i = 0; i < 12; i++) err = new Error(`wrap ${i}`, { cause: err });
    const messages: unknown[] = [];
    for (let e = scrub(err); typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) messages.push((e as { message: unknown }).message);
    expect(messages[0]).toBe('wrap 11');
    expect(messages).toHaveLength(9);
    expect(JSON.stringify(scrub(err))).toContain('[Truncated]');
    expect(JSON.stringify(scrub(err))).not.toContain('root');
  });

  it('message, stack and cause made enumerable (Object.assign, class fields) are scrubbed once, the drizzle params still cut', () => {
    const inner = new Error('inner for jane.doe@example.com');
    const err = Object.assign(new Error('outer'), { cause: inner, query: 'select 1', params: ['p-secret'] });
    Object.defineProperty(err, 'message', { value: 'Failed query: select 1\nparams: p-secret', enumerable: true });
    Object.defineProperty(err, 'stack', { value: 'Error: Failed query: select 1\nparams: p-secret\n    at f (x.ts:1:1)', enumerable: true });
    expect(Object.keys(err)).toEqual(expect.arrayContaining(['cause', 'message', 'stack']));
    const out = scrub(err) as Record<string, unknown>;
    expect(out.message).toBe(`Failed query: select 1\nparams: ${REDACTED}`);
    expect(out.stack).toBe(`Error: Failed query: select 1\nparams: ${REDACTED}\n    at f (x.ts:1:1)`);
    expect((out.cause as Record<string, unknown>).message).toBe('inner for j***@example.com');
    expect(out.params).toBe(REDACTED);
  });

  it('an error with a query but no params, or params but no query, is not a drizzle query error', () => {
    const q = scrub(Object.assign(new Error('x\nparams: a'), { query: 'select 1' })) as Record<string, unknown>;
    expect(q.message).toBe('x\nparams: a');
    expect(q.query).toBe('select 1');
  });

  it('a nested error inside an object is scrubbed like one at the top', () => {
    const out = scrub({ err: new Error('for jane.doe@example.com') }) as { err: Record<string, unknown> };
    expect(out.err.message).toBe('for j***@example.com');
    expect(out.err.type).toBe('Error');
  });
});
