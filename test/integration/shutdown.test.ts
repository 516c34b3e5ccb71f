/**
 * Graceful shutdown of the real process: on SIGTERM readiness answers 503 at once, a request
 * already in flight completes, idle connections are closed, the process exits 0 and logs
 * shutdown_complete; SHUTDOWN_TIMEOUT_MS bounds a request that never finishes.
 *
 * The in-flight request is a real one: a registration whose body the client sends slowly over a
 * raw socket (headers and half the body before the signal, the rest after the server has stopped
 * listening). Nothing is added to the production routes for the test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { request, sleep, startServer, type ServerProcess } from '../helpers/server.ts';

const logDir = mkdtempSync(join(tmpdir(), 'nest-egg-shutdown-'));
// One embedded database for the whole file (each server exits before the next starts): initdb once.
const DATA_DIR = join(logDir, 'data');
let server: ServerProcess | undefined;

afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});
afterAll(() => rmSync(logDir, { recursive: true, force: true }));

/** A raw HTTP/1.1 connection whose request the test writes piece by piece. */
class SlowClient {
  readonly socket: net.Socket;
  private data = '';
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => (this.data += d));
    this.socket.on('error', () => {}); // a reset shows up as `closed`
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  write(text: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(text, (err) => (err ? reject(err) : resolve())));
  }

  received(): string {
    return this.data;
  }

  /** Everything the server sent, once it has closed the connection. */
  async response(): Promise<{ status: number; headers: string; body: string }> {
    await this.closed;
    const [head = '', body = ''] = this.data.split('\r\n\r\n');
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body };
  }
}

/** Resolves once a new connection to the port is refused (the server stopped listening). */
async function refused(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`port ${port} still accepts connections`);
}

const events = (s: ServerProcess) => s.logs().map((l) => l.event);

describe('graceful shutdown', () => {
  it('SIGTERM: readiness 503 at once, the in-flight request completes, idle connections close, exit 0', async () => {
    const logFile = join(logDir, 'api.log');
    server = await startServer({ env: { DATA_DIR, SHUTDOWN_DRAIN_DELAY_MS: '1000', SHUTDOWN_TIMEOUT_MS: '20000', LOG_FILE: logFile } });
    const s = server;
    expect((await request(`${s.url}/api/v1/monitoring/health`)).status).toBe(200);

    // An idle keep-alive connection that has already been served once.
    const idle = new SlowClient(s.port);
    await idle.connected();
    await idle.write('GET /health HTTP/1.1\r\nHost: test\r\n\r\n');
    while (!idle.received().includes('"healthy"')) await sleep(10);

    // The in-flight request: headers and half of the body now, the rest after the signal.
    const body = JSON.stringify({ email: 'slow.client@example.com', password: 'a-long-enough-password', full_name: 'Slow Client' });
    const half = Math.floor(body.length / 2);
    const slow = new SlowClient(s.port);
    await slow.connected();
    await slow.write(
      `POST /api/v1/auth/register HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`,
    );
    // A round trip on another connection, so the server has surely read the slow request's headers.
    expect((await request(`${s.url}/health`)).status).toBe(200);

    const signalledAt = performance.now();
    s.signal('SIGTERM');

    // At once: readiness 503 (draining) on a new connection, liveness still 200.
    await s.waitForLog('shutdown_started');
    const ready = await request(`${s.url}/api/v1/monitoring/health`);
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'unhealthy', draining: true });
    expect((await request(`${s.url}/health`)).status).toBe(200);

    // After the drain delay the server stops listening; the slow request is still open.
    await refused(s.port);
    expect(slow.received()).toBe('');
    expect(s.running()).toBe(true);

    // The client finishes its body: the request completes normally.
    await slow.write(body.slice(half));
    const res = await slow.response();
    expect(res.status, res.headers).toBe(201);
    expect(JSON.parse(res.body)).toMatchObject({ email: 'slow.client@example.com', full_name: 'Slow Client' });

    const exit = await s.exited;
    const shutdownMs = Math.round(performance.now() - signalledAt);
    console.info(`shutdown: SIGTERM → exit ${shutdownMs} ms (1000 ms drain delay, then the slow client)`);
    expect(exit).toEqual({ code: 0, signal: null });
    await idle.closed; // the server closed the idle keep-alive connection itself

    const log = events(s);
    expect(log.indexOf('shutdown_started')).toBeGreaterThan(-1);
    expect(log.at(-1)).toBe('shutdown_complete');
    const registered = s.logs().findIndex((l) => l.event === 'request_completed' && l.route === '/api/v1/auth/register');
    expect(registered).toBeGreaterThan(log.indexOf('shutdown_started'));
    expect(s.logs().find((l) => l.event === 'shutdown_started')).toMatchObject({ signal: 'SIGTERM', logger: 'server' });
    expect(s.stderr()).toBe('');

    // The LOG_FILE sink got every line too, up to the last one written before process.exit.
    const fileEvents = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
    expect(fileEvents).toEqual(log);
  });

  it('SIGINT does the same', async () => {
    server = await startServer({ env: { DATA_DIR } });
    const s = server;
    const signalledAt = performance.now();
    s.signal('SIGINT');
    const exit = await s.exited;
    console.info(`shutdown: SIGINT → exit ${Math.round(performance.now() - signalledAt)} ms (nothing in flight, no drain delay)`);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(s.logs().find((l) => l.event === 'shutdown_started')).toMatchObject({ signal: 'SIGINT' });
    expect(events(s).at(-1)).toBe('shutdown_complete');
  });

  it('SHUTDOWN_TIMEOUT_MS bounds a request that never finishes: the process exits 1 and says so', async () => {
    server = await startServer({ env: { DATA_DIR, SHUTDOWN_TIMEOUT_MS: '1000' } });
    const s = server;
    const stuck = new SlowClient(s.port);
    await stuck.connected();
    await stuck.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":');
    expect((await request(`${s.url}/health`)).status).toBe(200);

    const signalledAt = performance.now();
    s.signal('SIGTERM');
    // Without the bound the server would wait for this client for Node's 5-minute request timeout.
    const exit = await Promise.race([s.exited, sleep(30_000).then(() => 'still running' as const)]);
    console.info(`shutdown: SIGTERM with a stuck request, SHUTDOWN_TIMEOUT_MS=1000 → exit ${Math.round(performance.now() - signalledAt)} ms`);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(s.logs().find((l) => l.event === 'shutdown_timed_out')).toMatchObject({ level: 'error', timeout_ms: 1000 });
    expect(events(s)).not.toContain('shutdown_complete');
    await stuck.closed;
    expect(stuck.received()).toBe('');
  });
});
