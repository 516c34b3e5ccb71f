/**
 * The one error handler and the one not-found handler (src/http/errors.ts) on a bare Fastify
 * instance: every failure leaves as problem+json with the right status, 5xx (and only 5xx) are
 * reported, validation errors name their fields.
 */
import { PassThrough } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { registerErrorHandlers } from '../../src/http/errors.ts';
import { AppError, unprocessable } from '../../src/lib/errors.ts';
import { RecentList, type ServerErrorRecord } from '../../src/observability/recent.ts';
import { runInTrace, type TraceContext } from '../../src/observability/trace-context.ts';

const captured = vi.hoisted(() => ({ calls: [] as { error: unknown; ctx: Record<string, unknown> }[] }));
vi.mock('../../src/observability/sentry.ts', () => ({
  captureServerError: (error: unknown, ctx: Record<string, unknown>) => {
    captured.calls.push({ error, ctx });
    return 'event-1';
  },
}));

let app: FastifyInstance;
let logs: Record<string, unknown>[];

const fail = (error: unknown) => () => {
  throw error;
};
const coded = (message: string, props: Record<string, unknown>) => Object.assign(new Error(message), props);

beforeEach(async () => {
  captured.calls.length = 0;
  logs = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logs.push(...chunk.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)));
  app = Fastify({ logger: { level: 'info', stream }, bodyLimit: 64 }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandlers(app);
  app.decorateRequest('userId', null);
  app.addHook('onRequest', async (request) => {
    if (request.headers['x-user']) (request as { userId: unknown }).userId = request.headers['x-user'];
    if (request.url.startsWith('/hook-fails')) throw new Error('failed before any route');
  });
  app.get('/app-error', fail(new AppError(404, 'Budget not found')));
  app.get('/app-error-fields', fail(unprocessable('Bad dates', [{ field: 'body.end', message: 'before start' }])));
  app.get('/app-error-500', fail(new AppError(503, 'Upstream down')));
  app.get('/items/:id', fail(new Error('boom: secret internals')));
  app.get('/client-error', fail(coded('Too early', { statusCode: 425 })));
  app.get('/status-499', fail(coded('edge 499', { statusCode: 499 })));
  app.get('/status-500', fail(coded('own 500', { statusCode: 500 })));
  app.get('/status-400', fail(coded('plain 400', { statusCode: 400 })));
  app.get('/status-399', fail(coded('odd 399', { statusCode: 399 })));
  app.get('/app-error-exactly-500', fail(new AppError(500, 'Broken on purpose')));
  app.get('/numeric-code', fail(coded('numeric', { code: 23505 })));
  app.get('/syntax', fail(Object.assign(new SyntaxError('Unexpected token'), { statusCode: 400 })));
  app.get('/syntax-500', fail(new SyntaxError('bad code')));
  app.get('/db', async (request) => {
    throw coded('db', (request.query as { cause?: string }).cause ? { cause: { code: (request.query as { code: string }).code } } : { code: (request.query as { code: string }).code });
  });
  app.get('/down', async (request) => {
    const q = request.query as Record<string, string>;
    const leaf = coded(q.message ?? 'x', q.code ? { code: q.code } : {});
    let error: Error = leaf;
    for (let i = 0; i < Number(q.depth ?? 0); i++) error = coded('wrapper', { cause: error });
    throw error;
  });
  app.post(
    '/validated',
    {
      schema: {
        body: z.object({ name: z.string(), amount: z.number(), nested: z.object({ when: z.string() }).optional(), tags: z.array(z.string()).optional() }),
        querystring: z.object({ limit: z.coerce.number().int().max(10).optional() }),
      },
    },
    async () => ({ ok: true }),
  );
  // A validation error as Fastify's own (JSON-schema) validation reports it: the issues as given in the x-issues header.
  const validationError = (request: { headers: Record<string, unknown> }) => {
    const spec = JSON.parse(String(request.headers['x-issues'])) as { context?: string; issues?: { instancePath: string; message?: string }[] };
    return Object.assign(new Error('validation'), { code: 'FST_ERR_VALIDATION', validation: spec.issues, validationContext: spec.context });
  };
  app.post('/fastify-validation', async (request) => {
    throw validationError(request);
  });
  app.get('/fastify-validation', async (request) => {
    throw validationError(request);
  });
  app.get('/headers', { schema: { headers: z.object({ 'x-thing': z.enum(['a', 'b']) }) } }, async () => ({ ok: true }));
  app.get('/params/:id', { schema: { params: z.object({ id: z.uuid() }) } }, async () => ({ ok: true }));
  await app.ready();
});
afterEach(async () => app.close());

