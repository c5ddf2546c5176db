// The demo page (web/) in headless Chromium, driven by playwright-core: load a model by
// URL, chat through the chat layer (the history's state from the prefix-state cache), the
// system prompt, thinking fold and JSON mode, stop a reply, change sampling settings,
// reload and continue the saved chat, then go offline and generate again; completion
// mode; errors; the service worker's update. Screenshots go to test-artifacts/.
//
// Needs Chromium (/usr/bin/chromium, or $CHROMIUM_PATH: `bash scripts/setup.sh --browser`)
// and playwright-core (npm install); skipped without them. Run: node --test tests/web/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/serve.mjs';
import { officialKeys, shapeConfig } from '../../js/bench/random-model.mjs';
import { pthHead } from '../../js/formats/pth-writer.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(repo, 'build/fixtures');
const referenceModels = path.resolve(repo, '../shared/reference/models');
const artifacts = path.join(repo, 'test-artifacts');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

let chromium = null;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  /* reported as a skip */
}
const skip = !existsSync(chromiumPath) ? `no Chromium at ${chromiumPath} (bash scripts/setup.sh --browser)`
  : !chromium ? 'playwright-core is not installed (npm install)' : false;

// The browser builds of the core: single-thread, and pthreads for cross-origin isolated pages.
const BROWSER_BUILD = ['rwkv.web.mjs', 'rwkv.web.wasm', 'rwkv-mt.web.mjs', 'rwkv-mt.web.worker.js', 'rwkv-mt.web.wasm'];
// The kernels a page's core reports: '+relaxed' where the relaxed-SIMD module was built
// (clang-19; Chromium has relaxed SIMD) for that build's memory.
const simdOf = (module) => (existsSync(path.join(repo, 'build/wasm', module)) ? 'wasm-simd128+relaxed' : 'wasm-simd128');

function ensureBuilt() {
  assert.ok(BROWSER_BUILD.every((f) => existsSync(path.join(repo, 'build/wasm', f))),
    'the wasm core is not built: bash scripts/build.sh wasm');
  if (!['fix-L3-C64-H2.pth', 'fix-vocab-300.txt', 'fix-L3-C64-H2.rwkv'].every((f) => existsSync(path.join(fixtures, f)))) {
    const r = spawnSync(process.execPath, ['scripts/make-fixtures.mjs', fixtures], { cwd: repo, stdio: 'inherit' });
    assert.equal(r.status, 0, 'scripts/make-fixtures.mjs failed');
  }
}

async function launch({ viewport = { width: 1280, height: 800 } } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'rwkv-web-chromium-'));
  // A persistent profile: the service worker, Cache API and IndexedDB survive reloads.
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath, args: CHROMIUM_ARGS, viewport, reducedMotion: 'reduce', headless: true,
  });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.setDefaultTimeout(30000);
  return {
    ctx, page,
    close: async () => {
      await ctx.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Console errors and uncaught exceptions of the page (and its workers). */
function collectErrors(page, allowed = []) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !allowed.some((re) => re.test(m.text()))) errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}

const appIs = (page, state, timeout = 30000) =>
  page.waitForFunction((s) => document.documentElement.dataset.app === s, state, { timeout });

async function shot(page, name) {
  await mkdir(artifacts, { recursive: true });
  await page.waitForTimeout(150);
  await page.screenshot({ path: path.join(artifacts, name) });
}

async function loadByUrl(page, modelUrl, vocabUrl) {
  await page.fill('#model-url', modelUrl);
  if (vocabUrl) {
    await page.setChecked('#vocab-none', false);
    await page.fill('#vocab-url', vocabUrl);
  } else {
    await page.setChecked('#vocab-none', true);
  }
  await page.click('#load-button');
  await page.waitForFunction(() => document.documentElement.dataset.app === 'ready' || !document.getElementById('load-error').hidden,
    null, { timeout: 60000 });
  const error = await page.locator('#load-error:not([hidden])').count() ? await page.textContent('#load-error') : null;
  assert.equal(error, null, `loading failed: ${error}`);
}

/** Records the length of the reply being streamed at each DOM update. */
async function watchStream(page) {
  await page.evaluate(() => {
    window.__replyLengths = [];
    if (window.__observer) return;
    const t = document.getElementById('transcript');
    window.__observer = new MutationObserver(() => {
      const b = t.querySelector('.msg.assistant.streaming .bubble');
      if (b) window.__replyLengths.push(b.textContent.length);
    });
    window.__observer.observe(t, { subtree: true, childList: true, characterData: true });
  });
}
const streamedLengths = (page) => page.evaluate(() => [...new Set(window.__replyLengths)]);

