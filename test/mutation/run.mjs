#!/usr/bin/env node
/**
 * `npm run test:mutation [-- --changed [<base>]] [-- <stryker options>]`
 *
 * Runs StrykerJS on the core modules (stryker.config.mjs) and fails when any module's mutation
 * score is below MUTATION_THRESHOLD (Stryker's own `break` threshold is over all files together).
 *
 * StrykerJS 10 needs Node >= 22. On an older Node this re-runs Stryker on the Node 24 that .ci/run
 * caches (NODE24_VERSION in .ci/run, under NEST_EGG_CI_CACHE or ~/.cache/nest-egg-ci), or stops
 * with a message saying how to get one.
 *
 * `--changed [<base>]` (what CI runs): only the core modules with a file changed since <base> (by
 * default the merge base with `main`, or the previous commit when HEAD is on main), counting a
 * change to a unit test that names the file too. A clean clone carries no incremental report, so
 * "changed" is taken from git history, not from a previous run. Nothing changed: nothing to run
 * (exit 0). No base to compare with (a shallow clone, the first commit): every core module.
 *
 * `--time-limit <minutes>` (CI): stops Stryker after that long, and fails.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { clearTimeout, setTimeout } from 'node:timers';
import { basename, join } from 'node:path';
import { CORE_MODULES, MUTATION_THRESHOLD, moduleOf, mutatePatterns } from './modules.mjs';

const root = new URL('../..', import.meta.url).pathname;
const REPORT = join(root, 'reports/mutation/mutation.json');
const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8' }).trim();

function strykerNode() {
  if (Number(process.versions.node.split('.')[0]) >= 22) return process.execPath;
  const version = /^NODE24_VERSION=(\S+)$/m.exec(readFileSync(join(root, '.ci/run'), 'utf8'))?.[1];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  const cache = process.env.NEST_EGG_CI_CACHE || join(homedir(), '.cache/nest-egg-ci');
  const node = version && arch ? join(cache, `node-linux-${arch}-${version}`, 'bin/node') : undefined;
  if (node && process.platform === 'linux' && existsSync(node)) return node;
  console.error(
    `test:mutation: StrykerJS needs Node >= 22 and this is Node ${process.version}; no cached Node ${version ?? '24'} at ${node ?? cache}.\n` +
      'Run it on a Node >= 22 (e.g. PATH=/path/to/node24/bin:$PATH npm run test:mutation), or run .ci/run once to cache Node 24.',
  );
  process.exit(2);
}

function changedModules(base) {
  const ref = (name) => {
    try {
      return git('rev-parse', '--verify', '--quiet', `${name}^{commit}`);
    } catch {
      return undefined;
    }
  };
  const head = git('rev-parse', 'HEAD');
  const main = ref('main') ?? ref('origin/main');
  // No main to compare with, or HEAD is main: the last commit's changes.
  const from = base ?? (main === undefined || main === head ? ref('HEAD~1') : git('merge-base', 'HEAD', main));
  // A shallow clone or the first commit: nothing to compare with, so everything counts as changed.
  if (from === undefined) return { from: 'no base (shallow clone or first commit)', modules: [...CORE_MODULES] };
  const files = git('diff', '--name-only', from, '--').split('\n').filter(Boolean);
  // Uncommitted work counts too (a developer's run before committing).
  files.push(...git('status', '--porcelain', '--untracked-files=all').split('\n').filter(Boolean).map((l) => l.slice(3)));
  const modules = new Set(files.map(moduleOf).filter(Boolean));
  const tests = files.filter((f) => f.startsWith('test/unit/') && existsSync(join(root, f)));
  for (const test of tests) {
    const text = readFileSync(join(root, test), 'utf8');
    for (const m of CORE_MODULES) {
      const sources = m.endsWith('/') ? [m.slice(0, -1).split('/').at(-1) + '/'] : [basename(m)];
      if (sources.some((s) => text.includes(s))) modules.add(m);
    }
  }
  return { from, modules: [...modules] };
}

/** Score per module from Stryker's JSON report: (killed + timeout) / (all but ignored and errors). */
function moduleScores() {
  const report = JSON.parse(readFileSync(REPORT, 'utf8'));
  const scores = new Map();
  for (const [file, { mutants }] of Object.entries(report.files)) {
    const m = moduleOf(file);
    if (!m) continue;
    const s = scores.get(m) ?? { detected: 0, valid: 0, survived: 0, noCoverage: 0 };
    for (const { status } of mutants) {
      if (status === 'Killed' || status === 'Timeout') s.detected++;
      else if (status === 'Survived') s.survived++;
      else if (status === 'NoCoverage') s.noCoverage++;
      else continue; // Ignored, CompileError, RuntimeError, Pending
      s.valid++;
    }
    scores.set(m, s);
  }
  return scores;
}

const args = process.argv.slice(2);
const strykerArgs = [];
let modules = CORE_MODULES;
let timeLimitMin = 0;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--changed') {
    const base = args[i + 1] && !args[i + 1].startsWith('-') ? args[++i] : undefined;
    const changed = changedModules(base);
    console.log(`test:mutation: core modules changed since ${/^[0-9a-f]{40}$/.test(changed.from) ? changed.from.slice(0, 12) : changed.from}: ${changed.modules.join(', ') || 'none'}`);
    if (changed.modules.length === 0) {
      console.log('test:mutation: no core module changed, nothing to mutate');
      process.exit(0);
    }
    modules = changed.modules;
    strykerArgs.push('--mutate', mutatePatterns(modules).join(','));
  } else if (args[i] === '--time-limit') timeLimitMin = Number(args[++i]);
  else strykerArgs.push(args[i]);
}

const node = strykerNode();
rmSync(REPORT, { force: true });
// Its own process group, so that a time limit stops Stryker's test runners with it.
const child = spawn(node, [join(root, 'node_modules/@stryker-mutator/core/bin/stryker.js'), 'run', ...strykerArgs], { cwd: root, stdio: 'inherit', detached: true });
let timedOut = false;
const timer =
  timeLimitMin > 0 &&
  setTimeout(() => {
    timedOut = true;
    console.error(`test:mutation: stopped after the time limit of ${timeLimitMin} min`);
    process.kill(-child.pid, 'SIGTERM');
    setTimeout(() => process.kill(-child.pid, 'SIGKILL'), 10_000).unref();
  }, timeLimitMin * 60_000);
const run = await new Promise((resolve) => child.on('exit', (status, signal) => resolve({ status, signal })));
if (timer) clearTimeout(timer);
if (timedOut) {
  console.error('test:mutation: over the time limit; run `npm run test:mutation` on the changed modules locally, or raise the limit');
  process.exit(1);
}
if (!existsSync(REPORT)) {
  console.error(`test:mutation: Stryker wrote no report (exit ${run.status ?? run.signal})`);
  process.exit(run.status || 1);
}

const scores = moduleScores();
let failed = false;
console.log(`\nMutation score per core module (threshold ${MUTATION_THRESHOLD} %):`);
for (const m of modules) {
  const s = scores.get(m);
  if (!s) {
    console.log(`  ${m.padEnd(38)} not in this run`);
    continue;
  }
  const score = s.valid === 0 ? 100 : (100 * s.detected) / s.valid;
  const low = score < MUTATION_THRESHOLD;
  failed ||= low;
  console.log(`  ${m.padEnd(38)} ${score.toFixed(2).padStart(6)} %  (${s.detected}/${s.valid} detected, ${s.survived} survived, ${s.noCoverage} no coverage)${low ? '  BELOW THRESHOLD' : ''}`);
}
process.exit(failed ? 1 : run.status === 0 ? 0 : run.status || 1);
