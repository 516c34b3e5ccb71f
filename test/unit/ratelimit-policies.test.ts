import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { POLICIES, PolicyResolver, isExempt, policyHeader, rateLimitHeader, resolvePolicies } from '../../src/ratelimit/policies.ts';
import { addressKey, clientId } from '../../src/ratelimit/identity.ts';

const resolver = new PolicyResolver(resolvePolicies());
const name = (method: string, route: string | undefined, authenticated: boolean) => resolver.match(method, route, authenticated)?.name ?? null;

describe('rate-limit policies', () => {
  it('matches the strict policies on method and route template', () => {
    expect(name('POST', '/api/v1/auth/login', false)).toBe('auth-login');
    expect(name('POST', '/api/v1/auth/register', false)).toBe('auth-register');
    expect(name('POST', '/api/v1/auth/refresh', true)).toBe('auth-refresh');
    expect(name('POST', '/api/v1/budgets/check-alerts', true)).toBe('budget-check-alerts');
    expect(name('POST', '/api/v1/plaid/link-token', true)).toBe('bank-linking');
    expect(name('POST', '/api/v1/plaid/exchange-token', true)).toBe('bank-linking');
    expect(name('POST', '/api/v1/plaid/webhook', false)).toBe('plaid-webhook');
  });

  it("applies the guide's transactions policy (100 per 60 s) to the module's templates", () => {
    expect(name('GET', '/api/v1/transactions', true)).toBe('transactions');
    expect(name('GET', '/api/v1/transactions/', true)).toBe('transactions');
    expect(name('PATCH', '/api/v1/transactions/:id', true)).toBe('transactions');
    const p = resolver.match('GET', '/api/v1/transactions', true)!;
    expect([p.limit, p.windowSeconds]).toEqual([100, 60]);
    // A template that merely starts with the same letters is not the transactions module.
    expect(name('GET', '/api/v1/transactions-export', true)).toBe('default');
  });

  it('falls back to the per-user default or the smaller anonymous quota', () => {
    expect(name('GET', '/api/v1/accounts', true)).toBe('default');
    expect(name('GET', '/api/v1/accounts', false)).toBe('anonymous');
    expect(name('GET', '/api/v1/auth/login', false)).toBe('anonymous'); // not POST
    const user = resolver.match('GET', '/api/v1/accounts', true)!;
    const anon = resolver.match('GET', '/api/v1/accounts', false)!;
    expect(anon.limit).toBeLessThan(user.limit);
  });

  it('limits unmatched requests under the default policies', () => {
    expect(name('GET', undefined, false)).toBe('anonymous');
    expect(name('GET', undefined, true)).toBe('default');
  });

  it('exempts liveness, metrics, docs and readiness', () => {
    for (const route of ['/health', '/metrics', '/docs', '/docs/', '/docs/static/*', '/docs/json', '/api/v1/monitoring/health']) {
      expect(isExempt(route)).toBe(true);
      expect(resolver.match('GET', route, false)).toBeNull();
    }
    expect(isExempt('/api/v1/monitoring/rate-limits')).toBe(false);
    expect(isExempt('/documents')).toBe(false);
  });

  it('formats the draft-ietf-httpapi-ratelimit-headers fields', () => {
    const p = { ...POLICIES.find((x) => x.name === 'default')!, limit: 100, windowSeconds: 60 };
    expect(policyHeader(p)).toBe('"default";q=100;w=60');
    expect(rateLimitHeader(p, 42, 18)).toBe('"default";r=42;t=18');
  });
});