async function send(page, text, { wait = true } = {}) {
  const before = await page.locator('#transcript .msg').count();
  await page.fill('#composer-input', text);
  await page.press('#composer-input', 'Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#transcript .msg').length === n + 2, before);
  if (wait) await appIs(page, 'ready', 60000);
  return before + 2;
}

const threadsText = (n) => `${n} thread${n === 1 ? '' : 's'}`;

const promptTokensShown = async (page) => Number(/prompt (\d+) token/.exec(await page.textContent('#stats'))?.[1]);
const cachedTokensShown = async (page) => Number(/prompt \d+ tokens? \((\d+) cached\)/.exec(await page.textContent('#stats'))?.[1] ?? 0);

/** The page's chat settings (saved preferences) as the fields of a chat completion request. */
async function requestOf(prefs) {
  const { requestFields } = await import('../../js/chat/completions.mjs');
  const { banEndOfText, ...settings } = prefs.settings.chat;
  const options = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== null));
  if (banEndOfText) options.bannedTokens = [0];
  return requestFields(options);
}
const asMessages = (chat) => chat.messages.map((m) => ({ role: m.role, content: m.text }));

/** The saved chat (transcript) and the preferences, read from the page's storage. */
function readSaved(page) {
  return page.evaluate(async () => {
    const prefs = JSON.parse(localStorage.getItem('rwkv-web-demo:prefs'));
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('rwkv-web-demo');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const get = (store, key) => new Promise((resolve, reject) => {
      const r = db.transaction(store).objectStore(store).get(key);
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const chat = await get('chats', prefs.activeChatId);
    db.close();
    return { prefs, chat };
  });
}

test('chat, stop, settings, reload and offline with the fixture model (cross-origin isolated)', { skip, timeout: 300000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [fixtures] });
  const browser = await launch();
  const { ctx, page } = browser;
  const errors = collectErrors(page);
  const modelUrl = `${srv.url}models/fix-L3-C64-H2.pth`;
  const vocabUrl = `${srv.url}models/fix-vocab-300.txt`;
  let serverUp = true;
  try {
    await page.goto(srv.url);
    assert.match(page.url(), /\/web\/$/, '/ redirects to /web/');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    await page.waitForFunction(() => /cross-origin isolated/.test(document.getElementById('runtime-info').textContent));
    const threads = threadsText(Math.min(4, await page.evaluate(() => navigator.hardwareConcurrency)));
    assert.match(await page.textContent('#runtime-info'), new RegExp(`WASM SIMD · ${threads} · cross-origin isolated`));
    await shot(page, 'desktop-welcome.png');

    // Load through the URL fields: the progress bar ends full.
    await loadByUrl(page, modelUrl, vocabUrl);
    assert.equal(await page.evaluate(() => document.getElementById('load-progress').value), 1);
    assert.match(await page.textContent('#load-progress-text'), /Ready in .*fix-L3-C64-H2\.pth · 3 layers · 64 wide · 300 tokens/);
    assert.match(await page.textContent('#model-status'), /fix-L3-C64-H2\.pth/);
    await page.waitForFunction(() => /\d/.test(document.getElementById('memory-info').textContent));
    assert.match(await page.textContent('#runtime-info'), new RegExp(`WASM SIMD · ${threads} · cross-origin isolated`), 'the loaded model runs that many');

    // Shift+Enter is a new line, not a send.
    await page.click('#composer-input');
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    assert.equal(await page.inputValue('#composer-input'), 'line one\nline two');
    assert.equal(await page.locator('#transcript .msg').count(), 0);
    await page.fill('#composer-input', '');

    // Two chat turns; a seed makes the run reproducible.
    await page.fill('#maxTokens', '80');
    await page.fill('#seed', '42');
    await watchStream(page);
    await send(page, 'Hello there');
    assert.equal(await page.locator('#transcript .msg.user').count(), 1);
    assert.match(await page.textContent('#transcript .msg.assistant .meta'), /\d+ tokens · [\d.]+ tokens\/s/);
    assert.match(await page.textContent('#speed-info'), /[\d.]+ tok\/s/);
    assert.match(await page.textContent('#stats'), /tokens\/s · prompt \d+ tokens/);
    const firstReply = (await readSaved(page)).chat.messages[1];
    const second = 'How are you?';
    await send(page, second);
    // Only what is new is fed (the first reply and the new turn): the state cache has the first prompt.
    const secondPrompt = (await readSaved(page)).chat;
    assert.equal(secondPrompt.messages.length, 4);
    assert.ok(await cachedTokensShown(page) > 0, await page.textContent('#stats'));
    // (At most a token per byte: the reply as text may tokenize to more tokens than were generated.)
    assert.ok(await promptTokensShown(page) - await cachedTokensShown(page) <= Buffer.byteLength(`Assistant: ${firstReply.text}\n\nUser: ${second}\n\nAssistant:`),
      'the second turn feeds only the first reply and its own text');
    await shot(page, 'desktop-chat.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, 'phone-chat.png');
    await page.click('#drawer-toggle');
    await page.waitForFunction(() => document.getElementById('sidebar').classList.contains('open'));
    await shot(page, 'phone-drawer.png');
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !document.getElementById('sidebar').classList.contains('open'));
    await page.setViewportSize({ width: 1280, height: 800 });

    // A long reply (no stop strings of our own, a huge max tokens), stopped with Escape
    // mid-way. The turn still ends at a blank line (the chat format's end of turn), which
    // the fixture's noise soon writes: negative penalties make it repeat itself instead.
    await page.fill('#stop', '');
    await page.fill('#maxTokens', '100000');
    await page.fill('#presencePenalty', '-2');
    await page.fill('#frequencyPenalty', '-2');
    await watchStream(page);
    const n = await send(page, 'Tell me a very long story.', { wait: false });
    await page.waitForFunction(() => document.querySelector('#transcript .msg.assistant.streaming .bubble')?.textContent.length > 200);
    assert.equal(await page.isVisible('#stop-button'), true, 'the Stop button shows while generating');
    await page.keyboard.press('Escape');
    await appIs(page, 'ready', 10000);
    assert.equal(await page.locator('#transcript .msg').count(), n);
    assert.match(await page.textContent('#transcript .msg.assistant:last-child .meta'), /stopped/);
    assert.ok((await streamedLengths(page)).length >= 3, 'the reply streamed in pieces');
    const stopped = (await readSaved(page)).chat.messages.at(-1);
    assert.equal(stopped.stopped, true);
    assert.ok(stopped.meta.tokens < 100000, 'stopped early');

    // Settings: the usual stop string back, a lower temperature; remembered.
    await page.fill('#presencePenalty', '0.5');
    await page.fill('#frequencyPenalty', '0.5');
    await page.fill('#stop', '\\n\\n');
    await page.fill('#maxTokens', '60');
    await page.fill('#temperature', '0.7');
    const { prefs } = await readSaved(page);
    assert.deepEqual(prefs.settings.chat.stop, ['\n\n']);
    assert.equal(prefs.settings.chat.temperature, 0.7);
    assert.equal(prefs.settings.chat.seed, 42);
    assert.equal(prefs.settings.chat.banEndOfText, true, 'the chat default, as in ChatRWKV');

    // Completion mode (its own settings and session).
    await page.click('#tab-completion');
    assert.equal(await page.textContent('#sampling-mode'), 'completion');
    assert.equal(await page.inputValue('#topP'), '0.85');
    await page.fill('#maxTokens', '30');
    await page.fill('#completion-input', 'Once upon a time');
    await page.click('#complete-button');
    await appIs(page, 'ready');
    assert.match(await page.textContent('#stats'), /^30 tokens/);
    assert.ok((await page.textContent('#completion-output .gen-part')).length > 0);
    assert.equal(await page.textContent('#completion-output .prompt-part'), 'Once upon a time');
    await shot(page, 'desktop-completion.png');
    await page.click('#tab-chat');

    // The files the offline page needs are stored: the page (service worker) and the model (library cache).
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 20000 });
    await page.waitForFunction(() => !document.getElementById('model-offline').hidden);

    // Reload: the model comes back from the cache, the chat from IndexedDB, and the states of its prompts too.
    await page.reload();
    await appIs(page, 'ready');
    assert.equal(await page.locator('#transcript .msg').count(), 6);
    assert.equal(await page.inputValue('#temperature'), '0.7');
    assert.match(await page.textContent('#load-progress-text'), /Ready/);
    const saved = await readSaved(page);
    await watchStream(page);
    const third = 'Continue, please.';
    await send(page, third);
    const after = await readSaved(page);
    assert.equal(after.chat.messages.length, 8);
    // The same messages in Node (without a state cache) give the same reply; the page fed only what its stored states lacked.
    assert.ok(await cachedTokensShown(page) > 0, 'after a reload the states come from IndexedDB');
    const { load } = await import('../../js/rwkv.mjs');
    const model = await load(path.join(fixtures, 'fix-L3-C64-H2.pth'), { vocab: path.join(fixtures, 'fix-vocab-300.txt'), stateCache: 0 });
    try {
      const expected = await model.chat.completions.create({ ...await requestOf(saved.prefs), messages: [...asMessages(saved.chat), { role: 'user', content: third }] });
      assert.equal(after.chat.messages.at(-1).text, expected.choices[0].message.content);
      assert.equal(await promptTokensShown(page), expected.usage.prompt_tokens);
    } finally {
      await model.dispose();
    }

    // Offline: the server is gone and the browser has no network; the page, the library,
    // the wasm and the model all come from this device.
    await srv.close();
    serverUp = false;
    await ctx.setOffline(true);
    await page.reload();
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    await appIs(page, 'ready');
    assert.equal(await page.locator('#transcript .msg').count(), 8);
    assert.match(await page.textContent('#runtime-info'), new RegExp(`WASM SIMD · ${threads} · cross-origin isolated`), 'the pthread build works offline too');
    await send(page, 'Are we offline?');
    assert.equal(await page.locator('#transcript .msg').count(), 10);
    assert.match(await page.textContent('#transcript .msg.assistant:last-child .meta'), /\d+ tokens/);
    await shot(page, 'desktop-offline.png');

    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    if (serverUp) await srv.close();
  }
});

