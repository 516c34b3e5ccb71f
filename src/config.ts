/**
 * Every environment variable the service reads, parsed and validated once.
 * Nothing else in src/ reads process.env: the typed Config is passed down.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { LoginThrottleOptions } from './ratelimit/account-throttle.ts';
import type { OtlpOptions } from './observability/tracing.ts';
import { POLICY_NAMES, resolvePolicies, type PolicyOverride, type RateLimitOptions } from './ratelimit/policies.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
export const PACKAGE_VERSION: string = pkg.version;

const ENVIRONMENTS = ['development', 'test', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];
/** A time of day in UTC. */
export interface DailyTime {
  hour: number;
  minute: number;
}

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

/** A duration in seconds, fractions allowed (`0.5`), returned in milliseconds. */
const secondsAsMs = (fallbackSeconds: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return Math.round(fallbackSeconds * 1000);
      const n = Number(v);
      if (!/^\s*\d+(\.\d+)?\s*$/.test(v) || !Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be a number of seconds from ${min} to ${max}` });
        return z.NEVER;
      }
      return Math.round(n * 1000);
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

/** A link template for the console: an http(s) URL with the placeholder in it (replaced by the id). */
const linkTemplate = (placeholder: string) =>
  url(['http:', 'https:']).refine((v) => v === undefined || v.includes(placeholder), { message: `must contain ${placeholder}` });

/** `k1=v1,k2=v2` with percent-encoded values (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES; W3C Baggage's list form). */
const keyValueList = z
  .string()
  .optional()
  .transform((v, ctx): Record<string, string> => {
    const out: Record<string, string> = {};
    if (v === undefined || v.trim() === '') return out;
    for (const part of v.split(',')) {
      if (part.trim() === '') continue;
      const eq = part.indexOf('=');
      const key = eq > 0 ? part.slice(0, eq).trim() : '';
      let value: string | undefined;
      try {
        value = eq > 0 ? decodeURIComponent(part.slice(eq + 1).trim()) : undefined;
      } catch {
        value = undefined;
      }
      if (!key || value === undefined || !/^[\x21-\x7e]+$/.test(key)) {
        ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of key=value pairs (values percent-encoded)' });
        return z.NEVER;
      }
      out[key] = value;
    }
    return out;
  });

const OTEL_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

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

/**
 * CORS_ORIGINS: comma-separated exact origins (`https://app.example.com`, `http://localhost:5173`),
 * each written as a browser sends it in `Origin` (scheme://host[:port], lower case, no path, no
 * default port), since they are compared as strings. Empty: no CORS at all.
 */
const corsOrigins = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v.trim() === '') return [];
    const list = v.split(',').map((x) => x.trim()).filter(Boolean);
    for (const item of list) {
      let origin: string | undefined;
      try {
        const u = new URL(item);
        if (u.protocol === 'http:' || u.protocol === 'https:') origin = u.origin;
      } catch {
        origin = undefined;
      }
      if (origin !== item) {
        ctx.addIssue({ code: 'custom', message: `must be comma-separated origins like https://app.example.com (scheme://host[:port], lower case, no path or trailing slash): ${JSON.stringify(item.slice(0, 80))} is not` });
        return z.NEVER;
      }
    }
    return [...new Set(list)];
  });

/** RATE_LIMIT_POLICIES: `name=limit/window_seconds` pairs, comma-separated, e.g. `transactions=100/60,default=600/60`. */
const rateLimitPolicies = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const out: Record<string, PolicyOverride> = {};
    if (v === undefined || v.trim() === '') return out;
    for (const item of v.split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = /^([a-z0-9-]+)\s*=\s*(\d+)\s*\/\s*(\d+)$/i.exec(item);
      const name = m?.[1]?.toLowerCase();
      if (!m || !name || !POLICY_NAMES.includes(name)) {
        ctx.addIssue({ code: 'custom', message: `must be name=limit/window_seconds pairs with names from ${POLICY_NAMES.join(', ')}` });
        return z.NEVER;
      }
      const limit = Number(m[2]);
      const windowSeconds = Number(m[3]);
      if (limit < 1 || limit > 1_000_000 || windowSeconds < 1 || windowSeconds > 86_400) {
        ctx.addIssue({ code: 'custom', message: `${name}: limit must be 1 to 1000000 and window 1 to 86400 seconds` });
        return z.NEVER;
      }
      out[name] = { limit, windowSeconds };
    }
    return out;
  });

