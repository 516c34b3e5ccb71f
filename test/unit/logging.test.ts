import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger, formatTextLine, getLogger, type Logger } from '../../src/observability/logging.ts';
import { scrubText } from '../../src/observability/redact.ts';

function capture(format: 'json' | 'text', level = 'info', file?: string): { log: Logger; lines: () => string[] } {
  const lines: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  return { log: createLogger({ level, format, file, destination: sink }), lines: () => lines };
}

const last = (lines: string[]) => JSON.parse(lines.at(-1)!) as Record<string, unknown>;

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const TEXT_LINE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+ [A-Z]+ \S/;

/** Every secret-bearing field the service might log, at the top level and nested. */
const SECRETS = {
  password: 'pw-hunter2-value',
  new_password: 'pw-new-value',
  token: 'tok-plain-value',
  access_token: 'tok-access-value',
  refresh_token: 'tok-refresh-value',
  authorization: 'Bearer tok-header-value',
  cookie: 'session=tok-cookie-value',
  api_key: 'key-api-value',
  apiKey: 'key-camel-value',
  'x-api-key': 'key-header-value',
  client_secret: 'key-client-secret',
};
const SECRET_VALUES = ['hunter2', 'pw-new', 'tok-', 'key-'];

describe('JSON format', () => {
  it('writes the guide shape: ISO UTC timestamp, lowercase level, event, logger, then the context', () => {
    const { log, lines } = capture('json');
    getLogger(log, 'api.auth').info({ user_id: 123, ip: '127.0.0.1' }, 'user_login');
    const rec = last(lines());
    expect(rec).toEqual({ level: 'info', timestamp: expect.stringMatching(ISO_UTC), logger: 'api.auth', user_id: 123, ip: '127.0.0.1', event: 'user_login' });
    expect(Math.abs(Date.parse(rec.timestamp as string) - Date.now())).toBeLessThan(60_000);
  });

  it('names each level with its lowercase word and honours the threshold', () => {
    const { log, lines } = capture('json', 'debug');
    log.trace('t');
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    log.fatal('f');
    expect(lines().map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(['debug', 'info', 'warn', 'error', 'fatal']);

    const quiet = capture('json', 'warn');
    quiet.log.info('hidden');
    quiet.log.warn('shown');
    expect(quiet.lines().map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(['shown']);
  });

  it('carries exactly one logger name when a named logger is renamed', () => {
    const { log, lines } = capture('json');
    const request = getLogger(log, 'http').child({ request_id: 'req-1' });
    getLogger(request, 'api.accounts').info('account_created');
    const line = lines().at(-1)!;
    expect(line.match(/"logger":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ logger: 'api.accounts', request_id: 'req-1' });
  });
});

describe('text format', () => {
  it('writes the guide line: date time logger LEVEL event key=value …', () => {
    const { log, lines } = capture('text');
    getLogger(log, 'app.api.v1.auth').info({ user_id: 123, email: 'user@example.com' }, 'user_login');
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} app\.api\.v1\.auth INFO user_login user_id=123 email=u\*\*\*@example\.com$/);
  });

  it('prints the time in UTC, like the JSON timestamp', () => {
    const line = formatTextLine(JSON.stringify({ level: 'warn', timestamp: '2024-02-17T10:30:15.123Z', logger: 'x', event: 'e' }));
    expect(line).toBe('2024-02-17 10:30:15 x WARN e\n');
  });

  it('quotes values that would otherwise be ambiguous and keeps each event on one line', () => {
    const line = formatTextLine(
      JSON.stringify({ level: 'info', timestamp: '2024-02-17T10:30:15.123Z', logger: 'x', event: 'two\nlines', note: 'a b', eq: 'k=v', n: 1, o: { a: 1 } }),
    );
    expect(line).toBe('2024-02-17 10:30:15 x INFO two\\nlines note="a b" eq="k=v" n=1 o={"a":1}\n');
  });

  it('escapes control characters JSON-style in the event, the logger name, keys and values', () => {
    const { log, lines } = capture('text');
    const nasty = 'a\x00b\x07c\bd\x1b[31me\x7ff\x85g\x9bh\u2028i\u2029j\rk\nl\tm\ud800n\udc00o';
    getLogger(log, 'mod\x1b]0;x\x07').warn({ value: nasty, [`k\ney`]: 1, nested: { inner: nasty }, emoji: 'ok 😀' }, `ev\x1b[2Jent\r\n${nasty}`);
    expect(lines()).toHaveLength(1);
    const line = lines()[0]!;
    expect(line).not.toMatch(RAW_CONTROL);
    const escaped = 'a\\u0000b\\u0007c\\bd\\u001b[31me\\u007ff\\u0085g\\u009bh\\u2028i\\u2029j\\rk\\nl\\tm\\ud800n\\udc00o';
    expect(line).toContain(` mod\\u001b]0;x\\u0007 WARN ev\\u001b[2Jent\\r\\n${escaped} `);
    expect(line).toContain(` value="${escaped}"`);
    expect(line).toContain(' k\\ney=1');
    expect(line).toContain(`"inner":"${escaped}"`);
    expect(line).toContain('emoji="ok 😀"');
  });

  it('quotes a value holding a backslash, so an escape in the line always means a control character', () => {
    const line = formatTextLine(JSON.stringify({ level: 'info', timestamp: '2024-02-17T10:30:15.123Z', logger: 'x', event: 'e', p: 'a\\u0007', q: '' }));
    expect(line).toBe('2024-02-17 10:30:15 x INFO e p="a\\\\u0007" q=\n');
  });
});