test('chat options: a system prompt, thinking folded under the answer, JSON mode', { skip, timeout: 180000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [fixtures] });
  const browser = await launch();
  const { page } = browser;
  const errors = collectErrors(page);
  const { load } = await import('../../js/rwkv.mjs');
  const model = await load(path.join(fixtures, 'fix-L3-C64-H2.pth'), { vocab: path.join(fixtures, 'fix-vocab-300.txt'), stateCache: 0 });
  try {
    await page.goto(`${srv.url}web/`);
    await loadByUrl(page, `${srv.url}models/fix-L3-C64-H2.pth`, `${srv.url}models/fix-vocab-300.txt`);
    await page.fill('#maxTokens', '40');
    await page.fill('#seed', '5');
    const system = 'You are terse.';
    await page.fill('#system-prompt', system);
    await send(page, 'Hi');
    let saved = await readSaved(page);
    assert.equal(saved.prefs.chatOptions.system, system);
    const req = await requestOf(saved.prefs);
    const history = () => [{ role: 'system', content: system }, ...asMessages(saved.chat)];
    const want1 = await model.chat.completions.create({ ...req, messages: history().slice(0, -1) });
    assert.equal(saved.chat.messages[1].text, want1.choices[0].message.content, 'the system prompt went into the request');

    // Thinking: the fixture's noise never closes its thoughts, so all of the reply is thoughts, folded away.
    await page.check('#thinking');
    await send(page, 'Why?');
    saved = await readSaved(page);
    const asked = history().slice(0, -1);
    const want2 = await model.chat.completions.create({ ...req, messages: asked, thinking: true });
    const last = page.locator('#transcript .msg.assistant').last();
    assert.equal(await last.locator('details.thoughts').isVisible(), true);
    assert.equal(await last.locator('details.thoughts').getAttribute('open'), null, 'folded');
    assert.equal(await last.locator('.thought-text').textContent(), want2.choices[0].message.reasoning_content);
    assert.equal(saved.chat.messages.at(-1).thought, want2.choices[0].message.reasoning_content);
    assert.equal(await last.locator('.bubble').textContent(), want2.choices[0].message.content);
    await last.locator('details.thoughts summary').click();
    await shot(page, 'desktop-thinking.png');

    // JSON mode: a JSON object, whatever the model.
    await page.uncheck('#thinking');
    await page.check('#json-mode');
    await page.fill('#maxTokens', '300');
    await send(page, 'Some data, please.');
    saved = await readSaved(page);
    const reply = saved.chat.messages.at(-1).text;
    const doc = JSON.parse(reply);
    assert.ok(doc !== null && typeof doc === 'object' && !Array.isArray(doc), reply);
    const want3 = await model.chat.completions.create({ ...await requestOf(saved.prefs), messages: history().slice(0, -1), response_format: { type: 'json_object' } });
    assert.equal(reply, want3.choices[0].message.content);
    assert.equal(await page.locator('#transcript .msg.assistant').last().locator('details.thoughts').isHidden(), true);
    assert.deepEqual(errors, []);
  } finally {
    await model.dispose();
    await browser.close();
    await srv.close();
  }
});