const get = (url: string, headers: Record<string, string> = {}) => app.inject({ method: 'GET', url, headers });
const post = (url: string, payload: string, contentType = 'application/json') =>
  app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });

function expectProblem(res: Awaited<ReturnType<typeof get>>, status: number, detail: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({ type: 'about:blank', status, detail, request_id: res.headers['request-id'] ?? expect.any(String) });
  return body;
}
const logged = (event: string) => logs.filter((l) => l.msg === event);

describe('AppError', () => {
  it('keeps its status and message; a 4xx is not reported', async () => {
    const body = expectProblem(await get('/app-error'), 404, 'Budget not found');
    expect(body.title).toBe('Not Found');
    expect(body).not.toHaveProperty('errors');
    expect(captured.calls).toEqual([]);
    expect(logged('unhandled_error')).toEqual([]);
  });

  it('carries its field errors', async () => {
    const body = expectProblem(await get('/app-error-fields'), 422, 'Bad dates');
    expect(body.errors).toEqual([{ field: 'body.end', message: 'before start' }]);
  });

  it('a 5xx AppError is reported with the request id, the route and the user', async () => {
    const res = await get('/app-error-500', { 'x-user': 'user-7' });
    const body = expectProblem(res, 503, 'Upstream down');
    expect(captured.calls).toHaveLength(1);
    const { raw, ...ctx } = captured.calls[0]!.ctx;
    expect(ctx).toEqual({ request_id: body.request_id, method: 'GET', endpoint: '/app-error-500', user_id: 'user-7' });
    // The node:http request goes along, for the event's request data.
    expect((raw as { url?: string }).url).toBe('/app-error-500');
    expect(logged('unhandled_error')).toHaveLength(1);
    expect(logged('unhandled_error')[0]).toMatchObject({ sentry_event_id: 'event-1', level: 50 });
  });
});

describe('unexpected errors', () => {
  it('are a 500 that hides the message, reported under the route template', async () => {
    const res = await get('/items/42');
    const body = expectProblem(res, 500, 'An unexpected error occurred; quote the request id when reporting it');
    expect(res.body).not.toContain('secret internals');
    expect(captured.calls.map(({ ctx: { raw: _raw, ...ctx } }) => ctx)).toEqual([{ request_id: body.request_id, method: 'GET', endpoint: '/items/:id', user_id: null }]);
    expect((captured.calls[0]!.error as Error).message).toBe('boom: secret internals');
    expect(logged('unhandled_error')).toHaveLength(1);
  });

  it('an error with a 4xx status keeps it and its message, unreported; 5xx and 500 are reported', async () => {
    expectProblem(await get('/client-error'), 425, 'Too early');
    expectProblem(await get('/status-499'), 499, 'edge 499');
    expect(captured.calls).toEqual([]);
    expectProblem(await get('/status-500'), 500, 'An unexpected error occurred; quote the request id when reporting it');
    expectProblem(await get('/syntax-500'), 500, 'An unexpected error occurred; quote the request id when reporting it');
    expect(captured.calls).toHaveLength(2);
  });

  it('the 4xx range is 400 to 499: a 400 keeps its message, a 399 is a 500', async () => {
    expectProblem(await get('/status-400'), 400, 'plain 400');
    expect(captured.calls).toEqual([]);
    expectProblem(await get('/status-399'), 500, 'An unexpected error occurred; quote the request id when reporting it');
    expect(captured.calls).toHaveLength(1);
  });

  it('an AppError of exactly 500 is reported', async () => {
    expectProblem(await get('/app-error-exactly-500'), 500, 'Broken on purpose');
    expect(captured.calls).toHaveLength(1);
  });

  it('a numeric code is not a SQLSTATE', async () => {
    expectProblem(await get('/numeric-code'), 500, 'An unexpected error occurred; quote the request id when reporting it');
  });

  it('a SyntaxError with status 400 is invalid JSON', async () => {
    expectProblem(await get('/syntax'), 400, 'The request body is not valid JSON');
  });
});