/** Any character the text format must never write raw (lone surrogates included). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A seeded PRNG (same strings each run): a failure names the string that caused it. */
function randomStrings(count: number, seed: number): string[] {
  let s = seed;
  const random = (n: number) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  const special = [
    ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), '\x7f',
    ...Array.from({ length: 32 }, (_, i) => String.fromCharCode(0x80 + i)), '\u2028', '\u2029',
    '\ud800', '\udbff', '\udc00', '\udfff', '😀', '"', '\\', '=', ' ', '{', '}', '[', ']', ':', ',', 'é', '\ufeff', '\ufffd',
  ];
  return Array.from({ length: count }, () => {
    let out = '';
    for (let n = random(24); n > 0; n--) {
      const pick = random(4);
      out += pick === 0 ? special[random(special.length)] : pick === 1 ? String.fromCharCode(random(0x10000)) : String.fromCharCode(0x20 + random(95));
    }
    return out;
  });
}

describe.each(['json', 'text'] as const)('random strings in every field (%s)', (format) => {
  it('2,000 events: one line each, and it parses back (json) or holds no raw control character (text)', () => {
    const { log, lines } = capture(format);
    const strings = randomStrings(8_000, format === 'json' ? 11 : 12);
    const events = 2_000;
    for (let i = 0; i < events; i++) {
      const [a, b, c, d] = strings.slice(i * 4, i * 4 + 4) as [string, string, string, string];
      getLogger(log, `mod.${c}`).child({ bound: d }).info({ webhook_type: a, webhook_code: b, nested: { list: [a, c] }, [`k${d}`]: c, n: i }, b);
    }
    expect(lines()).toHaveLength(events);
    lines().forEach((line, i) => {
      expect(line, line).not.toMatch(RAW_CONTROL);
      if (format === 'json') {
        const rec = JSON.parse(line) as Record<string, unknown>;
        const [a, b] = strings.slice(i * 4, i * 4 + 2) as [string, string];
        // exactly what was logged comes back (after the scrubber, which may mask part of it)
        expect(rec).toMatchObject({ level: 'info', n: i, webhook_type: scrubText(a), webhook_code: scrubText(b), event: scrubText(b) });
      } else {
        expect(line, line).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} mod\./);
        expect(line.endsWith(` n=${i}`), line).toBe(true);
      }
    });
  });
});