// A prompt of well over 16 tokens: its prefill is large enough to be split over the threads.
const THREADS_PROMPT = 'Once upon a time, in a small town by the sea, there lived an old clockmaker who';

/** Loads the fixture in the page, completes THREADS_PROMPT greedily and seeded, and prefills it through the library. */
async function completionRun(page, srv) {
  await page.goto(`${srv.url}web/`);
  await page.waitForFunction(() => /isolated/.test(document.getElementById('runtime-info').textContent));
  await loadByUrl(page, `${srv.url}models/fix-L3-C64-H2.pth`, `${srv.url}models/fix-vocab-300.txt`);
  const shown = await page.textContent('#runtime-info');
  await page.click('#tab-completion');
  await page.fill('#maxTokens', '40');
  await page.fill('#completion-input', THREADS_PROMPT);
  const texts = [];
  for (const [temperature, seed] of [['0', ''], ['1', '42']]) {
    await page.fill('#temperature', temperature);
    await page.fill('#seed', seed);
    await page.evaluate(() => { document.getElementById('stats').textContent = ''; });
    await page.click('#complete-button');
    await page.waitForFunction(() => document.documentElement.dataset.app === 'ready' && /^40 tokens/.test(document.getElementById('stats').textContent));
    texts.push(await page.textContent('#completion-output .gen-part'));
  }
  // The library itself in the page: its runtime and the logits after the prompt.
  const lib = await page.evaluate(async ({ base, prompt }) => {
    const { load } = await import('/js/rwkv.mjs');
    const model = await load(`${base}models/fix-L3-C64-H2.pth`, { vocab: `${base}models/fix-vocab-300.txt` });
    try {
      const session = await model.createSession();
      const ids = await model.tokenize(prompt);
      return { runtime: model.runtime, tokens: ids.length, logits: Array.from(await session.prefill(ids)) };
    } finally {
      await model.dispose();
    }
  }, { base: srv.url, prompt: THREADS_PROMPT });
  return { shown, texts, lib };
}

