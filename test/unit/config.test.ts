import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, PACKAGE_VERSION } from '../../src/config.ts';

const SECRET = 'a-production-secret-of-at-least-32-chars';

/** The ConfigError thrown for `env`, or a failure if none is thrown. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('gives every variable its default on an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      environment: 'development',
      isProduction: false,
      port: 8000,
      host: '127.0.0.1',
      version: PACKAGE_VERSION,
      release: `nest-egg@${PACKAGE_VERSION}`,
      log: { level: 'info', format: 'text', file: undefined },
      metrics: { enabled: true, token: undefined, businessRefreshIntervalMs: 30_000 },
      database: { url: undefined, poolSize: 10, dataDir: './data', migrateOnStart: true },
      redisUrl: undefined,
      auth: { jwtSecret: undefined, accessTokenTtlSeconds: 900, refreshTokenTtlDays: 30 },
      sentry: { dsn: undefined, tracesSampleRate: 1 },
      trustProxy: false,
      workerPort: 9101,
      shutdown: { timeoutMs: 10_000, drainDelayMs: 0 },
      bodyLimitBytes: 1_048_576,
    });
    expect(c.rateLimit.enabled).toBe(true);
  });

  it('keeps the audit trail 400 days by default, purged daily at 04:00 UTC, both configurable', () => {
    const c = loadConfig({});
    expect(c.audit).toEqual({ retentionDays: 400 });
    expect(c.jobs.schedules.auditRetention).toEqual({ hour: 4, minute: 0 });
    const set = loadConfig({ AUDIT_RETENTION_DAYS: '30', SCHEDULE_AUDIT_RETENTION: 'off' });
    expect(set.audit.retentionDays).toBe(30);
    expect(set.jobs.schedules.auditRetention).toBeNull();
  });

  it('parses every variable of ARCHITECTURE §5', () => {
    const c = loadConfig({
      ENVIRONMENT: 'staging',
      PORT: '9000',
      HOST: '0.0.0.0',
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      LOG_FILE: '/app/logs/api.log',
      METRICS_ENABLED: 'false',
      METRICS_TOKEN: 'scrape-token',
      BUSINESS_METRICS_INTERVAL_MS: '5000',
      DATABASE_URL: 'postgres://app:pw@db:5432/nest_egg',
      DATABASE_POOL_SIZE: '20',
      DATA_DIR: '/var/lib/nest-egg',
      MIGRATE_ON_START: 'false',
      REDIS_URL: 'redis://cache:6379/0',
      JWT_SECRET: SECRET,
      ACCESS_TOKEN_TTL_SECONDS: '600',
      REFRESH_TOKEN_TTL_DAYS: '7',
      APP_VERSION: '2.3.4',
      RELEASE: 'nest-egg@2.3.4+abc',
      SENTRY_DSN: 'https://key@sentry.example.com/1',
      SENTRY_TRACES_SAMPLE_RATE: '0.25',
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
      WORKER_PORT: '9200',
      RATE_LIMIT_ENABLED: 'false',
      RATE_LIMIT_POLICIES: 'transactions=50/30',
      SHUTDOWN_TIMEOUT_MS: '3000',
      SHUTDOWN_DRAIN_DELAY_MS: '500',
      BODY_LIMIT_BYTES: '2048',
    });
    expect(c).toMatchObject({
      environment: 'staging',
      isProduction: false,
      port: 9000,
      host: '0.0.0.0',
      version: '2.3.4',
      release: 'nest-egg@2.3.4+abc',
      log: { level: 'debug', format: 'json', file: '/app/logs/api.log' },
      metrics: { enabled: false, token: 'scrape-token', businessRefreshIntervalMs: 5000 },
      database: { url: 'postgres://app:pw@db:5432/nest_egg', poolSize: 20, dataDir: '/var/lib/nest-egg', migrateOnStart: false },
      redisUrl: 'redis://cache:6379/0',
      auth: { jwtSecret: SECRET, accessTokenTtlSeconds: 600, refreshTokenTtlDays: 7 },
      sentry: { dsn: 'https://key@sentry.example.com/1', tracesSampleRate: 0.25 },
      trustProxy: ['10.0.0.0/8', '127.0.0.1'],
      workerPort: 9200,
      shutdown: { timeoutMs: 3000, drainDelayMs: 500 },
      bodyLimitBytes: 2048,
    });
    expect(c.rateLimit.enabled).toBe(false);
    expect(c.rateLimit.policies.find((p) => p.name === 'transactions')).toMatchObject({ limit: 50, windowSeconds: 30 });
  });

  it.each([
    ['INFO', 'info'],
    ['info', 'info'],
    ['warning', 'warn'],
    ['WARN', 'warn'],
    ['Debug', 'debug'],
    ['ERROR', 'error'],
    ['CRITICAL', 'fatal'],
    [' trace ', 'trace'],
  ])('LOG_LEVEL=%j means %s', (value, level) => {
    expect(loadConfig({ LOG_LEVEL: value }).log.level).toBe(level);
  });

  it('LOG_FORMAT defaults to json in production and text elsewhere, and an explicit value wins', () => {
    expect(loadConfig({ ENVIRONMENT: 'production', JWT_SECRET: SECRET }).log.format).toBe('json');
    for (const environment of ['development', 'test', 'staging']) expect(loadConfig({ ENVIRONMENT: environment }).log.format).toBe('text');
    expect(loadConfig({ ENVIRONMENT: 'production', JWT_SECRET: SECRET, LOG_FORMAT: 'TEXT' }).log.format).toBe('text');
    expect(loadConfig({ LOG_FORMAT: 'Json' }).log.format).toBe('json');
  });

  it('accepts the usual spellings of booleans and of ENVIRONMENT in any case', () => {
    for (const v of ['true', 'TRUE', '1', 'yes', 'on']) expect(loadConfig({ METRICS_ENABLED: v }).metrics.enabled).toBe(true);
    for (const v of ['false', 'False', '0', 'no', 'off']) expect(loadConfig({ METRICS_ENABLED: v }).metrics.enabled).toBe(false);
    expect(loadConfig({ ENVIRONMENT: 'Production', JWT_SECRET: SECRET }).isProduction).toBe(true);
  });

  it('treats an empty value as unset (`PORT=` in an env file)', () => {
    const c = loadConfig({ PORT: '', ENVIRONMENT: '', LOG_LEVEL: ' ', HOST: '', DATA_DIR: '', DATABASE_URL: '', JWT_SECRET: '' });
    expect(c).toMatchObject({ port: 8000, environment: 'development', host: '127.0.0.1', log: { level: 'info' }, database: { dataDir: './data', url: undefined } });
    expect(c.auth.jwtSecret).toBeUndefined();
  });

  it('reads TRUST_PROXY as a flag, a hop count or a list', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).toBe(false);
  });

  it('samples every trace in development and a tenth elsewhere unless told', () => {
    expect(loadConfig({}).sentry.tracesSampleRate).toBe(1);
    expect(loadConfig({ ENVIRONMENT: 'staging' }).sentry.tracesSampleRate).toBe(0.1);
    expect(loadConfig({ SENTRY_TRACES_SAMPLE_RATE: '0' }).sentry.tracesSampleRate).toBe(0);
  });

  it.each([
    ['PORT', 'abc'],
    ['AUDIT_RETENTION_DAYS', '0'],
    ['AUDIT_RETENTION_DAYS', 'forever'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['LOG_FORMAT', 'xml'],
    ['LOG_LEVEL', 'verbose'],
    ['ENVIRONMENT', 'prod'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'http://cache:6379'],
    ['SENTRY_DSN', 'ftp://key@sentry/1'],
    ['SENTRY_TRACES_SAMPLE_RATE', '2'],
    ['SENTRY_TRACES_SAMPLE_RATE', 'half'],
    ['METRICS_ENABLED', 'maybe'],
    ['RATE_LIMIT_ENABLED', 'sometimes'],
    ['MIGRATE_ON_START', '2'],
    ['DATABASE_POOL_SIZE', '0'],
    ['WORKER_PORT', '-1'],
    ['SHUTDOWN_TIMEOUT_MS', 'soon'],
    ['TRUST_PROXY', 'everyone!'],
    ['BODY_LIMIT_BYTES', '10'],
    ['RATE_LIMIT_POLICIES', 'transactions=lots'],
    ['CORS_ORIGINS', 'https://app.example.com/'],
    ['CORS_ORIGINS', 'https://app.example.com/path'],
    ['CORS_ORIGINS', 'https://App.Example.com'],
    ['CORS_ORIGINS', 'https://app.example.com:443'],
    ['CORS_ORIGINS', '*'],
    ['CORS_ORIGINS', 'app.example.com'],
    ['CORS_ORIGINS', 'ftp://files.example.com'],
    ['CORS_ORIGINS', 'https://ok.example.com,null'],
    ['CORS_ALLOW_CREDENTIALS', 'perhaps'],
  ])('%s=%j is refused with one line naming the variable', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(new RegExp(`^Invalid configuration: ${name} `));
  });

  it('reads CORS_ORIGINS as exact origins, none by default, and CORS_ALLOW_CREDENTIALS off by default', () => {
    expect(loadConfig({}).cors).toEqual({ origins: [], allowCredentials: false });
    expect(loadConfig({ CORS_ORIGINS: ' https://app.example.com , http://localhost:5173,https://app.example.com', CORS_ALLOW_CREDENTIALS: 'true' }).cors).toEqual({
      origins: ['https://app.example.com', 'http://localhost:5173'],
      allowCredentials: true,
    });
    expect(configError({ CORS_ORIGINS: 'https://app.example.com/' }).message).toMatch(
      /^Invalid configuration: CORS_ORIGINS must be comma-separated origins like https:\/\/app\.example\.com \(scheme:\/\/host\[:port\]/,
    );
  });

  it('says what is allowed', () => {
    expect(configError({ LOG_FORMAT: 'xml' }).message).toBe('Invalid configuration: LOG_FORMAT must be text or json (got "xml")');
    expect(configError({ ENVIRONMENT: 'prod' }).message).toContain('must be one of development, test, staging, production');
    expect(configError({ SENTRY_TRACES_SAMPLE_RATE: '2' }).message).toContain('must be a number from 0 to 1');
  });

  it('takes enumerated values in any case', () => {
    const c = loadConfig({ ENVIRONMENT: 'Staging', BANK_SYNC_PROVIDER: 'Demo', PLAID_ENV: 'Sandbox', PLAID_COUNTRY_CODES: 'us, ca' });
    expect(c.environment).toBe('staging');
    expect(c.bankSync.provider).toBe('demo');
    expect(c.bankSync.plaid.env).toBe('sandbox');
    expect(c.bankSync.plaid.countryCodes).toEqual(['US', 'CA']);
    expect(configError({ PLAID_ENV: 'Live' }).message).toBe('Invalid configuration: PLAID_ENV must be one of sandbox, development, production (got "Live")');
  });

  it('never echoes a credential in the error line', () => {
    const secret = configError({ JWT_SECRET: 'too-short-but-secret' }).message;
    expect(secret).toContain('JWT_SECRET');
    expect(secret).not.toContain('too-short-but-secret');
    const url = configError({ DATABASE_URL: 'mysql://admin:hunter2@db/x' }).message;
    expect(url).toContain('DATABASE_URL');
    expect(url).not.toContain('hunter2');
    expect(url).toContain('mysql://***@db/x');
    expect(configError({ SENTRY_DSN: 'ftp://publickey123@sentry/1' }).message).not.toContain('publickey123');
    const key = configError({ TOKEN_ENCRYPTION_KEY: 'not-a-32-byte-key-but-still-secret' }).message;
    expect(key).toMatch(/^Invalid configuration: TOKEN_ENCRYPTION_KEY /);
    expect(key).not.toContain('still-secret');
    // A variable that merely mentions a token is not hidden: its value helps the operator.
    expect(configError({ ACCESS_TOKEN_TTL_SECONDS: 'soon' }).message).toContain('(got "soon")');
  });

  it('keeps the error line on one line whatever the value holds', () => {
    const err = configError({ PORT: '80\n81' });
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('refuses production without JWT_SECRET, and a short secret anywhere', () => {
    const err = configError({ ENVIRONMENT: 'production' });
    expect(err.message).toBe('Invalid configuration: JWT_SECRET is required when ENVIRONMENT=production');
    expect(configError({ JWT_SECRET: 'short' }).message).toMatch(/^Invalid configuration: JWT_SECRET must be at least 32 characters/);
    expect(loadConfig({ ENVIRONMENT: 'production', JWT_SECRET: SECRET }).isProduction).toBe(true);
  });

  it('reads the per-account sign-in throttle: defaults, fractional seconds, and a cap below the base refused', () => {
    expect(loadConfig({}).loginThrottle).toEqual({ enabled: true, failures: 5, baseMs: 30_000, maxMs: 900_000, memoryMs: 3_600_000 });
    expect(loadConfig({ LOGIN_THROTTLE_FAILURES: '3', LOGIN_THROTTLE_BASE_SECONDS: '0.5', LOGIN_THROTTLE_MAX_SECONDS: '2', LOGIN_THROTTLE_ENABLED: 'false' }).loginThrottle)
      .toMatchObject({ enabled: false, failures: 3, baseMs: 500, maxMs: 2_000 });
    expect(configError({ LOGIN_THROTTLE_FAILURES: '0' }).message).toBe('Invalid configuration: LOGIN_THROTTLE_FAILURES must be an integer from 1 to 1000 (got "0")');
    expect(configError({ LOGIN_THROTTLE_BASE_SECONDS: 'soon' }).message).toBe('Invalid configuration: LOGIN_THROTTLE_BASE_SECONDS must be a number of seconds from 0.1 to 86400 (got "soon")');
    expect(configError({ LOGIN_THROTTLE_BASE_SECONDS: '60', LOGIN_THROTTLE_MAX_SECONDS: '10' }).message).toMatch(/^Invalid configuration: LOGIN_THROTTLE_MAX_SECONDS must be at least LOGIN_THROTTLE_BASE_SECONDS/);
  });
});
