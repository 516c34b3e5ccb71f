/**
 * Sentry, end to end, with the real @sentry/node SDK sending real envelopes to a local receiver.
 *
 * The API runs as a child process started the way production starts it (`node bin/nest-egg.js
 * serve` with SENTRY_DSN), so the early start in bin/, the error handler, the log ↔ event link
 * and the flush on graceful shutdown are all the real code paths. The SDK is process-global and
 * instruments every HTTP server of its process, so it never runs in this test process: the
 * receiver here stays uninstrumented and sees exactly what left the API. A second short-lived
 * child reports a task's final failure the way the worker will.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/modules/auth/tokens.ts';
import { scrubBreadcrumb, scrubEvent } from '../../src/observability/sentry.ts';
import { startSentryReceiver, type SentryEvent, type SentryReceiver } from '../helpers/sentry-receiver.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RECEIVER_PORT = 18310;
const API_PORT = 18311;
const API = `http://127.0.0.1:${API_PORT}`;
const JWT_SECRET = 'sentry-integration-secret-at-least-32-characters';
const RELEASE = `nest-egg@sentry-it-${randomUUID().slice(0, 8)}`;
const TASK_RELEASE = `${RELEASE}-worker`;
const CONSOLE_ADMIN = { email: 'sentry-console@example.com', password: 'console admin password' };
const SENTRY_EVENT_URL = 'https://sentry.example.com/organizations/acme/issues/?query={event_id}';

// The personal data and secrets a request carries; none may appear in any envelope.
const EMAIL = 'jane.doe@example.com';
const PASSWORD = 'Hunter2-Correct-Horse';
const ACCOUNT = '40298716523';
const PLAID = 'access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6';
const COOKIE = 'cookie-secret-7f3a9';
const QUERY_TOKEN = 'qs-token-9d8e7c6b';
const NESTED_SECRET = 'nested-secret-5a4b3c';
const CLIENT_IP = '203.0.113.77';

interface Api {
  child: ChildProcessWithoutNullStreams;
  logs: Record<string, unknown>[];
  output: () => string;
  exited: Promise<number | null>;
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  // The test runner's own settings (a DATABASE_URL, REDIS_URL, …) must not leak into the child.
  return { ...process.env, DATABASE_URL: '', REDIS_URL: '', LOG_FILE: '', ...extra };
}

/** A platform admin in the data directory, made before the API opens it (the embedded database serves one process). */
function createAdmin(dataDir: string): void {
  execFileSync(process.execPath, ['bin/nest-egg.js', 'create-admin', '--email', CONSOLE_ADMIN.email, '--password', CONSOLE_ADMIN.password], {
    cwd: ROOT,
    env: childEnv({ DATA_DIR: dataDir, JWT_SECRET, LOG_LEVEL: 'warn', ENVIRONMENT: 'staging' }),
    stdio: 'ignore',
    timeout: 120_000,
  });
}