test('threads: an isolated page runs the pthread build, a page without isolation (or whose pthread build fails) one thread; the same text and logits', { skip, timeout: 180000 }, async () => {
  ensureBuilt();
  const isolatedSrv = await startServer({ port: 0, models: [fixtures] });
  const plainSrv = await startServer({ port: 0, models: [fixtures], isolation: false });
  const brokenRoot = await mkdtemp(path.join(tmpdir(), 'rwkv-web-root-'));
  let brokenSrv = null;
  const browser = await launch();
  try {
    const threaded = browser.page;
    const plain = await browser.ctx.newPage();
    plain.setDefaultTimeout(30000);
    const errors = [threaded, plain].map((p) => collectErrors(p));
    const cores = await threaded.evaluate(() => navigator.hardwareConcurrency);
    assert.ok(cores > 1, `this test needs navigator.hardwareConcurrency > 1 (got ${cores})`);
    const threads = Math.min(cores, 4);

    const a = await completionRun(threaded, isolatedSrv);
    assert.equal(await threaded.evaluate(() => crossOriginIsolated), true);
    assert.equal(a.shown, `WASM SIMD · ${threadsText(threads)} · cross-origin isolated`);
    assert.deepEqual(a.lib.runtime, { threads, simd: simdOf('rwkv-relaxed-mt.wasm') });
    assert.ok(a.lib.tokens >= 16, `the prompt is split over the threads (${a.lib.tokens} tokens)`);

    const b = await completionRun(plain, plainSrv);
    assert.equal(await plain.evaluate(() => crossOriginIsolated), false);
    assert.equal(b.shown, 'WASM SIMD · 1 thread · not isolated');
    assert.deepEqual(b.lib.runtime, { threads: 1, simd: simdOf('rwkv-relaxed.wasm') });

    // The kernels give the same bits for any thread count: the same text, the same logits.
    assert.ok(a.texts.every((t) => t.length > 0));
    assert.deepEqual(a.texts, b.texts);
    assert.notEqual(a.texts[0], a.texts[1], 'greedy and seeded runs differ');
    assert.deepEqual(a.lib.logits, b.lib.logits);
    const { load } = await import('../../js/rwkv.mjs');
    const model = await load(path.join(fixtures, 'fix-L3-C64-H2.pth'), { vocab: path.join(fixtures, 'fix-vocab-300.txt'), threads: 1 });
    try {
      const session = await model.createSession();
      assert.deepEqual(Array.from(await session.prefill(await model.tokenize(THREADS_PROMPT))), a.lib.logits, 'as in Node');
    } finally {
      await model.dispose();
    }

    // An isolated page whose pthread build cannot start (its worker script is missing)
    // falls back to one thread, with a warning and no error.
    await mkdir(path.join(brokenRoot, 'build/wasm'), { recursive: true });
    for (const dir of ['web', 'js']) await cp(path.join(repo, dir), path.join(brokenRoot, dir), { recursive: true });
    for (const f of BROWSER_BUILD.filter((f) => f !== 'rwkv-mt.web.worker.js')) await cp(path.join(repo, 'build/wasm', f), path.join(brokenRoot, 'build/wasm', f));
    brokenSrv = await startServer({ root: brokenRoot, port: 0, models: [fixtures] });
    const broken = await browser.ctx.newPage();
    errors.push(collectErrors(broken));
    const warnings = [];
    broken.on('console', (m) => m.type() === 'warning' && warnings.push(m.text()));
    await broken.goto(`${brokenSrv.url}web/`);
    const c = await broken.evaluate(async ({ base, prompt }) => {
      const { load } = await import('/js/rwkv.mjs');
      const model = await load(`${base}models/fix-L3-C64-H2.pth`, { vocab: `${base}models/fix-vocab-300.txt` });
      try {
        const session = await model.createSession();
        return { runtime: model.runtime, logits: Array.from(await session.prefill(await model.tokenize(prompt))) };
      } finally {
        await model.dispose();
      }
    }, { base: brokenSrv.url, prompt: THREADS_PROMPT });
    assert.deepEqual(c.runtime, { threads: 1, simd: 'wasm-simd128' }, 'the relaxed module was not copied: SIMD128 alone');
    assert.deepEqual(c.logits, a.lib.logits);
    assert.ok(warnings.some((w) => /threaded core did not start/.test(w)), warnings.join('\n'));
    assert.deepEqual(errors.flat(), []);
  } finally {
    await browser.close();
    await isolatedSrv.close();
    await plainSrv.close();
    await brokenSrv?.close();
    await rm(brokenRoot, { recursive: true, force: true });
  }
});

