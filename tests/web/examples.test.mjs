// examples/browser from the packed tarball, in headless Chromium, with the library on
// another origin than the page (as from a CDN): the page imports js/rwkv.mjs across
// origins, the library starts its module worker through a Blob URL, and the worker finds
// its wasm next to itself. The text is the same as the library gives in Node.
//
// Needs Chromium and playwright-core (skipped without them, saying why).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { installPacked } from '../js/packed.mjs';
import { startServer } from '../js/http-server.mjs';
import { fixtureDir, skipNoFixtures } from '../js/helpers.mjs';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let chromium = null;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  /* reported as a skip */
}
const skip = skipNoFixtures || (!existsSync(chromiumPath) ? `no Chromium at ${chromiumPath} (bash scripts/setup.sh --browser)`
  : !chromium ? 'playwright-core is not installed (npm install)' : false);

const cleanup = [];
after(async () => { for (const f of cleanup.reverse()) await f(); });

test('the browser example runs the packed library from another origin, one thread, the same text as Node', { skip }, async () => {
  const { pkg } = await installPacked();
  const site = await mkdtemp(path.join(tmpdir(), 'rwkv-site-'));
  cleanup.push(() => rm(site, { recursive: true, force: true }));
  await cp(path.join(pkg, 'examples/browser'), site, { recursive: true });
  for (const f of ['fix-L3-C64-H2.pth', 'fix-vocab-300.txt']) await cp(path.join(fixtureDir, f), path.join(site, f));
  const page = await startServer(site);             // the page's origin
  const cdn = await startServer(pkg, { cors: true }); // the library's
  cleanup.push(() => page.close(), () => cdn.close());
  assert.notEqual(new URL(page.base).origin, new URL(cdn.base).origin);

  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  cleanup.push(() => browser.close());
  const tab = await browser.newPage();
  const errors = [];
  tab.on('pageerror', (e) => errors.push(e.message));
  tab.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const q = new URLSearchParams({ lib: `${cdn.base}/js/rwkv.mjs`, model: 'fix-L3-C64-H2.pth', vocab: 'fix-vocab-300.txt', prompt: 'hello' });
  await tab.goto(`${page.base}/index.html?${q}`);
  await tab.waitForFunction(() => document.body.dataset.done || document.body.dataset.error, null, { timeout: 60000 });
  assert.equal(await tab.evaluate(() => document.body.dataset.error ?? null), null);
  const done = JSON.parse(await tab.evaluate(() => document.body.dataset.done));
  assert.deepEqual(done.runtime, { threads: 1, simd: existsSync(path.join(pkg, 'build/wasm/rwkv-relaxed.wasm')) ? 'wasm-simd128+relaxed' : 'wasm-simd128' });
  assert.ok(cdn.counts.get('/build/wasm/rwkv.web.wasm') >= 1, 'the wasm came from the library\'s origin');

  const m = await rwkv.load(path.join(fixtureDir, 'fix-L3-C64-H2.pth'), { vocab: path.join(fixtureDir, 'fix-vocab-300.txt') });
  const want = await (await m.createSession()).generate('hello', { maxTokens: 32, seed: 1 }).text();
  await m.dispose();
  assert.equal(done.text, want);
  assert.deepEqual(errors, []);
});