async function startApi(dsn: string, dataDir: string): Promise<Api> {
  const child = spawn(process.execPath, ['bin/nest-egg.js', 'serve'], {
    cwd: ROOT,
    env: childEnv({
      SENTRY_DSN: dsn,
      OPS_SENTRY_EVENT_URL: SENTRY_EVENT_URL,
      ENVIRONMENT: 'staging',
      RELEASE,
      SENTRY_TRACES_SAMPLE_RATE: '1.0',
      HOST: '127.0.0.1',
      PORT: String(API_PORT),
      DATA_DIR: dataDir,
      JWT_SECRET,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      RATE_LIMIT_ENABLED: 'false',
    }),
  });
  let out = '';
  const logs: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const api: Api = { child, logs, output: () => out, exited };
  const deadline = Date.now() + 170_000;
  while (!logs.some((l) => l.event === 'server_started')) {
    if (child.exitCode !== null) throw new Error(`the API exited during start-up:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the API did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return api;
}

/** Every form in which a secret could leave: as sent, URL-encoded, or a telling fragment. */
const FORBIDDEN = (token: string) => [
  EMAIL,
  encodeURIComponent(EMAIL),
  'jane.doe',
  PASSWORD,
  ACCOUNT,
  PLAID,
  PLAID.slice('access-sandbox-'.length),
  COOKIE,
  QUERY_TOKEN,
  NESTED_SECRET,
  CLIENT_IP,
  token,
  token.split('.')[2]!,
];

function leaks(bytes: string, token: string): string[] {
  return FORBIDDEN(token).filter((s) => bytes.includes(s));
}

const byRequestId = (id: string) => (e: SentryEvent) => e.tags?.request_id === id;

describe('Sentry error tracking and performance monitoring (real SDK, local receiver)', () => {
  let receiver: SentryReceiver;
  let api: Api;
  const userId = randomUUID();
  let token: string;

  let dataDir: string;

  beforeAll(async () => {
    receiver = await startSentryReceiver({ port: RECEIVER_PORT });
    token = await new TokenService(JWT_SECRET, 900).issueAccess(userId);
    dataDir = mkdtempSync(join(tmpdir(), 'nest-egg-sentry-'));
    createAdmin(dataDir);
    api = await startApi(receiver.dsn, dataDir);
  }, 240_000);

  afterAll(async () => {
    if (api && api.child.exitCode === null) {
      api.child.kill('SIGKILL');
      await api.exited;
    }
    await receiver?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  let testEvent: SentryEvent;

  it('POST /api/v1/dev/test-sentry yields an error event with environment, release, tags, user id, stack trace and a log breadcrumb', async () => {
    const res = await fetch(`${API}/api/v1/dev/test-sentry`, {
      method: 'POST',
      headers: { 'x-request-id': 'sentry-it-test-error', authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-request-id')).toBe('sentry-it-test-error');

    const [event] = await receiver.waitFor((i) => i.header.type === 'event' && byRequestId('sentry-it-test-error')(i.payload as SentryEvent));
    testEvent = event!;
    expect(testEvent).toMatchObject({
      level: 'error',
      environment: 'staging',
      release: RELEASE,
      tags: { request_id: 'sentry-it-test-error', endpoint: '/api/v1/dev/test-sentry' },
      transaction: 'POST /api/v1/dev/test-sentry',
    });
    // The user is the id and nothing else (no IP address, email or username).
    expect(testEvent.user).toEqual({ id: userId });

    const exception = (testEvent.exception as { values: { type: string; value: string; stacktrace: { frames: { filename: string; in_app: boolean }[] } }[] }).values.at(-1)!;
    expect(exception.type).toBe('SentryTestError');
    expect(exception.value).toContain('Sentry test error raised by POST /api/v1/dev/test-sentry');
    const appFrame = exception.stacktrace.frames.find((f) => f.in_app && f.filename.endsWith('src/routes/dev.ts'));
    expect(appFrame).toBeDefined();

    // The route's warning log line became a breadcrumb of this request's event.
    const breadcrumbs = testEvent.breadcrumbs as { category: string; level: string; message: string; data: Record<string, unknown> }[];
    expect(breadcrumbs).toContainEqual(
      expect.objectContaining({ category: 'log', level: 'warning', message: 'sentry_test_error_requested', data: expect.objectContaining({ request_id: 'sentry-it-test-error' }) }),
    );
  });

  it("the operator console's errors view shows that 5xx with the event's id and a link to it", async () => {
    const signIn = await fetch(`${API}/ops/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CONSOLE_ADMIN) });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const view = (await (await fetch(`${API}/ops/api/errors`, { headers: { cookie } })).json()) as { errors: Record<string, unknown>[] };
    const row = view.errors.find((e) => e.request_id === 'sentry-it-test-error');
    expect(row).toMatchObject({
      route: '/api/v1/dev/test-sentry',
      status: 500,
      sentry_event_id: testEvent.event_id,
      sentry_url: SENTRY_EVENT_URL.replace('{event_id}', String(testEvent.event_id)),
      trace_id: (testEvent.contexts as { trace: { trace_id: string } }).trace.trace_id,
    });
  });

  it("links the error's log line and the event both ways: sentry_event_id in the log, request_id on the event", () => {
    const line = api.logs.find((l) => l.event === 'unhandled_error' && l.request_id === 'sentry-it-test-error');
    expect(line).toBeDefined();
    expect(line!.sentry_event_id).toBe(testEvent.event_id);
    expect(testEvent.tags?.request_id).toBe(line!.request_id);
  });

  it('a request carrying a password, a bearer token, an email and an account number in headers, body and query leaves none of them in the raw envelopes', async () => {
    const query = new URLSearchParams({ email: EMAIL, password: PASSWORD, token: QUERY_TOKEN, account_number: ACCOUNT, note: `acct ${ACCOUNT}` });
    const res = await fetch(`${API}/api/v1/dev/test-sentry?${query.toString()}`, {
      method: 'POST',
      headers: {
        'x-request-id': 'sentry-it-pii',
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
        cookie: `session=${COOKIE}`,
        'x-password': PASSWORD,
        'x-user-email': EMAIL,
        'x-account-number': ACCOUNT,
        'x-plaid-access-token': PLAID,
        'x-forwarded-for': CLIENT_IP,
      },
      body: JSON.stringify({
        message: `contact ${EMAIL} about account ${ACCOUNT} (plaid ${PLAID}, bearer ${token})`,
        password: PASSWORD,
        access_token: PLAID,
        refresh_token: token,
        email: EMAIL,
        account_number: ACCOUNT,
        nested: { client_secret: NESTED_SECRET },
      }),
    });
    expect(res.status).toBe(500);

    const [event] = await receiver.waitFor((i) => i.header.type === 'event' && byRequestId('sentry-it-pii')(i.payload as SentryEvent));
    await receiver.waitFor((i) => i.header.type === 'transaction' && (i.payload as SentryEvent).contexts !== undefined && JSON.stringify(i.payload).includes('"http.response.status_code":500') && JSON.stringify(i.payload).includes('j***@example.com'));

    // The data is there, scrubbed (so the scrubber ran, rather than the data never being sent).
    const request = event!.request as { url: string; query_string: string; data: string; headers: Record<string, string> };
    expect(request.headers.authorization).toBe('[REDACTED]');
    expect(request.headers['x-password']).toBe('[REDACTED]');
    expect(request.headers['x-account-number']).toBe('*******6523');
    expect(request.headers).not.toHaveProperty('cookie');
    expect(request.headers).not.toHaveProperty('x-forwarded-for');
    expect(request.query_string).toContain('email=j***@example.com');
    expect(request.query_string).toContain('password=[REDACTED]');
    expect(JSON.parse(request.data)).toMatchObject({ password: '[REDACTED]', access_token: '[REDACTED]', email: 'j***@example.com', account_number: '*******6523', nested: { client_secret: '[REDACTED]' } });
    const exception = (event!.exception as { values: { value: string }[] }).values.at(-1)!;
    expect(exception.value).toContain('contact j***@example.com about account *******6523');

    const bytes = receiver.envelopes.map((e) => e.body.toString('utf8')).join('\n');
    expect(bytes).toContain('sentry-it-pii');
    expect(leaks(bytes, token)).toEqual([]);
  });

  it('a sampled request yields a transaction named by its route, in the error event\'s trace', async () => {
    // A route with a parameter, so the name can only come from the template (the SDK drops the
    // transactions of 401–404 answers; a 422 keeps its transaction and makes no error event).
    const res = await fetch(`${API}/api/v1/transactions/not-a-uuid`, { headers: { 'x-request-id': 'sentry-it-transaction', authorization: `Bearer ${token}` } });
    expect(res.status).toBe(422);
    const [transaction] = await receiver.waitFor((i) => i.header.type === 'transaction' && (i.payload as SentryEvent).transaction === 'GET /api/v1/transactions/:id');
    expect(transaction).toMatchObject({ type: 'transaction', environment: 'staging', release: RELEASE, contexts: { trace: { op: 'http.server' } } });
    // Named by the route template in one hook (no span per Fastify hook: see sentryOptions).
    expect((transaction!.contexts as { trace: { data: Record<string, unknown> } }).trace.data).toMatchObject({ 'http.route': '/api/v1/transactions/:id', 'sentry.segment.name.source': 'route' });
    expect(transaction).toMatchObject({ transaction_info: { source: 'route' } });
    // Only the integrations the service uses: no span per Fastify hook, no Express or Mongo hooks.
    const integrations = (transaction!.sdk as { integrations: string[] }).integrations;
    expect(integrations).toEqual(expect.arrayContaining(['Postgres', 'Redis', 'ProcessSession', 'OnUncaughtException', 'NodeFetch']));
    // Nor the SDK's Http integration: incoming requests are instrumented by sentry-requests.ts.
    expect(integrations.filter((name) => ['Http', 'Fastify', 'Express', 'Mongo', 'Kafka'].includes(name))).toEqual([]);
    expect(transaction!.timestamp as number).toBeGreaterThan(transaction!.start_timestamp as number);

    const errorTrace = (testEvent.contexts as { trace: { trace_id: string } }).trace.trace_id;
    const failed = receiver.transactions().find((t) => t.transaction === 'POST /api/v1/dev/test-sentry' && (t.contexts as { trace: { trace_id: string } }).trace.trace_id === errorTrace);
    expect(failed).toMatchObject({ contexts: { trace: { status: 'internal_error' } } });
  });

  it("an incoming traceparent is the Sentry trace: the error event, its transaction, the problem body and the log line share it", async () => {
    const trace = randomUUID().replace(/-/g, '');
    const parent = randomUUID().replace(/-/g, '').slice(0, 16);
    for (const [flag, requestId] of [['01', 'sentry-it-w3c-sampled'], ['00', 'sentry-it-w3c-unsampled']] as const) {
      const traceId = `${trace.slice(0, 30)}${flag}`;
      // A message of its own: the SDK's Dedupe drops an event equal to the one before.
      const res = await fetch(`${API}/api/v1/dev/test-sentry`, {
        method: 'POST',
        headers: { 'x-request-id': requestId, traceparent: `00-${traceId}-${parent}-${flag}`, 'content-type': 'application/json' },
        body: JSON.stringify({ message: requestId }),
      });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ request_id: requestId, trace_id: traceId });
      const [event] = await receiver.waitFor((i) => i.header.type === 'event' && ((i.payload as SentryEvent).tags as Record<string, string> | undefined)?.request_id === requestId);
      expect((event!.contexts as { trace: { trace_id: string } }).trace.trace_id).toBe(traceId);
      // The child's buffered stdout can reach the pipe after its event reached the receiver: wait (bounded).
      let line: Record<string, unknown> | undefined;
      for (const deadline = Date.now() + 5_000; !line && Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
        line = api.logs.find((l) => l.event === 'request_completed' && l.request_id === requestId);
      }
      expect(line).toMatchObject({ trace_id: traceId });
      if (flag === '01') {
        // The caller sampled it: a transaction in the same trace, the caller's span as its parent.
        const [transaction] = await receiver.waitFor(
          (i) => i.header.type === 'transaction' && (i.payload as SentryEvent & { contexts: { trace: { trace_id: string } } }).contexts.trace.trace_id === traceId,
        );
        expect((transaction!.contexts as { trace: { parent_span_id?: string } }).trace.parent_span_id).toBe(parent);
      }
    }
    // The caller did not sample the second: no transaction of its trace was sent.
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.transactions().filter((t) => (t.contexts as { trace: { trace_id: string } }).trace.trace_id === `${trace.slice(0, 30)}00`)).toEqual([]);
  });

  it('a 404 and a 422 are answered without an event; graceful shutdown flushes what is pending', async () => {
    const notFound = await fetch(`${API}/api/v1/no-such-route`, { headers: { 'x-request-id': 'sentry-it-404' } });
    expect(notFound.status).toBe(404);
    const invalid = await fetch(`${API}/api/v1/dev/test-sentry`, {
      method: 'POST',
      headers: { 'x-request-id': 'sentry-it-422', 'content-type': 'application/json' },
      body: JSON.stringify({ message: 42 }),
    });
    expect(invalid.status).toBe(422);
    // A probe: recorded in the session counts (sent only on flush), but no transaction.
    expect((await fetch(`${API}/health`)).status).toBe(200);

    const sessionItems = () => receiver.items().filter((i) => i.header.type === 'sessions').length;
    const sessionsBefore = sessionItems();
    api.child.kill('SIGTERM');
    expect(await api.exited).toBe(0);
    expect(api.logs.some((l) => l.event === 'shutdown_complete')).toBe(true);
    expect(api.logs.some((l) => l.event === 'sentry_flush_incomplete')).toBe(false);

    // close() sent the aggregated session counts, which otherwise wait for a 60 s timer.
    expect(sessionItems()).toBeGreaterThan(sessionsBefore);
    // Everything the process ever sent is in now: the 404 and 422 made no event, only the two 500s did.
    const events = receiver.errorEvents();
    expect(events.filter(byRequestId('sentry-it-404'))).toEqual([]);
    expect(events.filter(byRequestId('sentry-it-422'))).toEqual([]);
    expect(events.map((e) => e.tags?.request_id).sort()).toEqual(['sentry-it-pii', 'sentry-it-test-error', 'sentry-it-w3c-sampled', 'sentry-it-w3c-unsampled']);
    expect(receiver.transactions().some((t) => t.transaction === 'GET /health')).toBe(false);

    const bytes = receiver.envelopes.map((e) => e.body.toString('utf8')).join('\n');
    expect(leaks(bytes, token)).toEqual([]);
  });

  it('captureTaskFailure yields exactly one event, tagged task_name, with log and outgoing-HTTP breadcrumbs scrubbed', async () => {
    receiver.clear();
    const sentryModule = new URL('../../src/observability/sentry.ts', import.meta.url).href;
    const loggingModule = new URL('../../src/observability/logging.ts', import.meta.url).href;
    const configModule = new URL('../../src/config.ts', import.meta.url).href;
    // What the worker does on a task's last failed attempt, in a process of its own.
    const script = `
      import { loadConfig } from ${JSON.stringify(configModule)};
      import { createLogger, getLogger } from ${JSON.stringify(loggingModule)};
      import { initSentry, captureTaskFailure, closeSentry, logBreadcrumbSink } from ${JSON.stringify(sentryModule)};
      const config = loadConfig();
      if (!(await initSentry(config))) throw new Error('sentry did not start');
      const log = getLogger(createLogger({ ...config.log, onWarning: logBreadcrumbSink() }), 'worker');
      log.warn({ task_name: 'sync_plaid_item', email: ${JSON.stringify(EMAIL)}, attempt: 3 }, 'task_failed');
      await fetch(${JSON.stringify(`http://127.0.0.1:${RECEIVER_PORT}/plaid/items/get?email=${encodeURIComponent(EMAIL)}&access_token=${PLAID}`)});
      const id = captureTaskFailure(new Error('sync failed for ${EMAIL} with ${PLAID}'), { task_name: 'sync_plaid_item', job_id: 'job-42', attempts: 3 });
      process.stdout.write(JSON.stringify({ event_id: id }) + '\\n');
      if (!(await closeSentry(5000))) process.exitCode = 3;
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: childEnv({ SENTRY_DSN: receiver.dsn, ENVIRONMENT: 'test', RELEASE: TASK_RELEASE, SENTRY_TRACES_SAMPLE_RATE: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'info' }),
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, out).toBe(0);
    const { event_id } = JSON.parse(out.split('\n').find((l) => l.startsWith('{"event_id"'))!) as { event_id: string };

    // The child closed Sentry before exiting, so everything it sent is here.
    const events = receiver.errorEvents().filter((e) => e.release === TASK_RELEASE);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event).toMatchObject({ event_id, environment: 'test', level: 'error', tags: { task_name: 'sync_plaid_item' }, contexts: { task: { task_name: 'sync_plaid_item', job_id: 'job-42', attempts: 3 } } });
    expect((event!.exception as { values: { value: string }[] }).values.at(-1)!.value).toBe('sync failed for j***@example.com with [REDACTED]');

    const breadcrumbs = event!.breadcrumbs as { category: string; message?: string; data?: Record<string, unknown> }[];
    expect(breadcrumbs).toContainEqual(expect.objectContaining({ category: 'log', message: 'task_failed', data: expect.objectContaining({ email: 'j***@example.com', logger: 'worker' }) }));
    const http = breadcrumbs.find((b) => b.category === 'http');
    expect(http?.data).toMatchObject({ url: `http://127.0.0.1:${RECEIVER_PORT}/plaid/items/get`, status_code: 404 });
    expect(String(http?.data?.['url.query'])).toContain('email=j***@example.com');

    const bytes = receiver.envelopes.map((e) => e.body.toString('utf8')).join('\n');
    expect(bytes).toContain('sync_plaid_item');
    expect(leaks(bytes, token)).toEqual([]);
  });
});

