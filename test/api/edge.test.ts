/**
 * Requests refused before routing, sent through real sockets to a listening server: each answers
 * problem+json with X-Request-ID and the security headers, writes one `request_rejected` line,
 * moves http_requests_total under the unmatched endpoint, says `Connection: close` where the
 * socket closes, and the next request on a fresh connection is answered.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.ts';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection after answering. */
  closed: boolean;
}

/** Writes `raw` on a new connection and reads one response (and whether the server then closed). */
function send(port: number, raw: string, timeoutMs = 3_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      finish();
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no response: ${JSON.stringify(data.slice(0, 200))}`));
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: data.slice(end + 4, end + 4 + length), closed });
    };
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      const length = /content-length:\s*(\d+)/i.exec(data)?.[1];
      // Keep-alive answers: done once the body is complete (the socket stays open).
      if (end >= 0 && length !== undefined && data.length >= end + 4 + Number(length) && !/connection:\s*close/i.test(data)) {
        socket.destroy();
        finish();
      }
    });
    socket.on('end', () => {
      closed = true;
    });
    socket.on('close', () => {
      if (timer) finish();
    });
    socket.on('error', () => undefined);
    socket.write(raw);
  });
}

let t: TestApp;
let port: number;

beforeAll(async () => {
  t = await createTestApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(async () => t.close());

const rejected = () => t.logs().map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.event === 'request_rejected');

async function counter(status: number, method: string): Promise<number> {
  const text = await t.app.metrics.render('prometheus');
  const line = text.split('\n').find((l) => l.startsWith(`http_requests_total{method="${method}",endpoint="unmatched",status="${status}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

const longId = 'a'.repeat(150);
const CASES: { name: string; raw: string; status: number; method: string; reason: string; closes: boolean }[] = [
  { name: 'a malformed percent-encoding in the path', raw: 'GET /api/v1/accounts/%zz HTTP/1.1\r\nHost: x\r\n\r\n', status: 400, method: 'GET', reason: 'bad_url_encoding', closes: false },
  { name: "an id longer than the router's limit", raw: `GET /api/v1/accounts/${longId} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 414, method: 'GET', reason: 'path_parameter_too_long', closes: false },
  { name: 'a 100 KB query string', raw: `GET /api/v1/accounts?q=${'x'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, status: 431, method: '_OTHER', reason: 'headers_too_large', closes: true },
  { name: 'a malformed request line', raw: 'GET\r\n\r\n', status: 400, method: '_OTHER', reason: 'malformed_request_line', closes: true },
  { name: 'a header without a colon', raw: 'GET /health HTTP/1.1\r\nHost: x\r\nno-colon-here\r\n\r\n', status: 400, method: '_OTHER', reason: 'invalid_header', closes: true },
  {
    name: 'duplicate Content-Length',
    raw: 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
    status: 400,
    method: '_OTHER',
    reason: 'conflicting_length',
    closes: true,
  },
  {
    name: 'Content-Length with Transfer-Encoding',
    raw: 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    status: 400,
    method: '_OTHER',
    reason: 'conflicting_length',
    closes: true,
  },
];

describe('requests refused before routing', () => {
  for (const c of CASES) {
    it(`${c.name}: ${c.status} problem+json with X-Request-ID, security headers, one log line, counted${c.closes ? ', Connection: close' : ''}`, async () => {
      const logsBefore = rejected().length;
      const countBefore = await counter(c.status, c.method);
      const res = await send(port, c.raw);

      expect(res.status).toBe(c.status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(res.body) as Record<string, unknown>;
      expect(body).toMatchObject({ type: 'about:blank', status: c.status, request_id: res.headers['x-request-id'] });
      expect(typeof body.detail).toBe('string');
      expect(res.headers['x-request-id']).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      if (c.closes) {
        expect(res.headers.connection).toBe('close');
        expect(res.closed).toBe(true);
      }

      const lines = rejected().slice(logsBefore);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 'warn', request_id: res.headers['x-request-id'], status: c.status, reason: c.reason });
      // Logged once: no completion line besides it.
      const all = t.logs().map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(all.filter((l) => l.request_id === res.headers['x-request-id'])).toHaveLength(1);
      // Never the raw oversized input.
      expect(JSON.stringify(lines[0]).length).toBeLessThan(1_000);
      expect(await counter(c.status, c.method)).toBe(countBefore + 1);

      const next = await send(port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(next.status).toBe(200);
      expect(JSON.parse(next.body)).toEqual({ status: 'healthy' });
    });
  }

  it('an incoming valid X-Request-ID is honoured on a router refusal', async () => {
    const res = await send(port, 'GET /api/v1/accounts/%zz HTTP/1.1\r\nHost: x\r\nX-Request-ID: edge-test-1\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.headers['x-request-id']).toBe('edge-test-1');
  });
});
