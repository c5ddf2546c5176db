// The "Inside the model" panel (web/inspector.mjs) in headless Chromium with the fixture
// model: open by default on a wide screen, drawn live while a reply streams (heatmap,
// half-lives, the selected head's state), the hover line, picking a head; closed by default
// on a phone and opened by its button; tokens/s with the panel closed and open
// (scripts/inspector-speed.mjs), printed. Screenshots go to test-artifacts/.
//
// Needs Chromium and playwright-core, as tests/web/page.test.mjs; skipped without them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/serve.mjs';
import { measureInspectorSpeed, speedReport } from '../../scripts/inspector-speed.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fixtures = path.join(repo, 'build/fixtures');
const artifacts = path.join(repo, 'test-artifacts');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let chromium = null;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  /* reported as a skip */
}
const skip = !existsSync(chromiumPath) ? `no Chromium at ${chromiumPath} (bash scripts/setup.sh --browser)`
  : !chromium ? 'playwright-core is not installed (npm install)' : false;

function ensureBuilt() {
  assert.ok(['rwkv.web.mjs', 'rwkv.web.wasm', 'rwkv-mt.web.mjs', 'rwkv-mt.web.wasm'].every((f) => existsSync(path.join(repo, 'build/wasm', f))),
    'the wasm core is not built: bash scripts/build.sh wasm');
  if (!['fix-L3-C64-H2.pth', 'fix-vocab-300.txt'].every((f) => existsSync(path.join(fixtures, f)))) {
    const r = spawnSync(process.execPath, ['scripts/make-fixtures.mjs', fixtures], { cwd: repo, stdio: 'inherit' });
    assert.equal(r.status, 0, 'scripts/make-fixtures.mjs failed');
  }
}

async function launch(viewport) {
  const dir = await mkdtemp(path.join(tmpdir(), 'rwkv-inspector-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumPath, headless: true, viewport, reducedMotion: 'reduce',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  const page = ctx.pages()[0] ?? await ctx.newPage();
  page.setDefaultTimeout(30000);
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console.error: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return { page, errors, close: async () => { await ctx.close().catch(() => {}); await rm(dir, { recursive: true, force: true }); } };
}

async function shot(page, name) {
  await mkdir(artifacts, { recursive: true });
  await page.waitForTimeout(150);
  await page.screenshot({ path: path.join(artifacts, name) });
}

async function loadFixture(page, srv) {
  await page.goto(`${srv.url}web/`);
  const phone = await page.isVisible('#drawer-toggle');  // narrow screens: the settings are in a drawer
  if (phone) await page.click('#drawer-toggle');
  await page.fill('#model-url', `${srv.url}models/fix-L3-C64-H2.pth`);
  await page.setChecked('#vocab-none', false);
  await page.fill('#vocab-url', `${srv.url}models/fix-vocab-300.txt`);
  await page.click('#load-button');
  await page.waitForFunction(() => document.documentElement.dataset.app === 'ready', null, { timeout: 60000 });
  if (phone && await page.evaluate(() => document.getElementById('sidebar').classList.contains('open'))) await page.click('#drawer-close');
}

/** Pixels of a canvas that are not the first pixel's color (something was drawn). */
const drawnPixels = (page, id) => page.evaluate((canvasId) => {
  const c = document.getElementById(canvasId);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 4; i < d.length; i += 4) if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2] || d[i + 3] !== d[3]) n++;
  return n;
}, id);

