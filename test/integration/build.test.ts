/**
 * The production image's build and command line, done the way deploy/Dockerfile does it but
 * without Docker (issue 12, Must show): `npm run build` (type-check and compile), a tree holding
 * only package.json, package-lock.json and dist/ with `npm ci --omit=dev` (no tsx, TypeScript or
 * esbuild in it), then the Dockerfile's own CMD (`node --enable-source-maps dist/main.js serve`, read
 * from the file) with the runtime stage's ENV, ENVIRONMENT=production and a JWT secret: once on
 * embedded PGlite (a temp DATA_DIR), once on a Postgres database of its own. Each run must answer
 * /health and readiness with 200 and stop cleanly on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDist, imageCommandLine, imageRuntime, productionTree, ROOT } from '../helpers/build.ts';
import { createPostgresDatabase } from '../helpers/db.ts';
import { CHILD_JWT_SECRET, CliProcess, freePort, request, sleep } from '../helpers/server.ts';
import { servicesAvailable } from '../helpers/services.ts';

const postgres = await servicesAvailable('the built image on Postgres', 'postgres');

let tree = '';
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  const build = await buildDist();
  const { dir, install } = await productionTree();
  tree = dir;
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  console.info(`build: npm run build ${build.ms} ms, npm ci --omit=dev ${install.ms} ms (${tree})`);
}, 360_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Starts the image's command line in the production tree; resolves once readiness answered 200. */
async function startImage(env: Record<string, string>): Promise<{ proc: CliProcess; url: string; readyMs: number }> {
  const [node, args] = imageCommandLine();
  const port = await freePort();
  const childEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  Object.assign(childEnv, imageRuntime().env, { HOST: '127.0.0.1', PORT: String(port), JWT_SECRET: CHILD_JWT_SECRET }, env);
  const t0 = performance.now();
  const proc = new CliProcess(spawn(node, args, { cwd: tree, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
  cleanups.push(() => proc.stop(5_000).then(() => undefined));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (!proc.running()) throw new Error(`${args.join(' ')} exited: ${JSON.stringify(proc.exit())}\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
    try {
      const r = await request(`${url}/api/v1/monitoring/health`, { timeoutMs: 1_000 });
      if (r.status === 200) return { proc, url, readyMs: Math.round(performance.now() - t0) };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await proc.stop(5_000);
      throw new Error(`${args.join(' ')} was not ready on ${url} within 45 s\nstdout:\n${proc.stdout()}\nstderr:\n${proc.stderr()}`);
    }
    await sleep(50);
  }
}

async function expectServes(mode: 'pglite' | 'postgres', env: Record<string, string>): Promise<void> {
  const { proc, url, readyMs } = await startImage(env);
  console.info(`build: ${mode}: process start → readiness 200 in ${readyMs} ms`);
  const started = await proc.waitForLog('server_started', 5_000);
  expect(started).toMatchObject({ environment: 'production', database: mode });

  const health = await request(`${url}/health`);
  expect(health.status).toBe(200);
  expect(JSON.parse(health.body)).toEqual({ status: 'healthy' });
  const ready = await request(`${url}/api/v1/monitoring/health`);
  expect(ready.status).toBe(200);
  expect(JSON.parse(ready.body)).toMatchObject({ status: 'healthy', database: 'ok', environment: 'production' });

  expect(await proc.stop(15_000)).toEqual({ code: 0, signal: null });
  expect(proc.stderr()).toBe('');
}

describe('the image build: npm run build, production dependencies only', () => {
  it('runs the Dockerfile\'s CMD, compiled JavaScript with source maps', () => {
    expect(imageRuntime().cmd).toEqual(['node', '--enable-source-maps', 'dist/main.js', 'serve']);
    expect(existsSync(join(tree, 'dist', 'main.js'))).toBe(true);
    expect(existsSync(join(tree, 'dist', 'main.js.map'))).toBe(true);
    expect(existsSync(join(tree, 'src'))).toBe(false);
  });

  it('carries the migrations beside the compiled db client', () => {
    const list = (dir: string) => readdirSync(dir, { recursive: true }).map(String).sort();
    expect(list(join(tree, 'dist', 'db', 'migrations'))).toEqual(list(join(ROOT, 'src', 'db', 'migrations')));
  });

  it('installs no tsx, TypeScript or esbuild', () => {
    const modules = join(tree, 'node_modules');
    expect(existsSync(join(modules, 'fastify'))).toBe(true);
    for (const name of ['tsx', 'typescript', 'esbuild', '@esbuild', 'vitest']) expect(existsSync(join(modules, name)), name).toBe(false);
  });
});

describe('the image\'s command line serves /health and readiness', () => {
  it('in embedded mode (PGlite on a fresh DATA_DIR)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nest-egg-image-data-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    await expectServes('pglite', { DATA_DIR: dataDir });
  });

  it.skipIf(!postgres)('on Postgres (a database of its own)', async () => {
    const db = await createPostgresDatabase();
    cleanups.push(db.drop);
    await expectServes('postgres', { DATABASE_URL: db.url, DATA_DIR: join(tree, 'unused-data-dir') });
  });
});
