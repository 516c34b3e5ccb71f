/**
 * The operator console end to end, in real headless Chromium (Debian's package, driven by
 * playwright-core with executablePath: no browser download) against the API listening on
 * 127.0.0.1, on the embedded defaults (PGlite, memory rate-limit store, in-process jobs) with Plaid
 * played by the local fake (the one thing that cannot run here).
 *
 * An admin signs in; the charts fill after traffic; a client blocked by the rate limiter is
 * unblocked from the console and its next request is admitted; a failed sync job is retried from
 * the console and succeeds; both actions are found in the audit view; a non-admin is refused.
 * No page logs a console error or meets a CSP violation (the refused sign-in's own 403 aside,
 * which Chromium reports as a failed resource). Each page is photographed; with
 * OPS_SCREENSHOTS_DIR=docs/ops-console (`npm run screenshots`) the pictures in the README are
 * these.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InlineRunner } from '../../src/jobs/inline-runner.ts';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { createTestApp, type TestApp } from '../helpers/app.ts';
import { FAKE_PLAID_CLIENT_ID, FAKE_PLAID_SECRET, FakePlaid } from '../helpers/fake-plaid.ts';
import { CHROMIUM_PATH, servicesAvailable } from '../helpers/services.ts';

const ok = await servicesAvailable('operator console in Chromium', 'chromium');

const ADMIN = { email: 'operator@nestegg.example', password: 'operator console password' };
const USER = { email: 'member@nestegg.example', password: 'a member password that is long' };
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** What a page reported that it should not have: console errors and warnings, page errors, CSP violations. */
interface Trouble {
  kind: string;
  text: string;
}

function watch(page: Page, trouble: Trouble[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') trouble.push({ kind: `console.${m.type()}`, text: m.text() });
  });
  page.on('pageerror', (e) => trouble.push({ kind: 'pageerror', text: e.message }));
}

/** A CSP violation is also an event in the page: recorded where the test can read it. */
const CSP_WATCH = () => {
  const w = window as unknown as { __csp: string[] };
  w.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
};