test('byte-level trained model without isolation; errors are explained', { skip: skip || (!existsSync(referenceModels) && 'no ../shared/reference'), timeout: 180000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [referenceModels, fixtures], isolation: false });
  // The header of a model of the published 2.9B shape (5.9 GB as bf16), then a stall.
  const cfg = shapeConfig('2.9B');
  const zeros = function* () { for (;;) yield new Float32Array(1 << 14); };
  const head = pthHead(officialKeys(cfg).map(({ name, shape }) => ({ name, shape, chunks: zeros })), 1 << 18, { dtype: 'bf16', dir: cfg.name });
  const huge = createServer((req, res) => {
    res.writeHead(200, { 'Content-Length': String(5.9e9), 'Access-Control-Allow-Origin': '*', 'Content-Type': 'application/octet-stream' });
    res.write(head);
  });
  await new Promise((resolve) => huge.listen(0, '127.0.0.1', resolve));
  const hugeUrl = `http://127.0.0.1:${huge.address().port}/huge.pth`;
  const browser = await launch();
  const { page } = browser;
  // The 404 below is reported by Chromium itself.
  const errors = collectErrors(page, [/status of 404/]);
  try {
    await page.goto(`${srv.url}web/`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    await page.waitForFunction(() => /not isolated/.test(document.getElementById('runtime-info').textContent));

    // Errors first: a missing file, a truncated model, a vocabulary too big for the model.
    await page.fill('#model-url', `${srv.url}models/no-such-model.pth`);
    await page.setChecked('#vocab-none', true);
    await page.click('#load-button');
    await page.waitForSelector('#load-error:not([hidden])');
    assert.match(await page.textContent('#load-error'), /The download failed.*HTTP 404/);
    assert.equal(await page.evaluate(() => document.documentElement.dataset.app), 'empty');

    await page.fill('#model-url', `${srv.url}models/bad-truncated.pth`);
    await page.click('#load-button');
    await page.waitForFunction(() => /usable RWKV-7 model/.test(document.getElementById('load-error').textContent));
    assert.equal(await page.isVisible('#load-error'), true);

    await page.setChecked('#vocab-none', false);
    await page.fill('#model-url', `${srv.url}models/tiny-rwkv-7v0-834K.fp32.pth`);
    await page.fill('#vocab-url', `${srv.url}models/fix-vocab-300.txt`);
    await page.click('#load-button');
    await page.waitForFunction(() => /vocabulary does not fit/.test(document.getElementById('load-error').textContent));

    // A model too big for the 4 GB a wasm32 heap can address as bf16: refused at its
    // header, before the rest downloads (the server stalls after it), with each size.
    await page.fill('#model-url', hugeUrl);
    await page.setChecked('#vocab-none', true);
    await page.selectOption('#quant', 'bf16');
    await page.click('#load-button');
    await page.waitForFunction(() => /does not fit in memory/.test(document.getElementById('load-error').textContent));
    assert.match(await page.textContent('#load-error'), /out of memory: the model needs [\d.]+ [MG]B as BF16.*as int8.*as q4/);
    await page.selectOption('#quant', 'auto');

    // The trained byte-level model needs no vocabulary.
    await loadByUrl(page, `${srv.url}models/tiny-rwkv-7v0-834K.fp32.pth`, null);
    assert.match(await page.textContent('#load-progress-text'), /12 layers · 64 wide · 256 tokens/);
    await page.fill('#maxTokens', '120');
    await page.fill('#seed', '7');
    await send(page, 'Hello! Who are you?');
    const reply = await page.textContent('#transcript .msg.assistant .bubble');
    assert.ok(reply.length > 0, 'a reply');
    await send(page, 'Tell me more.');
    await page.waitForTimeout(100);
    await shot(page, 'desktop-tiny-model.png');

    // The same model with its matrices converted to int8 while loading (the choice is kept).
    await page.selectOption('#quant', 'int8');
    await loadByUrl(page, `${srv.url}models/tiny-rwkv-7v0-834K.fp32.pth`, null);
    assert.match(await page.textContent('#load-progress-text'), /of q8_0 weights/);
    await page.click('#new-chat');
    await send(page, 'Hello! Who are you?');
    assert.ok((await page.textContent('#transcript .msg.assistant .bubble')).length > 0, 'a reply from the int8 model');
    assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem(Object.keys(localStorage).find((k) => /pref/i.test(k)))).quant), 'int8');
    await page.selectOption('#quant', 'auto');

    // Local files: a model dropped on the page, a vocabulary from the file picker.
    await page.evaluate(async (url) => {
      const bytes = await (await fetch(url)).blob();
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dropped-model.pth'));
      for (const type of ['dragenter', 'dragover', 'drop'])
        document.body.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, `${srv.url}models/fix-L3-C64-H2.pth`);
    await page.waitForFunction(() => !document.getElementById('model-file-chip').hidden);
    assert.match(await page.textContent('#model-file-name'), /dropped-model\.pth · 423 KB/);
    assert.equal(await page.isHidden('#drop-overlay'), true);
    await page.setInputFiles('#vocab-file', path.join(fixtures, 'fix-vocab-300.txt'));
    assert.match(await page.textContent('#vocab-file-name'), /fix-vocab-300\.txt/);
    assert.equal(await page.isChecked('#vocab-none'), false);
    await page.click('#load-button');
    await appIs(page, 'ready');
    assert.equal(await page.isVisible('#load-error'), false);
    assert.match(await page.textContent('#model-status'), /dropped-model\.pth · 3×64/);
    // The open chat belongs to the other model: it says so instead of mixing states.
    assert.match(await page.textContent('#chat-notice'), /held with another model/);
    await page.click('#new-chat');
    await send(page, 'Hi');
    assert.equal(await page.locator('#transcript .msg').count(), 2);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await srv.close();
    huge.closeAllConnections();
    huge.close();
  }
});