describe('Sentry scrubbing of what the SDK adds on its own', () => {
  it('scrubs URLs, query strings and client addresses in spans, transaction names and breadcrumbs', () => {
    const transaction = scrubEvent({
      type: 'transaction',
      transaction: `GET /api/v1/lookup?email=${EMAIL}`,
      contexts: { trace: { trace_id: 'a'.repeat(32), span_id: 'b'.repeat(16), data: { 'url.full': `https://x/?token=${QUERY_TOKEN}`, 'client.address': CLIENT_IP } } },
      spans: [
        {
          span_id: 'c'.repeat(16),
          trace_id: 'a'.repeat(32),
          start_timestamp: 1,
          status: 'ok',
          description: `POST https://production.plaid.com/item/get?access_token=${PLAID}`,
          data: { 'http.request.header.x-forwarded-for': [CLIENT_IP], 'url.query': `password=${PASSWORD}` },
        },
      ],
    });
    const text = JSON.stringify(transaction);
    expect(leaks(text, 'unused.token.value')).toEqual([]);
    expect(transaction.spans![0]!.description).toBe('POST https://production.plaid.com/item/get?access_token=[REDACTED]');
    expect(transaction.transaction).toBe('GET /api/v1/lookup?email=j***@example.com');

    const crumb = scrubBreadcrumb({ category: 'http', data: { url: `https://api.example.com/u/${EMAIL}`, 'url.query': `email=${encodeURIComponent(EMAIL)}&account_number=${ACCOUNT}` } });
    expect(crumb.data).toEqual({ url: 'https://api.example.com/u/j***@example.com', 'url.query': 'email=j***@example.com&account_number=*******6523' });
  });

  it('drops a request body it cannot parse instead of guessing which part is secret', () => {
    const event = scrubEvent({ request: { headers: { 'content-type': 'application/json' }, data: `{"password":"${PASSWORD}","email":"${EMAIL}"…` } });
    expect(event.request!.data).toBe('[REDACTED] (body not parseable as JSON)');
  });
});
