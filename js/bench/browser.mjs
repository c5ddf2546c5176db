// The benchmark's browser side: one headless Chromium (playwright-core, no GPU) on a
// cross-origin isolated page (js/bench/page.html) served from the repository, which runs
// cells of our runtime (the page's builds: rwkv.web.mjs for 1 thread, rwkv-mt.web.mjs for
// more) and of wllama (llama.cpp in wasm) on the models of build/bench (served at /models/).
import { createReadStream, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import path from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.wasm': 'application/wasm',
};
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

// Files of `root` (and of `modelsDir` under /models/) with the headers that make a page
// cross-origin isolated (SharedArrayBuffer, hence pthreads); nothing outside them.
function serve(root, modelsDir) {
  const server = createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const [base, rel] = url.startsWith('/models/') ? [modelsDir, url.slice(8)] : [root, url.slice(1)];
    const file = path.resolve(base, rel);
    if (!file.startsWith(path.resolve(base) + path.sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size,
      'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store',
    });
    // Reads of 4 MB, not the default 64 KB: Chromium takes the model about 1.5x faster so.
    createReadStream(file, { highWaterMark: 4 << 20 }).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * Starts Chromium on the bench page. Resolves to {hardwareConcurrency, version, run(cell),
 * close()}, or throws with the reason the browser cannot run (no Chromium, no
 * playwright-core, the page not isolated). profile: a Chromium profile on disk, as a user's
 * (a fresh folder, removed at close), instead of the default off-the-record context, whose
 * storage (OPFS) lives in memory behind IPC and is slower than a real profile's.
 */
export async function openBrowser({ root, modelsDir, chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', log = () => {}, profile = false }) {
  if (!existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath} (bash scripts/setup.sh --browser)`);
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is not installed (npm install)');
  }
  const server = await serve(root, modelsDir);
  const launch = { executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true };
  const userDataDir = profile ? mkdtempSync(path.join(tmpdir(), 'rwkv-bench-profile-')) : null;
  const context = profile ? await chromium.launchPersistentContext(userDataDir, launch) : null;
  const browser = context ? context.browser() : await chromium.launch(launch);
  const close = async () => {
    await (context ?? browser).close().catch(() => {});
    server.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  };
  // The page; a new one after a crash (a tab that runs out of memory at a big shape), so
  // that one failed cell does not fail the ones after it.
  let crashed = false;
  const openPage = async (first) => {
    const page = first && context ? (context.pages()[0] ?? await context.newPage()) : await (context ?? browser).newPage();
    page.setDefaultTimeout(0);
    page.on('console', (m) => { if (m.type() === 'error') log(`chromium: ${m.text()}`); });
    page.on('crash', () => { crashed = true; });
    await page.goto(`http://127.0.0.1:${server.address().port}/js/bench/page.html`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60000 });
    return page;
  };
  try {
    let page = await openPage(true);
    const env = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency, ua: navigator.userAgent }));
    if (!env.isolated) throw new Error('the bench page is not cross-origin isolated');
    return {
      hardwareConcurrency: env.cores,
      version: browser?.version() ?? /Chrome\/([\d.]+)/.exec(env.ua)?.[1],
      /** One cell: {runtime: 'ours'|'wllama', model: file name in modelsDir, threads, ...lengths}. */
      run: async (cell) => {
        if (crashed) {
          await page.close().catch(() => {});
          crashed = false;
          page = await openPage(false);
        }
        try {
          return await page.evaluate((c) => window.benchCell(c), cell);
        } catch (err) {
          if (crashed) throw new Error(`the page crashed (out of memory?): ${err.message.split('\n')[0]}`);
          throw err;
        }
      },
      /** page.evaluate(fn, arg) on the bench page (measurements of its own: load-check). */
      evaluate: (fn, arg) => page.evaluate(fn, arg),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
