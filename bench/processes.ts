/**
 * The processes a run starts: the API (bench/serve.ts, i.e. `nest-egg serve`), the bare Fastify
 * ceiling and the Sentry sink. Each is `node --expose-gc --import tsx <script>` with an IPC
 * channel (bench/probe.ts answers CPU and memory questions on it), its stdout and stderr written
 * to files in the run's temporary directory, listening on 127.0.0.1, and stopped by its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/prometheus.ts';
import type { CpuReply, MemoryReply, ReadyMessage } from './probe.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

const live = new Set<Child>();
// Whatever happens to the run, no process it started outlives it.
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Only what Node needs from our environment, then the case's own variables. */
function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) if (process.env[key] !== undefined) out[key] = process.env[key];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export class Child {
  private exited = false;
  readonly done: Promise<void>;

  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
    readonly logFiles: { stdout: string; stderr: string },
  ) {
    this.done = new Promise((resolve) => {
      proc.once('exit', () => {
        this.exited = true;
        live.delete(this);
        resolve();
      });
    });
    live.add(this);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Sends a question on the IPC channel and resolves with the first reply of `type`. */
  ask<T extends { type: string }>(message: { type: string }, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proc.off('message', onMessage);
        reject(new Error(`${this.name}: no ${message.type} reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (reply: { type?: string }) => {
        if (reply.type !== message.type) return;
        clearTimeout(timer);
        this.proc.off('message', onMessage);
        resolve(reply as T);
      };
      this.proc.on('message', onMessage);
      this.proc.send(message);
    });
  }

  /** CPU time (user + system) the process has used so far, in microseconds. */
  async cpuMicros(): Promise<number> {
    return (await this.ask<CpuReply>({ type: 'cpu' })).micros;
  }

  /** Memory after a full garbage collection. */
  memory(): Promise<MemoryReply> {
    return this.ask<MemoryReply>({ type: 'memory' });
  }

  /** The tail of what the process wrote, for an error message. */
  output(): string {
    const tail = (file: string) => {
      try {
        return readFileSync(file, 'utf8').slice(-3_000);
      } catch {
        return '';
      }
    };
    return `stdout (${this.logFiles.stdout}):\n${tail(this.logFiles.stdout)}\nstderr:\n${tail(this.logFiles.stderr)}`;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exited) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM by pid (the API drains and flushes Sentry), SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.done;
    clearTimeout(timer);
  }
}

function spawnScript(name: string, file: string, args: string[], env: Record<string, string | undefined>, dir: string): Child {
  const stdout = join(dir, `${name}.stdout.log`);
  const stderr = join(dir, `${name}.stderr.log`);
  const out = openSync(stdout, 'a');
  const err = openSync(stderr, 'a');
  try {
    const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script(file), ...args], {
      cwd: ROOT,
      env: childEnv(env),
      stdio: ['ignore', out, err, 'ipc'],
    });
    return new Child(name, proc, { stdout, stderr });
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/** Starts a script that announces its port on the IPC channel once it listens. */
export async function startHelper(name: string, file: string, env: Record<string, string | undefined>, dir: string): Promise<{ child: Child; port: number }> {
  const child = spawnScript(name, file, [], env, dir);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s\n${child.output()}`)), 30_000);
    child.proc.on('message', (m: ReadyMessage) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(m.port);
    });
    void child.done.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready\n${child.output()}`));
    });
  });
  return { child, port };
}


export interface ApiServer {
  child: Child;
  url: string;
}

/** Starts `nest-egg serve` (bench/serve.ts) with `env` and waits until GET /health answers 200. */
export async function startApi(name: string, env: Record<string, string | undefined>, dir: string): Promise<ApiServer> {
  const port = await freePort();
  const child = spawnScript(name, 'serve.ts', ['serve'], { ...env, HOST: '127.0.0.1', PORT: String(port) }, dir);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (!child.running) throw new Error(`${name} exited before it was up\n${child.output()}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return { child, url };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await child.stop();
      throw new Error(`${name} did not answer /health within 90 s\n${child.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts a command of our own choosing (no IPC probe, no tsx), e.g. the image's
 * `node --enable-source-maps dist/main.js serve`, with `env` and its output in the run's directory.
 */
export function spawnCommand(name: string, file: string, args: string[], env: Record<string, string | undefined>, dir: string): Child {
  const stdout = join(dir, `${name}.stdout.log`);
  const stderr = join(dir, `${name}.stderr.log`);
  const out = openSync(stdout, 'a');
  const err = openSync(stderr, 'a');
  try {
    const proc = spawn(file, args, { cwd: ROOT, env: childEnv(env), stdio: ['ignore', out, err] });
    return new Child(name, proc, { stdout, stderr });
  } finally {
    closeSync(out);
    closeSync(err);
  }
}