describe('RATE_LIMIT_* configuration', () => {
  it('applies RATE_LIMIT_POLICIES overrides and keeps the other quotas', () => {
    const c = loadConfig({ RATE_LIMIT_POLICIES: 'transactions=5/10, default=1000/60' });
    const byName = Object.fromEntries(c.rateLimit.policies.map((p) => [p.name, p]));
    expect([byName.transactions!.limit, byName.transactions!.windowSeconds]).toEqual([5, 10]);
    expect([byName.default!.limit, byName.default!.windowSeconds]).toEqual([1000, 60]);
    expect(byName['auth-login']!.limit).toBe(POLICIES.find((p) => p.name === 'auth-login')!.limit);
    expect(c.rateLimit).toMatchObject({ enabled: true, keyPrefix: 'nest-egg:rl:', storeTimeoutMs: 50, storeCooldownMs: 1000 });
  });

  it.each([
    ['RATE_LIMIT_POLICIES', 'nonsense=1/1'],
    ['RATE_LIMIT_POLICIES', 'transactions=100'],
    ['RATE_LIMIT_POLICIES', 'transactions=0/60'],
    ['RATE_LIMIT_POLICIES', 'transactions=10/999999'],
    ['RATE_LIMIT_KEY_PREFIX', 'has space'],
    ['RATE_LIMIT_STORE_TIMEOUT_MS', '0'],
    ['RATE_LIMIT_ENABLED', 'maybe'],
  ])('rejects %s=%s with one line naming the variable', (variable, value) => {
    let error: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(variable);
    expect(message).not.toContain('\n');
  });

  it('RATE_LIMIT_ENABLED=false switches limiting off; test runs default to off unless they opt in', () => {
    expect(loadConfig({ RATE_LIMIT_ENABLED: 'false' }).rateLimit.enabled).toBe(false);
    expect(loadConfig({}).rateLimit.enabled).toBe(true);
    expect(loadConfig({ ENVIRONMENT: 'production', JWT_SECRET: 'x'.repeat(32) }).rateLimit.enabled).toBe(true);
    expect(loadConfig({ ENVIRONMENT: 'test' }).rateLimit.enabled).toBe(false);
    expect(loadConfig({ ENVIRONMENT: 'test', RATE_LIMIT_ENABLED: 'true' }).rateLimit.enabled).toBe(true);
  });
});

describe('the operator console', () => {
  const resolver = new PolicyResolver(POLICIES);
  it('signs in under the API sign-in policy, and polls under a budget of its own', () => {
    expect(resolver.match('POST', '/ops/api/session', false)?.name).toBe('auth-login');
    expect(resolver.match('GET', '/ops/api/session', false)?.name).toBe('ops-console');
    expect(resolver.match('GET', '/ops/api/overview', false)?.name).toBe('ops-console');
    expect(resolver.match('GET', '/ops', false)?.name).toBe('ops-console');
    expect(resolver.match('GET', '/opsx', false)?.name).toBe('anonymous');
    const ops = POLICIES.find((p) => p.name === 'ops-console')!;
    expect(ops).toMatchObject({ key: 'ip', limit: 600, windowSeconds: 60, endpoint: '/ops' });
  });
});