describe.each(['json', 'text'] as const)('secrets and personal data (%s)', (format) => {
  /** No secret and no personal datum in the lines, which must hold the event(s) logged. */
  const check = (lines: string[], ...events: string[]) => {
    expect(events.length).toBeGreaterThan(0);
    expect(lines).toHaveLength(events.length);
    const all = lines.join('\n');
    for (const event of events) expect(all).toContain(event);
    for (const v of SECRET_VALUES) expect(all).not.toContain(v);
    expect(all).not.toContain('jane.doe@example.com');
    expect(all).not.toContain('123456789012');
    return all;
  };

  it('redacts secret fields at the top level, nested and in arrays', () => {
    const { log, lines } = capture(format);
    log.info({ ...SECRETS, request: { headers: { ...SECRETS }, body: [{ ...SECRETS }] } }, 'request_received');
    const all = check(lines(), 'request_received');
    expect(all).toContain('[REDACTED]');
    if (format === 'json') {
      const rec = last(lines()) as { request: { headers: Record<string, unknown> } };
      for (const key of Object.keys(SECRETS)) expect(rec.request.headers[key]).toBe('[REDACTED]');
    }
  });

  it('masks emails and account numbers in fields, nested objects and free text', () => {
    const { log, lines } = capture(format);
    log.info(
      {
        email: 'jane.doe@example.com',
        account_number: '123456789012',
        profile: { contact_email: 'jane.doe@example.com', routing_number: 987654321 },
        note: 'wire from 1234 5678 9012 to jane.doe@example.com',
        user_id: '123e4567-e89b-12d3-a456-426614174000',
        date: '2024-02-17',
      },
      'profile_viewed',
    );
    const all = check(lines(), 'profile_viewed');
    expect(all).toContain('j***@example.com');
    expect(all).toContain('********9012');
    // identifiers and dates are not account numbers
    expect(all).toContain('123e4567-e89b-12d3-a456-426614174000');
    expect(all).toContain('2024-02-17');
  });

  it('scrubs error objects: message, stack and extra properties, logged as a field or on their own', () => {
    const { log, lines } = capture(format);
    const err = Object.assign(new Error('login failed for jane.doe@example.com, card 123456789012'), {
      password: 'pw-hunter2-value',
      email: 'jane.doe@example.com',
    });
    log.error({ error: err }, 'request_failed');
    log.error(err);
    log.error({ error: new Error('nested', { cause: new Error('cause for jane.doe@example.com') }) }, 'with_cause');
    const all = lines().join('\n');
    expect(all).not.toContain('jane.doe@example.com');
    expect(all).not.toContain('123456789012');
    expect(all).toContain('login failed for j***@example.com');
    if (format === 'json') {
      const [first, second] = lines().map((l) => JSON.parse(l) as { event: string; error: { message: string; stack: string; password: string } });
      expect(first!.error.stack).toContain('login failed for j***@example.com');
      expect(first!.error.password).toBe('[REDACTED]');
      // An error logged without a message becomes the event: scrubbed too.
      expect(second!.event).toContain('j***@example.com');
    }
  });

  it('scrubs messages built from user input and the bindings of child loggers', () => {
    const { log, lines } = capture(format);
    log.info('login attempt by jane.doe@example.com');
    log.info('format %s', 'jane.doe@example.com');
    const child = log.child({ email: 'jane.doe@example.com', refresh_token: 'tok-child-value' });
    child.info('child_event');
    getLogger(child, 'api.deeper').info('grandchild_event');
    const all = check(lines(), 'login attempt by j***@example.com', 'format j***@example.com', 'child_event', 'grandchild_event');
    expect(all.match(/j\*\*\*@example\.com/g)!.length).toBeGreaterThanOrEqual(4);
  });

  it('keeps Bearer credentials out of free text', () => {
    const { log, lines } = capture(format);
    log.warn({ header: 'Authorization: Bearer tok-in-text-value' }, 'odd_header');
    const all = check(lines(), 'odd_header');
    // the header is still logged, its credential replaced
    expect(all).toContain('Authorization: Bearer [REDACTED]');
  });
});

describe('LOG_FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nest-egg-logfile-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes JSON lines to the file in addition to stdout (which keeps its own format)', async () => {
    const file = join(dir, 'nested', 'api.log');
    const { log, lines } = capture('text', 'info', file);
    getLogger(log, 'api.auth').info({ user_id: 7, email: 'jane.doe@example.com', password: 'pw-hunter2-value' }, 'user_login');
    getLogger(log, 'api.auth').warn({ user_id: 7 }, 'login_failed');
    expect(lines()).toHaveLength(2);
    expect(lines()[0]).toMatch(TEXT_LINE);

    // The file sink writes asynchronously: wait for both lines.
    let content = '';
    for (let i = 0; i < 200 && content.split('\n').filter(Boolean).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
      content = existsSync(file) ? readFileSync(file, 'utf8') : '';
    }
    const records = content.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toEqual([
      { level: 'info', timestamp: expect.stringMatching(ISO_UTC), logger: 'api.auth', user_id: 7, email: 'j***@example.com', password: '[REDACTED]', event: 'user_login' },
      { level: 'warn', timestamp: expect.stringMatching(ISO_UTC), logger: 'api.auth', user_id: 7, event: 'login_failed' },
    ]);
  });
});