describe('body errors from Fastify', () => {
  it.each([
    ['{"name":', 'application/json', 400, 'The request body is not valid JSON'],
    ['x'.repeat(100), 'application/json', 413, 'The request body is larger than the limit'],
    ['<name/>', 'application/xml', 415, 'Send the body as application/json'],
  ])('%j as %s is a %i', async (payload, type, status, detail) => {
    expectProblem(await post('/validated', payload, type), status, detail);
    expect(captured.calls).toEqual([]);
  });

  it('an empty JSON body is a 400', async () => {
    const res = await app.inject({ method: 'POST', url: '/validated', payload: '', headers: { 'content-type': 'application/json' } });
    expectProblem(res, 400, 'The request body is not valid JSON');
  });
});

describe('validation', () => {
  it('names each invalid field once, and a missing one as Required', async () => {
    const res = await post('/validated?limit=50', JSON.stringify({ amount: 'ten', nested: {} }));
    expect(res.statusCode).toBe(422);
    const body = res.json() as { detail: string; errors: { field: string; message: string }[] };
    expect(body.detail).toBe('The request did not pass validation');
    // Fastify validates the body; the query is its own context.
    const fields = body.errors.map((e) => e.field);
    expect(new Set(fields).size).toBe(fields.length);
    expect(body.errors).toContainEqual({ field: 'body.name', message: 'Required' });
    expect(body.errors).toContainEqual({ field: 'body.nested.when', message: 'Required' });
    const amount = body.errors.find((e) => e.field === 'body.amount');
    expect(amount?.message).toMatch(/expected number/);
    expect(amount?.message).not.toBe('Required');
  });

  it('a null body is the body itself, not a missing field', async () => {
    const res = await post('/validated', 'null');
    expect(res.statusCode).toBe(422);
    const body = res.json() as { errors: { field: string; message: string }[] };
    expect(body.errors).toHaveLength(1);
    expect(body.errors[0]!.field).toBe('body');
  });

  it('a wrong type inside an array element or nested object is not Required', async () => {
    const res = await post('/validated', JSON.stringify({ name: 'a', amount: 1, tags: [1], nested: 'x' }));
    const body = res.json() as { errors: { field: string; message: string }[] };
    expect(body.errors.map((e) => e.field).sort()).toEqual(['body.nested', 'body.tags.0']);
    for (const e of body.errors) expect(e.message).not.toBe('Required');
  });

  it('query, params and headers are named query.x, params.x and headers.x', async () => {
    const q = (await post('/validated?limit=50', JSON.stringify({ name: 'a', amount: 1 }))).json() as { errors: { field: string; message: string }[] };
    expect(q.errors).toHaveLength(1);
    expect(q.errors[0]!.field).toBe('query.limit');
    expect(q.errors[0]!.message).not.toBe('Required');
    const p = (await get('/params/not-a-uuid')).json() as { errors: { field: string; message: string }[] };
    expect(p.errors.map((e) => e.field)).toEqual(['params.id']);
    expect(p.errors[0]!.message).not.toBe('Required');
    const missing = await get('/headers');
    expect(missing.statusCode).toBe(422);
    expect((missing.json() as { errors: unknown[] }).errors).toEqual([{ field: 'headers.x-thing', message: 'Required' }]);
    const wrong = (await get('/headers', { 'x-thing': 'c' })).json() as { errors: { field: string; message: string }[] };
    expect(wrong.errors.map((e) => e.field)).toEqual(['headers.x-thing']);
    expect(wrong.errors[0]!.message).not.toBe('Required');
  });
});

