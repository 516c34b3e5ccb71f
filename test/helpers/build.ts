/**
 * The image's build outside Docker, for the build test and the bench's cold start: `npm run build`
 * (tsc src/ → dist/ plus the SQL migrations), a tree holding only package.json, package-lock.json,
 * dist/ and the production dependencies (the runtime stage of deploy/Dockerfile), and the runtime
 * stage's ENV and CMD read from deploy/Dockerfile itself, so that what runs here is what the image runs.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');
/** The deps stage's install, plus --prefer-offline: the npm cache of the tree's own `npm ci` makes it a local copy. */
export const PRODUCTION_INSTALL = ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'];

export interface Ran {
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion within `timeoutMs` (then SIGKILL); rejects with its output on a non-zero exit. */
export function run(file: string, args: string[], opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<Ran> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const ms = Math.round(performance.now() - t0);
        if (error) reject(new Error(`${file} ${args.join(' ')} failed after ${ms} ms: ${error.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
        else resolve({ ms, stdout, stderr });
      },
    );
  });
}

/** npm, on the Node that runs us when npm started us (npm_execpath), else the one on PATH. */
export function npm(args: string[], opts: { cwd: string; timeoutMs: number }): Promise<Ran> {
  const cli = process.env.npm_execpath;
  return cli && /npm-cli\.c?js$/.test(cli) ? run(process.execPath, [cli, ...args], opts) : run('npm', args, opts);
}

/** `npm run build` in the repository (type-check, compile src/ to dist/, copy the migrations). */
export function buildDist(timeoutMs = 180_000): Promise<Ran> {
  return npm(['run', 'build'], { cwd: ROOT, timeoutMs });
}

/**
 * A fresh temp dir with what the runtime stage copies (package.json, dist/) plus package-lock.json for
 * `npm ci`, and the production dependencies installed into it. Build first.
 */
export async function productionTree(timeoutMs = 180_000): Promise<{ dir: string; install: Ran }> {
  const dir = mkdtempSync(join(tmpdir(), 'nest-egg-image-'));
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(ROOT, f), join(dir, f));
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  const install = await npm(PRODUCTION_INSTALL, { cwd: dir, timeoutMs });
  return { dir, install };
}

/** The runtime (last) stage of deploy/Dockerfile: its ENV and the final CMD (exec form). */
export function imageRuntime(): { env: Record<string, string>; cmd: string[] } {
  const lines = readFileSync(DOCKERFILE, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let env: Record<string, string> = {};
  let cmd: string[] | undefined;
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    switch (op!.toUpperCase()) {
      case 'FROM':
        env = {};
        break;
      case 'ENV':
        for (const kv of rest) {
          const i = kv.indexOf('=');
          if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
        }
        break;
      case 'CMD':
        cmd = JSON.parse(args) as string[];
        break;
    }
  }
  if (!cmd) throw new Error(`${DOCKERFILE} has no CMD`);
  return { env, cmd };
}

/** The image's CMD as [executable, args]: `node` is this process's Node, so the suite's Node (20 or 24) runs it. */
export function imageCommandLine(): [string, string[]] {
  const [bin, ...args] = imageRuntime().cmd;
  if (bin !== 'node') throw new Error(`the image's CMD does not start with node: ${bin}`);
  return [process.execPath, args];
}