test('the menu of published models: memory per precision from the core, the one Automatic loads marked, a click fills the fields', { skip, timeout: 120000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [fixtures] });
  const browser = await launch();
  const { page } = browser;
  const errors = collectErrors(page);
  try {
    await page.goto(`${srv.url}web/`);
    const { G1_MODELS, WORLD_VOCAB_URL, shapeDims } = await import('../../js/catalog.mjs');
    const rwkv = await import('../../js/rwkv.mjs');
    const plans = await rwkv.planShapes(G1_MODELS.map((m) => shapeDims(m.shape)), { worker: false });
    await page.waitForFunction((n) => document.querySelectorAll('#model-catalog .catalog-memory .fits').length === n, G1_MODELS.length);
    const items = await page.$$eval('#model-catalog .catalog-item', (els) => els.map((el) => ({
      id: el.dataset.model, memory: el.querySelector('.catalog-memory').textContent, fits: el.querySelector('.fits').textContent,
    })));
    const gb = (b) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GB` : `${Math.round(b / 2 ** 20)} MB`);
    const names = { BF16: 'bf16', Q8_0: 'int8', Q4_0: '4-bit' };
    assert.deepEqual(items.map((i) => i.id), G1_MODELS.map((m) => m.id));
    items.forEach((item, i) => {
      for (const [type, name] of Object.entries(names)) assert.ok(item.memory.includes(`${name} ${gb(plans[i].bytes[type])}`), `${item.id}: ${item.memory}`);
      assert.equal(item.fits, `${names[plans[i].auto]} ${gb(plans[i].bytes[plans[i].auto])}`, item.id);
    });
    assert.equal(await page.inputValue('#quant'), 'auto');
    await page.fill('#vocab-url', '');
    await page.click('#model-catalog [data-model="g1a-1.5b"]');
    assert.equal(await page.inputValue('#model-url'), G1_MODELS[2].url);
    assert.equal(await page.inputValue('#vocab-url'), WORLD_VOCAB_URL);
    assert.equal(await page.getAttribute('#model-catalog [data-model="g1a-1.5b"]', 'aria-pressed'), 'true');
    assert.equal(await page.getAttribute('#model-catalog [data-model="g1a-0.1b"]', 'aria-pressed'), 'false');
    await shot(page, 'model-menu.png');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await srv.close();
  }
});

test('a dropped .rwkv file brings its own vocabulary', { skip, timeout: 120000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [fixtures] });
  const browser = await launch();
  const { page } = browser;
  const errors = collectErrors(page);
  try {
    await page.goto(`${srv.url}web/`);
    assert.equal(await page.getAttribute('#model-file', 'accept'), '.pth,.safetensors,.gguf,.rwkv,.bin');
    await page.evaluate(async (url) => {
      const dt = new DataTransfer();
      dt.items.add(new File([await (await fetch(url)).blob()], 'fix-L3-C64-H2.rwkv'));
      for (const type of ['dragenter', 'dragover', 'drop'])
        document.body.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, `${srv.url}models/fix-L3-C64-H2.rwkv`);
    await page.waitForFunction(() => !document.getElementById('model-file-chip').hidden);
    // No vocabulary to fetch: the file's own is used.
    assert.equal(await page.isChecked('#vocab-none'), true);
    await page.click('#load-button');
    await appIs(page, 'ready');
    assert.equal(await page.isVisible('#load-error'), false);
    assert.match(await page.textContent('#load-progress-text'), /fix-L3-C64-H2\.rwkv · 3 layers · 64 wide · 300 tokens/);
    await send(page, 'Hi');
    assert.equal(await page.locator('#transcript .msg').count(), 2);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await srv.close();
  }
});

test('an update of the files is picked up: the service worker never serves a stale wasm', { skip, timeout: 120000 }, async () => {
  ensureBuilt();
  // A copy of what the page needs, so that a "rebuild" can be simulated.
  const root = await mkdtemp(path.join(tmpdir(), 'rwkv-web-root-'));
  for (const dir of ['web', 'js']) await cp(path.join(repo, dir), path.join(root, dir), { recursive: true });
  await mkdir(path.join(root, 'build/wasm'), { recursive: true });
  for (const f of BROWSER_BUILD) await cp(path.join(repo, 'build/wasm', f), path.join(root, 'build/wasm', f));
  const srv = await startServer({ root, port: 0, models: [fixtures] });
  const browser = await launch();
  const { page } = browser;
  const errors = collectErrors(page);
  try {
    await page.goto(`${srv.url}web/`);
    const v1 = (await (await fetch(`${srv.url}web/version.json`)).json()).version;
    await page.waitForFunction((v) => navigator.serviceWorker.controller?.scriptURL.endsWith(`v=${v}`), v1, { timeout: 20000 });
    await loadByUrl(page, `${srv.url}models/fix-L3-C64-H2.pth`, `${srv.url}models/fix-vocab-300.txt`);

    await appendFile(path.join(root, 'build/wasm/rwkv.web.mjs'), '\n// rebuilt\n');
    const v2 = (await (await fetch(`${srv.url}web/version.json`)).json()).version;
    assert.notEqual(v2, v1);
    // The reload is served by the old version, which sees the new one and hands over (one more reload).
    await page.reload();
    await page.waitForFunction((v) => navigator.serviceWorker.controller?.scriptURL.endsWith(`v=${v}`), v2, { timeout: 30000 });
    await appIs(page, 'ready');
    const glue = await page.evaluate(async () => (await fetch('../build/wasm/rwkv.web.mjs')).text());
    assert.ok(glue.endsWith('// rebuilt\n'), 'the new wasm glue is served');
    const caches = await page.evaluate(() => caches.keys());
    assert.deepEqual(caches.filter((c) => c.startsWith('rwkv-web-app-')), [`rwkv-web-app-${v2}`], 'the old version is deleted');
    await send(page, 'Still working?');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await srv.close();
    await rm(root, { recursive: true, force: true });
  }
});