/** A daily schedule: `HH:MM` (UTC), or `off`. */
const dailyAt = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx): { hour: number; minute: number } | null => {
      const s = (v === undefined || v.trim() === '' ? fallback : v).trim().toLowerCase();
      if (s === 'off') return null;
      const m = /^(\d{1,2}):(\d{2})$/.exec(s);
      if (!m || Number(m[1]) > 23 || Number(m[2]) > 59) {
        ctx.addIssue({ code: 'custom', message: 'must be a UTC time of day HH:MM (e.g. 06:00) or off' });
        return z.NEVER;
      }
      return { hour: Number(m[1]), minute: Number(m[2]) };
    });

/** TOKEN_ENCRYPTION_KEY: 32 bytes, as 64 hex digits or base64/base64url. */
const encryptionKey = optionalString.transform((v, ctx) => {
  if (v === undefined) return undefined;
  const key = /^[0-9a-f]{64}$/i.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  if (key.length !== 32 || (!/^[0-9a-f]{64}$/i.test(v) && !/^[A-Za-z0-9+/_-]{43}=?$/.test(v))) {
    ctx.addIssue({ code: 'custom', message: 'must be 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)' });
    return z.NEVER;
  }
  return key;
});

/** Enumerated values are accepted in any case (`ENVIRONMENT=Production`, `PLAID_ENV=Sandbox`). */
function anyCase<T extends z.ZodType>(inner: T) {
  return z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), inner);
}

