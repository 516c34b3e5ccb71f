/**
 * An app on a test database, driven through app.inject(). Logs are captured as JSON lines so
 * tests can assert on them.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logging.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  db: TestDatabase;
  /** Every log line written so far, parsed (JSON format) or raw (text format). */
  logs: () => string[];
  close(): Promise<void>;
}

export const TEST_JWT_SECRET = 'test-secret-that-is-at-least-32-characters-long';

export async function createTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const config = loadConfig({
    ENVIRONMENT: 'test',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    DATA_DIR: 'memory://',
    JWT_SECRET: TEST_JWT_SECRET,
    ...env,
  });
  const lines: string[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  const logger = createLogger({ ...config.log, file: undefined, destination: sink });
  const db = await createTestDatabase();
  const app = await buildApp(config, { logger, database: db.database, jwtSecret: TEST_JWT_SECRET });
  await app.ready();
  return {
    app,
    config,
    db,
    logs: () => lines,
    close: async () => {
      await app.close();
      await db.close();
    },
  };
}

export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}

/** Registers a fresh user and logs in; returns the access token and the user's id. */
export async function registerAndLogin(
  app: FastifyInstance,
  overrides: { email?: string; password?: string; full_name?: string } = {},
): Promise<{ token: string; refreshToken: string; userId: string; email: string; password: string }> {
  const email = overrides.email ?? `user-${Math.random().toString(36).slice(2)}@example.com`;
  const password = overrides.password ?? 'correct horse battery staple';
  const reg = await app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { email, password, full_name: overrides.full_name ?? 'Test User' } });
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`);
  const login = await app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });
  if (login.statusCode !== 200) throw new Error(`login failed: ${login.statusCode} ${login.body}`);
  const body = json<{ access_token: string; refresh_token: string }>(login);
  const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization: `Bearer ${body.access_token}` } });
  return { token: body.access_token, refreshToken: body.refresh_token, userId: json<{ id: string }>(me).id, email, password };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
