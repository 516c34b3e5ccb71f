/**
 * Which real services this machine offers. Integration tests skip with a visible message when one
 * is missing, unless REQUIRE_SERVICES=1 (CI), where a missing service fails the run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

export const REQUIRE_SERVICES = process.env.REQUIRE_SERVICES === '1';
export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_TEST_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
/** Debian's chromium (the browser tests drive it with playwright-core; no browser download). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function portOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function binaryExists(name: string): boolean {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const checks = {
  postgres: () => {
    const u = new URL(POSTGRES_ADMIN_URL);
    return portOpen(u.hostname, Number(u.port || 5432));
  },
  redis: () => {
    const u = new URL(REDIS_TEST_URL);
    return portOpen(u.hostname, Number(u.port || 6379));
  },
  prometheus: async () => binaryExists('prometheus') && binaryExists('promtool'),
  chromium: async () => existsSync(CHROMIUM_PATH),
};

export type Service = keyof typeof checks;

/**
 * True when every named service is there. Otherwise prints why the tier is skipped and returns
 * false, or throws when REQUIRE_SERVICES=1.
 */
export async function servicesAvailable(suite: string, ...services: Service[]): Promise<boolean> {
  const missing: Service[] = [];
  for (const s of services) if (!(await checks[s]())) missing.push(s);
  if (missing.length === 0) return true;
  const msg = `${suite}: ${missing.join(', ')} not available`;
  if (REQUIRE_SERVICES) throw new Error(`${msg} (REQUIRE_SERVICES=1)`);
  console.warn(`SKIPPED integration tests — ${msg}`);
  return false;
}