const schema = z.object({
  ENVIRONMENT: anyCase(z.enum(ENVIRONMENTS).default('development')),
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
  // The standard OpenTelemetry variables (the exporter and sampler ones this service supports).
  OTEL_SDK_DISABLED: bool(false),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: url(['http:', 'https:']),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url(['http:', 'https:']),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(['http/protobuf', 'http/json']).optional(),
  OTEL_EXPORTER_OTLP_HEADERS: keyValueList,
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: keyValueList,
  OTEL_EXPORTER_OTLP_TIMEOUT: int(10_000, 100, 60_000),
  OTEL_SERVICE_NAME: optionalString,
  OTEL_RESOURCE_ATTRIBUTES: keyValueList,
  OTEL_TRACES_SAMPLER: z.enum(OTEL_SAMPLERS).optional(),
  OTEL_TRACES_SAMPLER_ARG: rate(),
  OTEL_BSP_MAX_QUEUE_SIZE: int(2048, 1, 100_000),
  OTEL_BSP_SCHEDULE_DELAY: int(5000, 10, 60_000),
  TRACE_PROPAGATION_TARGETS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const list = (v ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
      if (list.every((x) => /^(?:\*\.)?[a-z0-9.-]+$/.test(x))) return list;
      ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of host names (`api.internal`, `*.internal`)' });
      return z.NEVER;
    }),
  TRUST_PROXY: trustProxy,
  WORKER_PORT: int(9101, 0, 65535),
  WORKER_CONCURRENCY: int(5, 1, 100),
  WORKER_LOCK_DURATION_MS: int(30_000, 1_000, 600_000),
  WORKER_STALLED_INTERVAL_MS: int(30_000, 500, 600_000),
  JOB_QUEUE_NAME: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, - or _').default('nest-egg'),
  JOB_QUEUE_PREFIX: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'must be 1 to 64 printable characters without spaces').default('nest-egg:bull'),
  JOB_ATTEMPTS: int(3, 1, 20),
  JOB_BACKOFF_MS: int(5_000, 10, 3_600_000),
  JOB_KEEP_COMPLETED: int(1_000, 0, 1_000_000),
  JOB_KEEP_FAILED: int(5_000, 1, 1_000_000),
  SCHEDULE_BUDGET_ALERTS: dailyAt('06:00'),
  SCHEDULE_TOKEN_CLEANUP: dailyAt('03:30'),
  SCHEDULE_AUDIT_RETENTION: dailyAt('04:00'),
  AUDIT_RETENTION_DAYS: int(400, 1, 36_500),
  BANK_SYNC_PROVIDER: anyCase(z.enum(['plaid', 'demo', 'none']).optional()),
  PLAID_CLIENT_ID: optionalString,
  PLAID_SECRET: optionalString,
  PLAID_ENV: anyCase(z.enum(['sandbox', 'development', 'production']).default('sandbox')),
  PLAID_BASE_URL: url(['http:', 'https:']),
  PLAID_WEBHOOK_URL: url(['https:', 'http:']),
  PLAID_WEBHOOK_VERIFICATION: bool(true),
  PLAID_TIMEOUT_MS: int(10_000, 100, 120_000),
  PLAID_SYNC_PAGE_SIZE: int(500, 1, 500),
  PLAID_COUNTRY_CODES: z.preprocess((v) => (typeof v === 'string' ? v.replace(/\s/g, '').toUpperCase() : v), z.string().regex(/^[A-Z]{2}(,[A-Z]{2})*$/, 'must be comma-separated ISO country codes, e.g. US,CA').default('US')),
  PLAID_CLIENT_NAME: z.string().min(1).max(30).default('Nest Egg'),
  TOKEN_ENCRYPTION_KEY: encryptionKey,
  RATE_LIMIT_ENABLED: bool(true),
  RATE_LIMIT_POLICIES: rateLimitPolicies,
  RATE_LIMIT_KEY_PREFIX: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'must be 1 to 64 printable characters without spaces').default('nest-egg:rl:'),
  RATE_LIMIT_STORE_TIMEOUT_MS: int(50, 1, 5_000),
  RATE_LIMIT_STORE_COOLDOWN_MS: int(1_000, 0, 600_000),
  LOGIN_THROTTLE_ENABLED: bool(true),
  LOGIN_THROTTLE_FAILURES: int(5, 1, 1_000),
  LOGIN_THROTTLE_BASE_SECONDS: secondsAsMs(30, 0.1, 86_400),
  LOGIN_THROTTLE_MAX_SECONDS: secondsAsMs(900, 0.1, 86_400),
  LOGIN_THROTTLE_RESET_SECONDS: secondsAsMs(3_600, 1, 604_800),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 0, 600_000),
  SHUTDOWN_DRAIN_DELAY_MS: int(0, 0, 600_000),
  BODY_LIMIT_BYTES: int(1_048_576, 1_024, 104_857_600),
  CORS_ORIGINS: corsOrigins,
  CORS_ALLOW_CREDENTIALS: bool(false),
  OPS_CONSOLE_ENABLED: bool(true),
  OPS_SESSION_TTL_SECONDS: int(14_400, 60, 86_400),
  OPS_SESSION_IDLE_SECONDS: int(900, 30, 86_400),
  OPS_SESSION_KEY_PREFIX: z.string().regex(/^[\x21-\x7e]{1,64}$/, 'must be 1 to 64 printable characters without spaces').default('nest-egg:ops:'),
  OPS_SAMPLE_INTERVAL_SECONDS: int(10, 1, 300),
  OPS_TRACE_URL: linkTemplate('{trace_id}'),
  OPS_SENTRY_EVENT_URL: linkTemplate('{event_id}'),
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
  /** The traces sample rate Sentry uses: the one decision of `tracing` (an OTel sampler, when set, wins). */
  sentry: { dsn?: string; tracesSampleRate: number };
  /** W3C Trace Context, the head sampling decision and OTLP export (src/observability/trace-context.ts, tracing.ts). */
  tracing: TracingConfig;
  trustProxy: boolean | number | string[];
  workerPort: number;
  jobs: {
    /** BullMQ queue name and Redis key prefix (server mode). */
    queueName: string;
    prefix: string;
    concurrency: number;
    /** Attempts per job (the first run included) and the base of the exponential backoff. */
    attempts: number;
    backoffMs: number;
    /** Stalled-job recovery: a worker's lock on a job, and how often workers look for expired locks. */
    lockDurationMs: number;
    stalledIntervalMs: number;
    keepCompleted: number;
    keepFailed: number;
    /** Daily schedules (UTC), null when off. */
    schedules: { budgetAlerts: DailyTime | null; tokenCleanup: DailyTime | null; auditRetention: DailyTime | null };
  };
  /** The audit trail: rows older than retentionDays are purged by the daily audit retention job. */
  audit: { retentionDays: number };
  bankSync: {
    /** plaid with credentials; demo in development/test without them; none otherwise. */
    provider: 'plaid' | 'demo' | 'none';
    /** AES-256-GCM key for access tokens at rest (a persisted development key is used when absent outside production). */
    encryptionKey?: Buffer;
    plaid: {
      clientId?: string;
      secret?: string;
      env: 'sandbox' | 'development' | 'production';
      /** Overrides the environment's URL (tests point it at a local fake). */
      baseUrl?: string;
      webhookUrl?: string;
      webhookVerification: boolean;
      timeoutMs: number;
      syncPageSize: number;
      countryCodes: string[];
      clientName: string;
    };
  };
  rateLimit: RateLimitOptions;
  /** Per-account throttling of failed sign-ins (src/ratelimit/account-throttle.ts). */
  loginThrottle: LoginThrottleOptions;
  shutdown: { timeoutMs: number; drainDelayMs: number };
  bodyLimitBytes: number;
  /** Browser cross-origin access: the exact allowed origins (none: no CORS headers at all). */
  cors: { origins: string[]; allowCredentials: boolean };
  /** The operator console at /ops (src/routes/ops/). */
  ops: {
    enabled: boolean;
    /** A console session ends this long after sign-in, or after this long without a request. */
    sessionTtlSeconds: number;
    sessionIdleSeconds: number;
    /** Redis key prefix of the sessions in server mode (shared by every replica). */
    sessionKeyPrefix: string;
    /** How often the console's charts sample this process's metrics. */
    sampleIntervalSeconds: number;
    /** Links from a trace id / a Sentry event id (`{trace_id}` / `{event_id}` is replaced). */
    traceUrl?: string;
    sentryEventUrl?: string;
  };
}

