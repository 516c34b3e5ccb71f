/**
 * The real CLI as a child process: `node bin/nest-egg.js serve` (or any other command) with an
 * environment of the test's choosing, its stdout and stderr collected, stopped by its pid.
 * Integration tests of the running service (shutdown, readiness outages, the data-dir lock, …)
 * start it through here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './prometheus.ts';

export { freePort };

export const CLI = fileURLToPath(new URL('../../bin/nest-egg.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A JWT secret for child processes (the config requires 32+ characters). */
export const CHILD_JWT_SECRET = 'integration-test-secret-at-least-32-characters';
/** A bank-token key for child processes (server mode needs one shared by every replica). */
export const CHILD_TOKEN_KEY = Buffer.alloc(32, 7).toString('base64');

/**
 * The child's environment: only what Node needs from ours (so a variable set in the developer's
 * shell, e.g. DATABASE_URL, never leaks into a test), then the test's own variables.
 */
function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'SYSTEMROOT']) {
    if (process.env[key] !== undefined) base[key] = process.env[key];
  }
  const out: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process of the CLI with its output collected. */
export class CliProcess {
  private out = '';
  private err = '';
  private exitInfo: Exit | undefined;
  readonly exited: Promise<Exit>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.err += d));
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      });
    });
    live.add(this);
  }

  get pid(): number {
    return this.child.pid!;
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  /** stdout parsed as JSON log lines (lines that are not JSON are left out). */
  logs(): Record<string, unknown>[] {
    const lines: Record<string, unknown>[] = [];
    for (const line of this.out.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line still being written
      }
    }
    return lines;
  }

  /** The first log line with this event, once it appears (rejects after timeoutMs or when the process exits without it). */
  /** Waits (bounded) for a log line: a process's buffered stdout can reach the pipe after the effect it logs is visible elsewhere. */
  async waitForLog(event: string, timeoutMs = 10_000, where: (line: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs().find((l) => l.event === event && where(l));
      if (hit) return hit;
      if (this.exitInfo || Date.now() > deadline) {
        throw new Error(`no "${event}" log line (exit ${JSON.stringify(this.exitInfo)})\nstdout:\n${this.out}\nstderr:\n${this.err}`);
      }
      await sleep(25);
    }
  }

  /** Running means: not exited, and the pid still answers signal 0. */
  running(): boolean {
    if (this.exitInfo) return false;
    try {
      process.kill(this.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  exit(): Exit | undefined {
    return this.exitInfo;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.exitInfo) process.kill(this.pid, signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. Resolves with how it exited. */
  async stop(graceMs = 15_000): Promise<Exit> {
    if (this.exitInfo) return this.exitInfo;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

const live = new Set<CliProcess>();
// A failed test must not leave a server running after the test process is gone.
process.once('exit', () => {
  for (const p of live) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function spawnChild(args: string[], env: Record<string, string | undefined>): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Starts `node bin/nest-egg.js <args>` with exactly `env` (plus PATH/HOME). */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}): CliProcess {
  return new CliProcess(spawnChild(args, env));
}

/** Runs a CLI command to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const p = spawnCli(args, env);
  const timer = setTimeout(() => p.signal('SIGKILL'), timeoutMs);
  const exit = await p.exited.finally(() => clearTimeout(timer));
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}


export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface HttpResult {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * One request on a fresh connection (no keep-alive pool, so each call shows what a new client
 * would see). Rejects on a connection error, e.g. ECONNREFUSED once the server stopped listening.
 */
export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 5_000, () => req.destroy(new Error(`timed out: ${opts.method ?? 'GET'} ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface ServerOptions {
  /** Environment for the child, on top of the defaults below (a value of undefined removes a default). */
  env?: Record<string, string | undefined>;
  /** Defaults to a free port chosen by the kernel. */
  port?: number;
  /** How long to wait for /health (a fresh PGlite data directory takes several seconds). */
  readyTimeoutMs?: number;
}

export class ServerProcess extends CliProcess {
  readonly url: string;

  constructor(
    child: ChildProcess,
    readonly port: number,
    /** The DATA_DIR the helper made (removed by `cleanup()`), if the test gave none. */
    readonly dataDir?: string,
  ) {
    super(child);
    this.url = `http://127.0.0.1:${port}`;
  }

  /** Stops the server if it still runs and removes the DATA_DIR the helper made. */
  async cleanup(): Promise<void> {
    await this.stop();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * Starts `nest-egg serve` and resolves once it has logged server_started (so keep LOG_LEVEL at info
 * or below) and GET /health answers 200. The defaults: JSON logs at info (so `logs()` can read
 * them), ENVIRONMENT=test, 127.0.0.1, a port the kernel picks (so two runs of a test file never
 * collide), a fresh DATA_DIR in the temp dir.
 * Rejects, with the child's output, if it exits first or is not up within `readyTimeoutMs`.
 */
export async function startServer(opts: ServerOptions = {}): Promise<ServerProcess> {
  const port = opts.port ?? (await freePort());
  const ownDataDir = opts.env && 'DATA_DIR' in opts.env ? undefined : mkdtempSync(join(tmpdir(), 'nest-egg-serve-'));
  const env: Record<string, string | undefined> = {
    ENVIRONMENT: 'test',
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    HOST: '127.0.0.1',
    JWT_SECRET: CHILD_JWT_SECRET,
    TOKEN_ENCRYPTION_KEY: CHILD_TOKEN_KEY,
    METRICS_ENABLED: 'false',
    ...(ownDataDir ? { DATA_DIR: ownDataDir } : {}),
    ...opts.env,
    PORT: String(port),
  };
  const proc = new ServerProcess(spawnChild(['serve'], env), port, ownDataDir);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 90_000);
  for (;;) {
    if (proc.exit()) {
      await proc.cleanup();
      throw new Error(`nest-egg serve exited before it was up: ${JSON.stringify(proc.exit())}\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
    }
    try {
      // Our child must have said it listens: another server on the same port must not pass for it.
      if (/\bserver_started\b/.test(proc.stdout()) && (await request(`${proc.url}/health`, { timeoutMs: 1_000 })).status === 200) return proc;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.cleanup();
      throw new Error(`nest-egg serve did not answer /health on ${proc.url}\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
    }
    await sleep(100);
  }
}