describe('client identity', () => {
  const defaultPolicy = POLICIES.find((p) => p.name === 'default')!;
  const login = POLICIES.find((p) => p.name === 'auth-login')!;

  it('is the user when the token is valid, the address otherwise', () => {
    expect(clientId(defaultPolicy, 'u-1', '10.0.0.1')).toBe('user:u-1');
    expect(clientId(defaultPolicy, null, '10.0.0.1')).toBe('10.0.0.1');
  });

  it('is always the address on credential endpoints', () => {
    expect(clientId(login, 'u-1', '10.0.0.1')).toBe('10.0.0.1');
  });

  it('normalises addresses: mapped IPv4, and IPv6 by /64', () => {
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
    expect(addressKey('x'.repeat(500)).length).toBeLessThanOrEqual(80);
  });

  it('takes a mapped IPv4 only when it is the whole address, with any number of digits per part', () => {
    expect(addressKey('::ffff:10.20.30.40')).toBe('10.20.30.40');
    expect(addressKey('::FFFF:203.0.113.254')).toBe('203.0.113.254');
    // Not addresses: kept (printable), not turned into the IPv4 inside them.
    expect(addressKey('x::ffff:1.2.3.4')).toBe('x::ffff:1.2.3.4');
    expect(addressKey('::ffff:1.2.3.4x')).toBe('::ffff:1.2.3.4x');
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
  });

  it('groups IPv6 by its first four groups, wherever the :: is and with leading zeros dropped', () => {
    expect(addressKey('2001::3:4:5:6:7:8')).toBe('2001:0:3:4::/64');
    expect(addressKey('2001:db8:1::5:6:7:8')).toBe('2001:db8:1:0::/64');
    expect(addressKey('2001:00db:0001:0000::1')).toBe('2001:db:1:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('2001:DB8:A:B:1:2:3:4')).toBe('2001:db8:a:b::/64');
  });

  it('keeps a non-address (only a trusted proxy can send one) printable: other characters become ?', () => {
    expect(addressKey('bad host\n\u00e9x')).toBe('bad?host??x');
    expect(addressKey('proxy-said:this')).toBe('proxy-said:this');
  });
});

describe('PolicyResolver', () => {
  it("holds the guide's table: each policy's endpoint, methods, callers, key, quota and algorithm", () => {
    const r = new PolicyResolver(resolvePolicies());
    const view = (method: string, route: string | undefined, authenticated: boolean) => {
      const p = r.match(method, route, authenticated)!;
      return [p.name, p.endpoint, p.methods ?? null, p.callers, p.key, p.limit, p.windowSeconds, p.algorithm];
    };
    expect(view('POST', '/api/v1/auth/login', false)).toEqual(['auth-login', '/api/v1/auth/login', ['POST'], 'any', 'ip', 10, 60, 'sliding']);
    expect(view('POST', '/api/v1/auth/register', true)).toEqual(['auth-register', '/api/v1/auth/register', ['POST'], 'any', 'ip', 10, 3600, 'sliding']);
    expect(view('POST', '/api/v1/auth/refresh', false)).toEqual(['auth-refresh', '/api/v1/auth/refresh', ['POST'], 'any', 'ip', 30, 60, 'sliding']);
    expect(view('POST', '/api/v1/plaid/webhook', true)).toEqual(['plaid-webhook', '/api/v1/plaid/webhook', ['POST'], 'any', 'ip', 600, 60, 'fixed']);
    expect(view('GET', '/api/v1/plaid/items', false)).toEqual(['bank-linking', '/api/v1/plaid', null, 'any', 'client', 20, 60, 'fixed']);
    expect(view('POST', '/api/v1/budgets/check-alerts', false)).toEqual(['budget-check-alerts', '/api/v1/budgets/check-alerts', ['POST'], 'any', 'client', 10, 60, 'fixed']);
    expect(view('DELETE', '/api/v1/transactions/:id', false)).toEqual(['transactions', '/api/v1/transactions', null, 'any', 'client', 100, 60, 'fixed']);
    expect(view('GET', '/api/v1/budgets', true)).toEqual(['default', '/api/v1', null, 'user', 'client', 300, 60, 'fixed']);
    expect(view('GET', '/api/v1/budgets', false)).toEqual(['anonymous', '/api/v1', null, 'anonymous', 'client', 60, 60, 'fixed']);
    // The plaid prefix itself is bank linking; the webhook only by POST.
    expect(view('GET', '/api/v1/plaid', true)[0]).toBe('bank-linking');
    expect(view('GET', '/api/v1/plaid/webhook', true)[0]).toBe('bank-linking');
  });

  it('a policy with several routes matches any of them', () => {
    const base = POLICIES.find((p) => p.name === 'transactions')!;
    const r = new PolicyResolver([{ ...base, routes: ['/a', '/b/*'] }]);
    expect(r.match('GET', '/a', true)?.name).toBe('transactions');
    expect(r.match('GET', '/b/c', true)?.name).toBe('transactions');
    expect(r.match('GET', '/c', true)).toBeNull();
  });

  it('looks the table up once per method, route template and caller kind, then answers from its cache', () => {
    let lookups = 0;
    const table = resolvePolicies();
    const counted = new Proxy(table, {
      get(target, prop, receiver) {
        if (prop === 'find') lookups++;
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
    const r = new PolicyResolver(counted);
    for (let i = 0; i < 3; i++) {
      expect(r.match('GET', '/api/v1/accounts', true)?.name).toBe('default');
      expect(r.match('GET', '/api/v1/accounts', false)?.name).toBe('anonymous');
      expect(r.match('POST', '/api/v1/accounts', true)?.name).toBe('default');
      expect(r.match('GET', '/api/v1/nothing-matches-but-defaults', true)?.name).toBe('default');
    }
    expect(lookups).toBe(4);
    // A template no policy matches is cached too (as no policy).
    const none = new PolicyResolver(new Proxy(table.filter((p) => p.callers === 'any'), { get: (t, p, rc) => (p === 'find' && lookups++, Reflect.get(t, p, rc) as unknown) }));
    lookups = 0;
    for (let i = 0; i < 3; i++) expect(none.match('GET', '/api/v1/budgets', true)).toBeNull();
    expect(lookups).toBe(1);
  });
});