test('the panel draws the state live beside the chat on a wide screen; hover and head picking', { skip, timeout: 300000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [fixtures] });
  const { page, errors, close } = await launch({ width: 1600, height: 900 });
  try {
    await loadFixture(page, srv);
    assert.equal(await page.isVisible('#inspector'), true, 'open by default on a wide screen');
    assert.equal(await page.getAttribute('#inspector-toggle', 'aria-expanded'), 'true');
    await page.fill('#maxTokens', '120');
    await page.fill('#seed', '1');
    // Watch the panel while the reply streams: it must draw before the reply ends.
    await page.evaluate(() => {
      window.__drawsWhileStreaming = 0;
      const root = document.getElementById('inspector');
      new MutationObserver(() => {
        if (document.documentElement.dataset.app === 'generating') window.__drawsWhileStreaming = Number(root.dataset.draws);
      }).observe(root, { attributes: true, attributeFilter: ['data-draws'] });
    });
    await page.fill('#composer-input', 'Hello there, how does your memory work?');
    await page.press('#composer-input', 'Enter');
    await page.waitForFunction(() => document.documentElement.dataset.app === 'ready', null, { timeout: 60000 });
    await page.waitForFunction(() => document.getElementById('inspector-state').dataset.layer !== undefined);
    const tokens = Number(await page.getAttribute('#inspector', 'data-tokens'));
    const prompt = Number(/prompt (\d+) token/.exec(await page.textContent('#stats'))[1]);
    const generated = Number(/^(\d+) tokens?/.exec(await page.textContent('#stats'))[1]);
    assert.equal(tokens, prompt + generated, 'one trace record per token fed, prompt included');
    assert.ok(await page.evaluate(() => window.__drawsWhileStreaming) > 0, 'drawn while the reply streamed');
    assert.ok(await drawnPixels(page, 'inspector-heat') > 1000, 'the heatmap is drawn');
    assert.ok(await drawnPixels(page, 'inspector-life') > 100, 'the half-lives are drawn');
    assert.ok(await drawnPixels(page, 'inspector-state') > 100, 'the state is drawn');
    // The heatmap has a column per token (8 px each) and the tokens' text under them.
    const heatWidth = await page.evaluate(() => document.getElementById('inspector-heat').width);
    assert.equal(heatWidth, Math.min(tokens, 300) * 8);

    // Pointing at a cell: that token's learning rate and update size.
    await page.evaluate(() => { document.getElementById('inspector-heat-scroll').scrollLeft = 0; });
    const first = await page.locator('#inspector-heat').boundingBox();
    await page.mouse.move(first.x + 12, first.y + 3 * 14 + 4);  // token 1, layer 1 head 1 (fixture: 14 px rows)
    assert.match(await page.textContent('#inspector-tip'), /learning rate [\d.]+, update [\d.]+.* layer 1 head 1: rate [\d.]+, update [\d.]+/);
    // Clicking picks the head for the state view.
    await page.mouse.click(first.x + 12, first.y + 3 * 14 + 4);
    await page.waitForFunction(() => document.getElementById('inspector-state').dataset.layer === '1' && document.getElementById('inspector-state').dataset.head === '1');
    assert.equal(await page.inputValue('#inspector-layer'), '1');
    await page.selectOption('#inspector-layer', '2');
    await page.waitForFunction(() => document.getElementById('inspector-state').dataset.layer === '2');
    await shot(page, 'inspector-desktop.png');
    await page.evaluate(() => { const el = document.getElementById('inspector'); el.scrollTop = el.scrollHeight; });
    await shot(page, 'inspector-desktop-state.png');

    // Tokens/s with the panel closed and open (printed; the panel must not stall the chat).
    const speed = await measureInspectorSpeed(page, { tokens: 200, runs: 3 });
    console.log(`inspector speed, fixture model:\n${speedReport(speed)}`);
    assert.ok(speed.closedMedian > 0 && speed.openMedian > 0);
    assert.deepEqual(errors, []);
  } finally {
    await close();
    await srv.close();
  }
});

test('on a phone the panel starts closed and opens over the chat', { skip, timeout: 120000 }, async () => {
  ensureBuilt();
  const srv = await startServer({ port: 0, models: [fixtures] });
  const { page, errors, close } = await launch({ width: 390, height: 844 });
  try {
    await loadFixture(page, srv);
    assert.equal(await page.isVisible('#inspector'), false, 'closed by default on a narrow screen');
    await page.fill('#composer-input', 'Hi');
    await page.press('#composer-input', 'Enter');
    await page.waitForFunction(() => document.documentElement.dataset.app === 'ready', null, { timeout: 60000 });
    assert.equal(await page.getAttribute('#inspector', 'data-tokens'), null, 'nothing is traced while the panel is closed');
    await page.click('#inspector-toggle');
    assert.equal(await page.isVisible('#inspector'), true);
    await page.fill('#composer-input', 'Tell me more');
    await page.press('#composer-input', 'Enter');
    await page.waitForFunction(() => document.documentElement.dataset.app === 'ready', null, { timeout: 60000 });
    await page.waitForFunction(() => Number(document.getElementById('inspector').dataset.draws) > 0);
    await shot(page, 'inspector-phone.png');
    await page.click('#inspector-close');
    assert.equal(await page.isVisible('#inspector'), false);
    assert.deepEqual(errors, []);
  } finally {
    await close();
    await srv.close();
  }
});
