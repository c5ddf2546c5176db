// The model cache in Chromium (js/model-cache.mjs, OPFS): a model streamed from a URL is
// kept converted (a .rwkv file, not the downloaded .pth), and the next load of that URL
// reads it back from there, in the single-thread build and in the pthread build (whose
// heap is a SharedArrayBuffer, read into through OPFS's sync access handle): the original
// is gone from the server by then, so a load that still asked for it would fail.
// Needs Chromium and playwright-core (skipped without them), the page's wasm builds and
// the fixtures (scripts/make-fixtures.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixtureDir } from '../js/helpers.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let playwright = true;
try {
  await import('playwright-core');
} catch {
  playwright = false;
}
const fixture = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const skip = !existsSync(chromiumPath) ? `no Chromium at ${chromiumPath} (bash scripts/setup.sh --browser)`
  : !playwright ? 'playwright-core is not installed (npm install)'
    : !existsSync(fixture) ? 'no fixtures (node scripts/make-fixtures.mjs build/fixtures)'
      : !existsSync(path.join(root, 'build/wasm/rwkv.web.wasm')) ? 'the page\'s wasm build is missing (bash scripts/build.sh wasm)' : false;
const threaded = existsSync(path.join(root, 'build/wasm/rwkv-mt.web.wasm'));

test('a model streamed from a URL is kept converted in OPFS and read back from there', { skip, timeout: 180000 }, async () => {
  const { openBrowser } = await import('../../js/bench/browser.mjs');
  const models = mkdtempSync(path.join(tmpdir(), 'rwkv-kept-web-'));
  copyFileSync(fixture, path.join(models, 'm.pth'));
  const browser = await openBrowser({ root, modelsDir: models, profile: true });
  try {
    // One load in the page's worker: its progress, the model's type and logits.
    const loadOnce = (threads) => browser.evaluate(async ({ threads }) => {
      const rwkv = await import('/js/rwkv.mjs');
      let last = null;
      const model = await rwkv.load(new URL('/models/m.pth', location.href).href, { quant: 'int8', threads, onProgress: (p) => { last = p; } });
      try {
        const session = await model.createSession();
        const logits = Array.from(await session.prefill([1, 2, 3, 0, 5]));
        return { total: last.total, cached: last.cached, dtype: model.config.dtype, threads: model.runtime.threads, logits };
      } finally {
        await model.dispose();
      }
    }, { threads });
    await browser.evaluate(async () => (await import('/js/rwkv.mjs')).clearCache());
    const first = await loadOnce(1);
    assert.equal(first.cached, false);
    assert.equal(first.total, statSync(fixture).size, 'the first load reads the .pth');

    // What the cache holds: one .rwkv file (its magic), the int8 model's bytes, not the .pth.
    const kept = await browser.evaluate(async () => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('rwkv-web-models');
      const out = [];
      for await (const [name, handle] of dir.entries()) {
        const file = await handle.getFile();
        out.push({ name, size: file.size, magic: Array.from(new Uint8Array(await file.slice(0, 8).arrayBuffer())) });
      }
      return out;
    });
    assert.equal(kept.length, 1, JSON.stringify(kept));
    assert.match(kept[0].name, /\.Q8_0\.rwkv$/);
    assert.deepEqual(kept[0].magic, [0x89, 0x52, 0x57, 0x4b, 0x56, 0x0d, 0x0a, 0x1a]);
    assert.notEqual(kept[0].size, statSync(fixture).size);

    // The original is gone: the next loads come from the cache, with the same logits.
    rmSync(path.join(models, 'm.pth'));
    for (const threads of threaded ? [1, 2] : [1]) {
      const again = await loadOnce(threads);
      assert.equal(again.cached, true, `${threads} thread(s): read from the model cache`);
      assert.equal(again.total, kept[0].size, `${threads} thread(s): the .rwkv bytes were read`);
      assert.equal(again.threads, threads);
      assert.equal(again.dtype, 'Q8_0');
      assert.deepEqual(again.logits, first.logits, `${threads} thread(s): the same model`);
    }
  } finally {
    await browser.close();
    rmSync(models, { recursive: true, force: true });
  }
});