describe("Fastify's own validation errors (FST_ERR_VALIDATION)", () => {
  const invalid = async (issues: unknown, body?: unknown, context: string | undefined = 'body') => {
    const res = await app.inject({
      method: body === undefined ? 'GET' : 'POST',
      url: '/fastify-validation',
      headers: { 'x-issues': JSON.stringify({ context, issues }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    expect(res.statusCode).toBe(422);
    expect((res.json() as { detail: string }).detail).toBe('The request did not pass validation');
    return (res.json() as { errors: { field: string; message: string }[] }).errors;
  };

  it('names the field, and says Required only where the input has no such key', async () => {
    expect(await invalid([{ instancePath: '/a/b', message: 'must be string' }], { a: {} })).toEqual([{ field: 'body.a.b', message: 'Required' }]);
    expect(await invalid([{ instancePath: '/a/b', message: 'must be string' }], { a: { b: 1 } })).toEqual([{ field: 'body.a.b', message: 'must be string' }]);
    expect(await invalid([{ instancePath: '/a/1', message: 'must be string' }], { a: ['x'] })).toEqual([{ field: 'body.a.1', message: 'Required' }]);
    expect(await invalid([{ instancePath: '/a/0', message: 'must be string' }], { a: [5] })).toEqual([{ field: 'body.a.0', message: 'must be string' }]);
    expect(await invalid([{ instancePath: '/a/b/c', message: 'must be string' }], {})).toEqual([{ field: 'body.a.b.c', message: 'Required' }]);
  });

  it('a parent of the wrong type (null, a string, a number) is not a missing field', async () => {
    for (const a of [null, 'x', 7]) {
      expect(await invalid([{ instancePath: '/a/b', message: 'must be object' }], { a })).toEqual([{ field: 'body.a.b', message: 'must be object' }]);
    }
  });

  it('no body at all: every field of it, and the body itself, is Required', async () => {
    expect(await invalid([{ instancePath: '/x', message: 'must be string' }])).toEqual([{ field: 'body.x', message: 'Required' }]);
    expect(await invalid([{ instancePath: '', message: 'must be object' }])).toEqual([{ field: 'body', message: 'Required' }]);
    expect(await invalid([{ instancePath: '', message: 'must be object' }], { a: 1 })).toEqual([{ field: 'body', message: 'must be object' }]);
  });

  it('one error per field (the first), a default message, the body as default context', async () => {
    expect(await invalid([{ instancePath: '/x', message: 'first' }, { instancePath: '/x', message: 'second' }, { instancePath: '/y' }], { x: 1, y: 2 })).toEqual([
      { field: 'body.x', message: 'first' },
      { field: 'body.y', message: 'is invalid' },
    ]);
    expect(await invalid([{ instancePath: '/x', message: 'm' }], { x: 1 }, undefined)).toEqual([{ field: 'body.x', message: 'm' }]);
    expect(await invalid(undefined, { x: 1 })).toEqual([]);
  });

  it('a context the request has no part for is named as it comes, and never Required', async () => {
    expect(await invalid([{ instancePath: '/x', message: 'm' }], { a: 1 }, 'cookies')).toEqual([{ field: 'cookies.x', message: 'm' }]);
    expect(await invalid([{ instancePath: '/x', message: 'm' }], { a: 1 }, 'querystring')).toEqual([{ field: 'query.x', message: 'Required' }]);
  });
});

describe('errors before any route', () => {
  it('are reported under the endpoint unmatched', async () => {
    expectProblem(await get('/hook-fails/here'), 500, 'An unexpected error occurred; quote the request id when reporting it');
    expect(captured.calls.map(({ ctx }) => ctx.endpoint)).toEqual(['unmatched']);
  });
});

describe('database errors', () => {
  it.each([
    ['23505', 409, 'The request conflicts with an existing record'],
    ['23503', 409, 'The request refers to a record that no longer exists'],
    ['23502', 422, 'A value in the request cannot be stored'],
    ['22P02', 422, 'A value in the request cannot be stored'],
    ['22001', 422, 'A value in the request cannot be stored'],
  ])('SQLSTATE %s (on the error or its cause) is a %i, logged as a warning and not reported', async (code, status, detail) => {
    for (const cause of [false, true]) {
      logs.length = 0;
      expectProblem(await get(`/db?code=${code}${cause ? '&cause=1' : ''}`), status, detail);
      expect(logged('request_rejected_by_database')).toHaveLength(1);
      expect(logged('request_rejected_by_database')[0]).toMatchObject({ level: 40, error: expect.any(Object) });
    }
    expect(captured.calls).toEqual([]);
  });

  it.each(['24000', '2250', '225001', '42P01', 'x22001', '22001x', '2200a'])('SQLSTATE %s is not the client\'s fault: a 500', async (code) => {
    expectProblem(await get(`/db?code=${code}`), 500, 'An unexpected error occurred; quote the request id when reporting it');
    expect(logged('request_rejected_by_database')).toEqual([]);
    expect(captured.calls).toHaveLength(1);
  });
});

describe('an unreachable database', () => {
  const UNAVAILABLE = 'The database is unavailable; try again shortly';

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08001'])(
    'code %s is a reported 503 with Retry-After',
    async (code) => {
      const res = await get(`/down?code=${code}`);
      expectProblem(res, 503, UNAVAILABLE);
      expect(res.headers['retry-after']).toBe('5');
      expect(captured.calls).toHaveLength(1);
    },
  );

  it.each([
    'timeout exceeded when trying to connect',
    'Connection terminated unexpectedly',
    'Database is closed',
    'Client has encountered a connection error and is not queryable',
  ])('message %j is a 503', async (message) => {
    expectProblem(await get(`/down?message=${encodeURIComponent(message)}`), 503, UNAVAILABLE);
  });

  it('is found up to three causes deep, not four', async () => {
    expectProblem(await get('/down?code=ECONNREFUSED&depth=3'), 503, UNAVAILABLE);
    expectProblem(await get('/down?message=Connection%20terminated&depth=3'), 503, UNAVAILABLE);
    const deep = await get('/down?code=ECONNREFUSED&depth=4');
    expectProblem(deep, 500, 'An unexpected error occurred; quote the request id when reporting it');
    expect(deep.headers['retry-after']).toBeUndefined();
  });

  it('other codes and messages are a 500', async () => {
    for (const url of ['/down?code=57P04', '/down?code=E08', '/down?message=connection%20closed%20by%20peer']) {
      expectProblem(await get(url), 500, 'An unexpected error occurred; quote the request id when reporting it');
    }
  });
});

describe('not found', () => {
  it('names the method and the path, without the query', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/nowhere/at/all?token=abc' });
    const body = expectProblem(res, 404, 'No route for DELETE /nowhere/at/all');
    expect(body.title).toBe('Not Found');
    expect(captured.calls).toEqual([]);
  });
});

describe("the operator console's list of recent 5xx answers", () => {
  it('records each reported error (status, method, route, request id, trace id, Sentry event id, scrubbed message), and nothing for a 4xx', async () => {
    const recent = new RecentList<ServerErrorRecord>(10);
    const own = Fastify({ logger: false });
    registerErrorHandlers(own, recent);
    own.decorateRequest('userId', null);
    const trace: TraceContext = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', parentSpanId: undefined, sampled: false, tracestate: undefined };
    own.addHook('onRequest', (request, _reply, done) => (request.headers['x-traced'] ? runInTrace(trace, done) : done()));
    own.get('/items/:id', fail(new Error('boom for jane.doe@example.com')));
    own.get('/down', fail(coded('db', { code: 'ECONNREFUSED' })));
    own.get('/upstream', fail(new AppError(502, 'Upstream down')));
    own.get('/missing', fail(new AppError(404, 'Budget not found')));
    expect((await own.inject({ method: 'GET', url: '/items/7', headers: { 'x-traced': '1' } })).statusCode).toBe(500);
    expect((await own.inject({ method: 'GET', url: '/down' })).statusCode).toBe(503);
    expect((await own.inject({ method: 'GET', url: '/upstream' })).statusCode).toBe(502);
    expect((await own.inject({ method: 'GET', url: '/missing' })).statusCode).toBe(404);
    expect((await own.inject({ method: 'POST', url: '/nowhere' })).statusCode).toBe(404);
    const list = recent.list();
    expect(list.map((e) => [e.status, e.method, e.route])).toEqual([
      [502, 'GET', '/upstream'],
      [503, 'GET', '/down'],
      [500, 'GET', '/items/:id'],
    ]);
    expect(list[2]).toMatchObject({ trace_id: trace.traceId, sentry_event_id: 'event-1', request_id: expect.any(String) });
    expect(list[2]!.message).toContain('boom for');
    expect(list[2]!.message).not.toContain('jane.doe@example.com');
    expect(list[1]!.trace_id).toBeNull();
    expect(Date.parse(list[0]!.time)).toBeGreaterThan(Date.now() - 60_000);
    await own.close();
  });

  it('keeps the latest entries only, newest first', () => {
    const recent = new RecentList<number>(3);
    for (let i = 1; i <= 5; i++) recent.push(i);
    expect(recent.list()).toEqual([5, 4, 3]);
    expect(recent.list(2)).toEqual([5, 4]);
  });
});
