/**
 * Every environment variable the service reads, parsed and validated once.
 * Nothing else in src/ reads process.env: the typed Config is passed down.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
export const PACKAGE_VERSION: string = pkg.version;

const ENVIRONMENTS = ['development', 'test', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** LOG_LEVEL words (any case) mapped to pino levels; the guide's Python names are accepted too. */
const LOG_LEVELS: Record<string, string> = {
  trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn',
  error: 'error', critical: 'fatal', fatal: 'fatal', silent: 'silent',
};

const bool = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    });

const int = (fallback: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const rate = (fallback?: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0 || n > 1) {
        ctx.addIssue({ code: 'custom', message: 'must be a number from 0 to 1' });
        return z.NEVER;
      }
      return n;
    });

const optionalString = z.string().optional().transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const url = (protocols: string[]) =>
  optionalString.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL (${protocols.join(' or ')})` },
  );

/** TRUST_PROXY: false (default), true, a hop count, or a comma-separated list of addresses/CIDRs. */
const trustProxy = z
  .string()
  .optional()
  .transform((v, ctx): boolean | number | string[] => {
    if (v === undefined || v.trim() === '') return false;
    const s = v.trim().toLowerCase();
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    if (['true', 'yes', 'on'].includes(s)) return true;
    if (/^\d+$/.test(s)) return Number(s);
    const list = s.split(',').map((x) => x.trim()).filter(Boolean);
    if (list.every((x) => /^[0-9a-f.:/]+$/.test(x))) return list;
    ctx.addIssue({ code: 'custom', message: 'must be true, false, a hop count or a comma-separated list of addresses' });
    return z.NEVER;
  });

const schema = z.object({
  ENVIRONMENT: z.enum(ENVIRONMENTS).default('development'),
  PORT: int(8000, 0, 65535),
  HOST: z.string().min(1).default('127.0.0.1'),
  LOG_LEVEL: z
    .string()
    .default('INFO')
    .transform((v, ctx) => {
      const level = LOG_LEVELS[v.trim().toLowerCase()];
      if (!level) {
        ctx.addIssue({ code: 'custom', message: `must be one of ${Object.keys(LOG_LEVELS).join(', ')} (any case)` });
        return z.NEVER;
      }
      return level;
    }),
  LOG_FORMAT: z.string().optional().transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    const s = v.trim().toLowerCase();
    if (s === 'text' || s === 'json') return s;
    ctx.addIssue({ code: 'custom', message: 'must be text or json' });
    return z.NEVER;
  }),
  LOG_FILE: optionalString,
  METRICS_ENABLED: bool(true),
  METRICS_TOKEN: optionalString,
  BUSINESS_METRICS_INTERVAL_MS: int(30_000, 1_000, 3_600_000),
  DATABASE_URL: url(['postgres:', 'postgresql:']),
  DATABASE_POOL_SIZE: int(10, 1, 200),
  DATA_DIR: z.string().min(1).default('./data'),
  MIGRATE_ON_START: bool(true),
  REDIS_URL: url(['redis:', 'rediss:']),
  JWT_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, { message: 'must be at least 32 characters' }),
  ACCESS_TOKEN_TTL_SECONDS: int(900, 60, 86_400),
  REFRESH_TOKEN_TTL_DAYS: int(30, 1, 365),
  APP_VERSION: optionalString,
  RELEASE: optionalString,
  SENTRY_DSN: url(['http:', 'https:']),
  SENTRY_TRACES_SAMPLE_RATE: rate(),
  TRUST_PROXY: trustProxy,
  WORKER_PORT: int(9101, 0, 65535),
  RATE_LIMIT_ENABLED: bool(true),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 0, 600_000),
  SHUTDOWN_DRAIN_DELAY_MS: int(0, 0, 600_000),
  BODY_LIMIT_BYTES: int(1_048_576, 1_024, 104_857_600),
});

export interface Config {
  environment: Environment;
  isProduction: boolean;
  port: number;
  host: string;
  version: string;
  release: string;
  log: { level: string; format: 'text' | 'json'; file?: string };
  metrics: { enabled: boolean; token?: string; businessRefreshIntervalMs: number };
  database: { url?: string; poolSize: number; dataDir: string; migrateOnStart: boolean };
  redisUrl?: string;
  auth: { jwtSecret?: string; accessTokenTtlSeconds: number; refreshTokenTtlDays: number };
  sentry: { dsn?: string; tracesSampleRate: number };
  trustProxy: boolean | number | string[];
  workerPort: number;
  rateLimit: { enabled: boolean };
  shutdown: { timeoutMs: number; drainDelayMs: number };
  bodyLimitBytes: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment; throws ConfigError whose message is one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const allowed = issue.code === 'invalid_value' ? `must be one of ${issue.values.join(', ')}` : issue.message;
    throw new ConfigError(`Invalid configuration: ${name} ${allowed} (got ${JSON.stringify(env[name] ?? '')})`);
  }
  const e = parsed.data;
  const isProduction = e.ENVIRONMENT === 'production';
  if (isProduction && !e.JWT_SECRET) {
    throw new ConfigError('Invalid configuration: JWT_SECRET is required when ENVIRONMENT=production');
  }
  const version = e.APP_VERSION ?? PACKAGE_VERSION;
  return {
    environment: e.ENVIRONMENT,
    isProduction,
    port: e.PORT,
    host: e.HOST,
    version,
    release: e.RELEASE ?? `nest-egg@${version}`,
    log: { level: e.LOG_LEVEL, format: (e.LOG_FORMAT ?? (isProduction ? 'json' : 'text')) as 'text' | 'json', file: e.LOG_FILE },
    metrics: { enabled: e.METRICS_ENABLED, token: e.METRICS_TOKEN, businessRefreshIntervalMs: e.BUSINESS_METRICS_INTERVAL_MS },
    database: { url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE, dataDir: e.DATA_DIR, migrateOnStart: e.MIGRATE_ON_START },
    redisUrl: e.REDIS_URL,
    auth: { jwtSecret: e.JWT_SECRET, accessTokenTtlSeconds: e.ACCESS_TOKEN_TTL_SECONDS, refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS },
    sentry: { dsn: e.SENTRY_DSN, tracesSampleRate: e.SENTRY_TRACES_SAMPLE_RATE ?? (e.ENVIRONMENT === 'development' ? 1.0 : 0.1) },
    trustProxy: e.TRUST_PROXY,
    workerPort: e.WORKER_PORT,
    rateLimit: { enabled: e.RATE_LIMIT_ENABLED },
    shutdown: { timeoutMs: e.SHUTDOWN_TIMEOUT_MS, drainDelayMs: e.SHUTDOWN_DRAIN_DELAY_MS },
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
  };
}
