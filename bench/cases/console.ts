/**
 * The operator console's first render (issue 17: "under a second on these machines") and the size
 * of what it sends. The API is built in this process on the embedded defaults, listening on
 * 127.0.0.1; Debian's Chromium (playwright-core, executablePath) opens /ops with a signed-in
 * session in a fresh browser context each time (empty cache): the time from navigation to the
 * Overview page showing its figures (readiness, process, the charts' section), and Chromium's own
 * first-contentful-paint. Skipped, as a row, where there is no Chromium.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/client.ts';
import { createOrPromoteAdmin } from '../../src/modules/auth/admin.ts';
import { BENCH_JWT_SECRET } from '../fixtures.ts';
import { quietLogger } from '../quiet-logger.ts';
import type { BenchSettings } from '../settings.ts';
import { Samples, fmt } from '../stats.ts';
import type { Row } from '../table.ts';
import type { Progress } from './overhead.ts';

const FIRST_RENDER_TARGET_MS = 1_000;
const LOADS = 10;
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ADMIN = { email: 'bench-ops@example.com', password: 'bench console password' };

function assetSizes(): { name: string; raw: number; gzip: number }[] {
  return ['app.js', 'app.css', 'index.html'].map((name) => {
    const body = readFileSync(new URL(`../../src/routes/ops/assets/${name}`, import.meta.url));
    return { name, raw: body.length, gzip: gzipSync(body, { level: 9 }).length };
  });
}

export async function consoleCase(_settings: BenchSettings, progress: Progress): Promise<Row[]> {
  const sizes = assetSizes();
  const sizeRow: Row = {
    case: 'Console',
    mode: 'embedded',
    measure: 'assets /ops sends (KiB, gzip -9)',
    result: sizes.map((s) => `${s.name} ${fmt(s.gzip / 1024)}`).join(', '),
    note: `raw: ${sizes.map((s) => `${s.name} ${fmt(s.raw / 1024)}`).join(', ')}; uPlot is most of app.js`,
  };
  if (!existsSync(CHROMIUM_PATH)) return [sizeRow, { case: 'Console', mode: 'embedded', measure: 'SKIPPED', result: '', note: `no Chromium at ${CHROMIUM_PATH}` }];

  const config = loadConfig({ ENVIRONMENT: 'production', JWT_SECRET: BENCH_JWT_SECRET, BANK_SYNC_PROVIDER: 'none', LOG_LEVEL: 'warn', LOG_FORMAT: 'json', DATA_DIR: 'memory://' });
  const database = await openDatabase({ dataDir: 'memory://', poolSize: 1 });
  await database.migrate();
  const app = await buildApp(config, { logger: quietLogger(), database, jwtSecret: BENCH_JWT_SECRET });
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    await createOrPromoteAdmin(database.db, ADMIN.email, ADMIN.password);
    const signIn = await fetch(`${base}/ops/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
    const [name, value] = signIn.headers.get('set-cookie')!.split(';')[0]!.split('=') as [string, string];
    const render = new Samples();
    const paint = new Samples();
    for (let i = 0; i <= LOADS; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addCookies([{ name, value, domain: '127.0.0.1', path: '/ops', httpOnly: true, secure: true, sameSite: 'Strict' }]);
      const page = await context.newPage();
      const started = performance.now();
      await page.goto(`${base}/ops`);
      await page.getByRole('heading', { name: 'Readiness' }).waitFor();
      await page.getByRole('heading', { name: 'Last hour' }).waitFor();
      const ms = performance.now() - started;
      const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN);
      // The first load also starts the browser's own processes: a warm-up, not counted.
      if (i > 0) {
        render.add(ms);
        if (Number.isFinite(fcp)) paint.add(fcp);
      }
      await context.close();
    }
    const [p50, max] = render.percentiles(50, 100);
    const [fcp50] = paint.percentiles(50);
    progress(`console first render: p50 ${fmt(p50!)} ms, max ${fmt(max!)} ms, first paint p50 ${fmt(fcp50!)} ms`);
    return [
      {
        case: 'Console',
        mode: 'embedded',
        measure: `/ops first render (navigation → Overview with its figures), ms, ${LOADS} loads, empty cache`,
        result: fmt(p50!),
        target: `≤ ${FIRST_RENDER_TARGET_MS}`,
        ok: max! <= FIRST_RENDER_TARGET_MS,
        note: `max ${fmt(max!)} ms (the target holds for the max); Chromium's first-contentful-paint p50 ${fmt(fcp50!)} ms`,
      },
      sizeRow,
    ];
  } finally {
    await browser.close();
    await app.close();
    await database.close();
  }
}
