// Bundles the operator console (ops-ui/src) into the three files the API serves under /ops/assets/:
// app.js, app.css and index.html (plus LICENSES.txt, kept next to them for the bundled uPlot).
//
//   node ops-ui/build.mjs           build and write src/routes/ops/assets/
//   node ops-ui/build.mjs --check   build in memory; exit 1 if the committed files differ
//
// The output is deterministic: the same sources and esbuild version give byte-identical files.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Buffer } from 'node:buffer';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const outdir = join(root, 'src/routes/ops/assets');
const check = process.argv.includes('--check');

const uplotPkg = JSON.parse(readFileSync(join(root, 'node_modules/uplot/package.json'), 'utf8'));
const uplotLicense = readFileSync(join(root, 'node_modules/uplot/LICENSE'), 'utf8');
const copyright = /^Copyright .*$/m.exec(uplotLicense)?.[0] ?? 'Copyright Leon Sorokin';
const banner = `/*! Nest Egg operator console. Bundles uPlot v${uplotPkg.version} (https://github.com/leeoniya/uPlot), ${copyright}, MIT License; full text in LICENSES.txt */`;

const result = await build({
  absWorkingDir: root,
  entryPoints: { app: 'ops-ui/src/main.ts' },
  outdir,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  charset: 'utf8',
  banner: { js: banner, css: banner },
  tsconfig: 'ops-ui/tsconfig.json',
  write: false,
  logLevel: 'warning',
});

const files = new Map();
for (const f of result.outputFiles) files.set(f.path, Buffer.from(f.contents));
files.set(join(outdir, 'index.html'), readFileSync(join(here, 'index.html')));
files.set(
  join(outdir, 'LICENSES.txt'),
  Buffer.from(
    'Third-party software bundled in app.js and app.css\n\n' +
      `uPlot ${uplotPkg.version} — https://github.com/leeoniya/uPlot\n\n${uplotLicense.trimEnd()}\n`,
  ),
);

const expected = ['app.js', 'app.css', 'index.html', 'LICENSES.txt'].map((n) => join(outdir, n));
for (const p of files.keys()) {
  if (!expected.includes(p)) throw new Error(`unexpected build output ${relative(root, p)}`);
}

let stale = 0;
for (const [path, contents] of files) {
  const rel = relative(root, path);
  if (check) {
    let current;
    try {
      current = readFileSync(path);
    } catch {
      current = null;
    }
    if (!current || !current.equals(contents)) {
      console.error(`${rel} is out of date: run node ops-ui/build.mjs`);
      stale++;
    }
  } else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, contents);
    console.log(`${rel}  ${contents.length} bytes`);
  }
}
if (check) {
  if (stale > 0) process.exit(1);
  console.log('ops-ui assets are up to date');
}