describe.skipIf(!ok)('the operator console in Chromium', () => {
  let t: TestApp;
  let fake: FakePlaid;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const trouble: Trouble[] = [];
  let shots: string;
  const taken: string[] = [];
  let userToken = '';
  let itemId = '';
  let plaidItemId = '';

  /** The API as any client calls it, from this process (address 127.0.0.1, like the browser). */
  const api = async (method: string, path: string, body?: unknown, token = userToken) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  const shoot = async (name: string, target: Page = page) => {
    const file = join(shots, `${name}.png`);
    await target.screenshot({ path: file, fullPage: true });
    taken.push(file);
  };

  const open = async (path: string, heading: string) => {
    await page.getByRole('link', { name: heading, exact: true }).click();
    await page.waitForURL(`**/ops#/${path}`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe(heading);
  };

  beforeAll(async () => {
    shots = process.env.OPS_SCREENSHOTS_DIR ? resolve(process.env.OPS_SCREENSHOTS_DIR) : mkdtempSync(join(tmpdir(), 'ops-shots-'));
    mkdirSync(shots, { recursive: true });
    fake = await FakePlaid.start([18700, 18749]);
    t = await createTestApp({
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_POLICIES: 'anonymous=5/60',
      OPS_SAMPLE_INTERVAL_SECONDS: '1',
      JOB_ATTEMPTS: '1',
      PLAID_CLIENT_ID: FAKE_PLAID_CLIENT_ID,
      PLAID_SECRET: FAKE_PLAID_SECRET,
      PLAID_BASE_URL: fake.url,
    });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    await createOrPromoteAdmin(t.db.database.db, ADMIN.email, ADMIN.password);
    expect((await api('POST', '/api/v1/auth/register', { ...USER, full_name: 'Member' }, '')).status).toBe(201);
    userToken = String((await api('POST', '/api/v1/auth/login', USER, '')).body.access_token);
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(CSP_WATCH);
    page = await context.newPage();
    watch(page, trouble);
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await fake?.close();
    if (!process.env.OPS_SCREENSHOTS_DIR && shots) rmSync(shots, { recursive: true, force: true });
  });

  it('refuses a user who is not a platform admin, and says why', async () => {
    const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await other.addInitScript(CSP_WATCH);
    const p = await other.newPage();
    const own: Trouble[] = [];
    watch(p, own);
    await p.goto(`${base}/ops`);
    await p.getByLabel('Email').fill(USER.email);
    await p.getByLabel('Password').fill(USER.password);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => p.getByRole('alert').first().textContent()).toMatch(/Only platform admins may sign in/);
    expect(await p.getByRole('navigation', { name: 'Console pages' }).count()).toBe(0);
    expect(await other.cookies()).toEqual([]);
    // The one thing the page reported: the browser's own line for the refused call.
    expect(own.map((x) => x.text)).toEqual([expect.stringMatching(/status of 403/)]);
    expect(await p.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    await other.close();
  });

  it('signs an admin in: the session cookie is httpOnly, Secure and SameSite=Strict', async () => {
    await page.goto(`${base}/ops`);
    await shoot('sign-in');
    await page.getByLabel('Email').fill(ADMIN.email);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Overview');
    expect(await page.getByText(ADMIN.email).count()).toBeGreaterThan(0);
    const cookies = await context.cookies();
    expect(cookies).toEqual([expect.objectContaining({ name: '__Secure-nest_egg_ops', httpOnly: true, secure: true, sameSite: 'Strict', path: '/ops' })]);
    // Not readable from script: the page cannot leak it.
    expect(await page.evaluate(() => document.cookie)).toBe('');
  });

  it('fills the charts of the last hour from the traffic it samples', async () => {
    // Traffic: a linked bank (its first sync is a job), reads, a 404 and a 5xx.
    const linked = await api('POST', '/api/v1/plaid/exchange-token', { public_token: fake.createPublicToken() });
    expect(linked.status).toBe(201);
    const item = linked.body.item as { id: string; item_id: string };
    itemId = item.id;
    plaidItemId = item.item_id;
    await (t.app.jobs as InlineRunner).drain();
    for (let i = 0; i < 20; i++) expect((await api('GET', '/api/v1/transactions?limit=5')).status).toBe(200);
    expect((await api('GET', '/api/v1/accounts')).status).toBe(200);
    expect((await api('GET', '/api/v1/nothing-here')).status).toBe(404);
    expect((await api('POST', '/api/v1/dev/test-sentry')).status).toBe(500);
    const requests = page.getByRole('region', { name: 'Requests (req/s)' });
    await expect.poll(() => requests.locator('.chart-summary').textContent(), { timeout: 20_000 }).toMatch(/max [1-9][\d.]* req\/s/);
    const latency = page.getByRole('region', { name: 'p95 latency by route (ms)' });
    await expect.poll(() => latency.locator('.chart-summary').textContent(), { timeout: 20_000 }).toContain('GET /api/v1/transactions');
    const errors = page.getByRole('region', { name: 'Error ratio (% of requests answered 5xx)' });
    await expect.poll(() => errors.locator('.chart-summary').textContent(), { timeout: 20_000 }).toMatch(/max [1-9][\d.]* %/);
    const jobs = page.getByRole('region', { name: 'Jobs (per interval: completed, failed)' });
    await expect.poll(() => jobs.locator('.chart-summary').textContent(), { timeout: 20_000 }).toMatch(/Completed: .*max [1-9]/);
    expect(await page.locator('.chart canvas').count()).toBeGreaterThanOrEqual(5);
    await shoot('overview');
  });

  it('shows a client blocked by the rate limiter; unblocking it admits its next request', async () => {
    // Anonymous calls from 127.0.0.1 spend the anonymous quota (5 a minute here); the sixth is refused.
    const anonymous = () => api('GET', '/api/v1/categories', undefined, '');
    for (let i = 0; i < 5; i++) expect((await anonymous()).status).toBe(401);
    expect((await anonymous()).status).toBe(429);
    await open('rate-limits', 'Rate limits');
    await page.getByLabel('Blocked only').check();
    const unblock = page.getByRole('button', { name: 'Unblock 127.0.0.1' });
    await unblock.waitFor();
    await shoot('rate-limits');
    await unblock.click();
    await expect.poll(() => page.getByRole('status').first().textContent()).toMatch(/Reset [1-9]\d* window\(s\) for 127\.0\.0\.1/);
    expect((await anonymous()).status).toBe(401);
  });

  it('shows a failed job with its error; retrying it from the console makes it succeed', async () => {
    fake.failNext(plaidItemId, 'INTERNAL_SERVER_ERROR');
    const queued = await api('POST', `/api/v1/plaid/sync/${itemId}`);
    expect(queued.status).toBe(202);
    const runner = t.app.jobs as InlineRunner;
    await runner.drain();
    const failed = (await runner.recentFailures(5))[0]!;
    expect(failed.task_name).toBe('sync_transactions');
    await open('jobs', 'Jobs');
    const row = page.getByRole('row').filter({ has: page.getByRole('button', { name: `Retry job ${failed.id}` }) });
    expect(failed.failed_reason).not.toBe('');
    await expect.poll(() => row.textContent()).toContain(failed.failed_reason);
    await shoot('jobs');
    await row.getByRole('button', { name: `Retry job ${failed.id}` }).click();
    await expect.poll(() => page.getByRole('status').first().textContent()).toContain(`Job ${failed.id} queued again`);
    await runner.drain();
    expect(runner.getJob(failed.id)).toMatchObject({ state: 'completed', attemptsMade: 1 });
    await expect.poll(() => page.getByRole('button', { name: `Retry job ${failed.id}` }).count(), { timeout: 15_000 }).toBe(0);
  });

  it('lists the 5xx answer and the security event of this process', async () => {
    await open('errors', 'Errors and security');
    await expect.poll(() => page.getByRole('main').textContent()).toContain('/api/v1/dev/test-sentry');
    await expect.poll(() => page.getByRole('main').textContent()).toContain('admin_denied');
    await shoot('errors');
  });

  it('finds both operator actions in the audit view', async () => {
    await open('audit', 'Audit');
    const table = page.getByRole('main');
    await expect.poll(() => table.textContent()).toContain('ops.rate_limit_reset');
    await expect.poll(() => table.textContent()).toContain('ops.job_retry');
    await shoot('audit');
    await page.getByLabel('Action').fill('ops.job_retry');
    await page.getByLabel('Action').press('Enter');
    await expect.poll(async () => (await table.textContent())?.includes('ops.rate_limit_reset')).toBe(false);
    expect(await table.textContent()).toContain('ops.job_retry');
  });

  it('is keyboard navigable and readable at phone width', async () => {
    await page.goto(`${base}/ops#/overview`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Overview');
    // Tab reaches the navigation; Enter on a link opens its page.
    let reached = false;
    for (let i = 0; i < 15 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate(() => document.activeElement?.textContent)) === 'Jobs';
    }
    expect(reached).toBe(true);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Jobs');
    await page.setViewportSize({ width: 375, height: 800 });
    await page.goto(`${base}/ops#/overview`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Overview');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await shoot('overview-phone');
  });

  it('recorded no console error and no CSP violation on any page, and a picture of each', async () => {
    expect(trouble).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp)).toEqual([]);
    expect(taken.map((f) => f.split('/').pop())).toEqual(['sign-in.png', 'overview.png', 'rate-limits.png', 'jobs.png', 'errors.png', 'audit.png', 'overview-phone.png']);
    for (const f of taken) {
      const png = readFileSync(f);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);
    }
  });
});