export interface TracingConfig {
  /** Probability that a new trace is sampled. */
  sampleRate: number;
  /** A continued trace keeps its caller's sampled flag. */
  parentBased: boolean;
  /** Which variable decided: OTEL_TRACES_SAMPLER when set, else SENTRY_TRACES_SAMPLE_RATE (or its default). */
  sampler: 'otel' | 'sentry';
  /** OTLP/HTTP export of sampled traces; undefined when no endpoint is configured (or OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none). */
  otlp?: OtlpOptions;
  /** Hosts whose outgoing calls carry `traceparent` (TRACE_PROPAGATION_TARGETS); none by default. */
  propagationTargets: string[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Server mode (DATABASE_URL) runs any number of API replicas and workers on one database: secrets
 * each process generated for itself would make them reject each other's tokens and leave workers
 * unable to open the bank tokens the API sealed; kept in the shared database, the token key would
 * sit beside the ciphertexts it protects. So `serve` and `worker` need both configured there, in
 * every environment. Throws the one-line error naming what is missing.
 */
export function requireSharedSecrets(config: Config): void {
  if (!config.database.url) return;
  const missing = [
    !config.auth.jwtSecret && 'JWT_SECRET',
    config.bankSync.provider !== 'none' && !config.bankSync.encryptionKey && 'TOKEN_ENCRYPTION_KEY',
  ].filter((name): name is string => typeof name === 'string');
  if (missing.length === 0) return;
  throw new ConfigError(
    `Invalid configuration: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required with DATABASE_URL ` +
      '(every API replica and worker must share them; make each with `openssl rand -base64 32`)',
  );
}

/** Variables whose value is or holds a credential (JWT_SECRET, METRICS_TOKEN, PLAID_SECRET, TOKEN_ENCRYPTION_KEY, the OTLP headers…): a bad one is named, never echoed. */
const SECRET_VARIABLE = /SECRET|PASSWORD|(^|_)TOKEN$|(^|_)KEY$|_HEADERS$/;

/** The offending value for the error line, without credentials (a URL's user part may hold a password or key). */
function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return '';
  if (SECRET_VARIABLE.test(name)) return ' (value not shown)';
  const safe = value.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/i, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
  return ` (got ${JSON.stringify(safe.length > 80 ? `${safe.slice(0, 80)}…` : safe)})`;
}

/** Parses the environment; throws ConfigError whose message is one line naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty value (`PORT=` in an env file) means unset, for every variable alike.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'environment');
    const allowed = issue.code === 'invalid_value' ? `must be one of ${issue.values.join(', ')}` : issue.message;
    throw new ConfigError(`Invalid configuration: ${name} ${allowed}${shownValue(name, present[name])}`);
  }
  const e = parsed.data;
  const isProduction = e.ENVIRONMENT === 'production';
  if (isProduction && !e.JWT_SECRET) {
    throw new ConfigError('Invalid configuration: JWT_SECRET is required when ENVIRONMENT=production');
  }
  const plaidConfigured = e.PLAID_CLIENT_ID !== undefined && e.PLAID_SECRET !== undefined;
  const bankSyncProvider = e.BANK_SYNC_PROVIDER ?? (plaidConfigured ? 'plaid' : isProduction ? 'none' : 'demo');
  if (bankSyncProvider === 'plaid' && !plaidConfigured) {
    throw new ConfigError('Invalid configuration: PLAID_CLIENT_ID and PLAID_SECRET are required when BANK_SYNC_PROVIDER=plaid');
  }
  if (isProduction && bankSyncProvider !== 'none' && !e.TOKEN_ENCRYPTION_KEY) {
    throw new ConfigError('Invalid configuration: TOKEN_ENCRYPTION_KEY is required when ENVIRONMENT=production and bank sync is on');
  }
  if (e.LOGIN_THROTTLE_MAX_SECONDS < e.LOGIN_THROTTLE_BASE_SECONDS) {
    throw new ConfigError(
      `Invalid configuration: LOGIN_THROTTLE_MAX_SECONDS must be at least LOGIN_THROTTLE_BASE_SECONDS (${e.LOGIN_THROTTLE_BASE_SECONDS / 1000}) (got ${JSON.stringify(present.LOGIN_THROTTLE_MAX_SECONDS ?? String(e.LOGIN_THROTTLE_MAX_SECONDS / 1000))})`,
    );
  }
  const version = e.APP_VERSION ?? PACKAGE_VERSION;
  const tracing = tracingConfig(e, version);
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
    sentry: { dsn: e.SENTRY_DSN, tracesSampleRate: tracing.sampleRate },
    tracing,
    trustProxy: e.TRUST_PROXY,
    workerPort: e.WORKER_PORT,
    jobs: {
      queueName: e.JOB_QUEUE_NAME,
      prefix: e.JOB_QUEUE_PREFIX,
      concurrency: e.WORKER_CONCURRENCY,
      attempts: e.JOB_ATTEMPTS,
      backoffMs: e.JOB_BACKOFF_MS,
      lockDurationMs: e.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS,
      keepCompleted: e.JOB_KEEP_COMPLETED,
      keepFailed: e.JOB_KEEP_FAILED,
      schedules: { budgetAlerts: e.SCHEDULE_BUDGET_ALERTS, tokenCleanup: e.SCHEDULE_TOKEN_CLEANUP, auditRetention: e.SCHEDULE_AUDIT_RETENTION },
    },
    audit: { retentionDays: e.AUDIT_RETENTION_DAYS },
    bankSync: {
      provider: bankSyncProvider,
      encryptionKey: e.TOKEN_ENCRYPTION_KEY,
      plaid: {
        clientId: e.PLAID_CLIENT_ID,
        secret: e.PLAID_SECRET,
        env: e.PLAID_ENV,
        baseUrl: e.PLAID_BASE_URL,
        webhookUrl: e.PLAID_WEBHOOK_URL,
        webhookVerification: e.PLAID_WEBHOOK_VERIFICATION,
        timeoutMs: e.PLAID_TIMEOUT_MS,
        syncPageSize: e.PLAID_SYNC_PAGE_SIZE,
        countryCodes: e.PLAID_COUNTRY_CODES.split(','),
        clientName: e.PLAID_CLIENT_NAME,
      },
    },
    rateLimit: {
      // On unless switched off; test runs (ENVIRONMENT=test) default to off, so API tests that
      // register many users from one address are not limited; the rate-limit tests opt in.
      enabled: env.RATE_LIMIT_ENABLED?.trim() ? e.RATE_LIMIT_ENABLED : e.ENVIRONMENT !== 'test',
      policies: resolvePolicies(e.RATE_LIMIT_POLICIES),
      keyPrefix: e.RATE_LIMIT_KEY_PREFIX,
      storeTimeoutMs: e.RATE_LIMIT_STORE_TIMEOUT_MS,
      storeCooldownMs: e.RATE_LIMIT_STORE_COOLDOWN_MS,
    },
    loginThrottle: {
      enabled: e.LOGIN_THROTTLE_ENABLED,
      failures: e.LOGIN_THROTTLE_FAILURES,
      baseMs: e.LOGIN_THROTTLE_BASE_SECONDS,
      maxMs: e.LOGIN_THROTTLE_MAX_SECONDS,
      memoryMs: e.LOGIN_THROTTLE_RESET_SECONDS,
    },
    shutdown: { timeoutMs: e.SHUTDOWN_TIMEOUT_MS, drainDelayMs: e.SHUTDOWN_DRAIN_DELAY_MS },
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    cors: { origins: e.CORS_ORIGINS, allowCredentials: e.CORS_ALLOW_CREDENTIALS },
    ops: {
      enabled: e.OPS_CONSOLE_ENABLED,
      sessionTtlSeconds: e.OPS_SESSION_TTL_SECONDS,
      sessionIdleSeconds: Math.min(e.OPS_SESSION_IDLE_SECONDS, e.OPS_SESSION_TTL_SECONDS),
      sessionKeyPrefix: e.OPS_SESSION_KEY_PREFIX,
      sampleIntervalSeconds: e.OPS_SAMPLE_INTERVAL_SECONDS,
      traceUrl: e.OPS_TRACE_URL,
      sentryEventUrl: e.OPS_SENTRY_EVENT_URL,
    },
  };
}

/**
 * One sampling decision per trace, for Sentry and OTLP alike. OTEL_TRACES_SAMPLER (with
 * OTEL_TRACES_SAMPLER_ARG) wins when set — it is the variable meant for exactly this; otherwise
 * SENTRY_TRACES_SAMPLE_RATE (default 1.0 in development, 0.1 elsewhere), parent based as Sentry is.
 */
function tracingConfig(e: z.infer<typeof schema>, version: string): TracingConfig {
  const sampler = e.OTEL_TRACES_SAMPLER;
  let sampleRate = e.SENTRY_TRACES_SAMPLE_RATE ?? (e.ENVIRONMENT === 'development' ? 1.0 : 0.1);
  let parentBased = true;
  if (sampler !== undefined) {
    parentBased = sampler.startsWith('parentbased_');
    const base = parentBased ? sampler.slice('parentbased_'.length) : sampler;
    sampleRate = base === 'always_on' ? 1 : base === 'always_off' ? 0 : (e.OTEL_TRACES_SAMPLER_ARG ?? 1);
  }
  const tracesUrl =
    e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (e.OTEL_EXPORTER_OTLP_ENDPOINT === undefined ? undefined : `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  const exporting = tracesUrl !== undefined && !e.OTEL_SDK_DISABLED && e.OTEL_TRACES_EXPORTER !== 'none';
  return {
    sampleRate,
    parentBased,
    sampler: sampler === undefined ? 'sentry' : 'otel',
    propagationTargets: e.TRACE_PROPAGATION_TARGETS,
    otlp: exporting
      ? {
          url: tracesUrl,
          protocol: e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
          headers: { ...e.OTEL_EXPORTER_OTLP_HEADERS, ...e.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
          timeoutMs: e.OTEL_EXPORTER_OTLP_TIMEOUT,
          serviceName: e.OTEL_SERVICE_NAME ?? e.OTEL_RESOURCE_ATTRIBUTES['service.name'] ?? 'nest-egg-api',
          resourceAttributes: { 'service.version': version, 'deployment.environment.name': e.ENVIRONMENT, ...e.OTEL_RESOURCE_ATTRIBUTES },
          maxQueueSize: e.OTEL_BSP_MAX_QUEUE_SIZE,
          scheduledDelayMs: e.OTEL_BSP_SCHEDULE_DELAY,
        }
      : undefined,
  };
}
