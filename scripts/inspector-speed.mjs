#!/usr/bin/env node
// Tokens/s of the demo page with the "Inside the model" panel closed and open, in
// headless Chromium: completions of the same prompt and settings, alternating closed,
// open, closed, open... so that a busy machine disturbs both alike; prints every run, the
// medians and their ratio. The speed is the page's own (tokens/s of decoding in the
// worker, as the stats line shows it).
//   node scripts/inspector-speed.mjs [--model FILE] [--vocab FILE] [--tokens 200] [--runs 3]
// Defaults: the fixture model (build/fixtures). tests/web/inspector.test.mjs runs
// measureInspectorSpeed on it too. Needs Chromium and playwright-core (scripts/setup.sh --browser).
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startServer } from './serve.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/** Opens or closes the panel through its button. */
async function setPanel(page, open) {
  const isOpen = await page.evaluate(() => !document.getElementById('inspector').hidden);
  if (isOpen !== open) await page.click('#inspector-toggle');
}

/**
 * On a page with a model loaded: `runs` completions of `tokens` tokens each with the panel
 * closed and open, alternating; the page's tokens/s of each. Leaves the panel closed.
 */
export async function measureInspectorSpeed(page, { tokens = 200, runs = 3, prompt = 'Once upon a time' } = {}) {
  await page.click('#tab-completion');
  await page.fill('#maxTokens', String(tokens));
  await page.fill('#temperature', '1');
  await page.fill('#seed', '7');
  await page.setChecked('#banEndOfText', true);
  await page.fill('#completion-input', prompt);
  const out = { closed: [], open: [] };
  for (let r = 0; r < runs; r++) {
    for (const open of [false, true]) {
      await setPanel(page, open);
      await page.evaluate(() => { document.getElementById('stats').textContent = ''; });
      await page.click('#complete-button');
      await page.waitForFunction((n) => document.documentElement.dataset.app === 'ready' &&
        new RegExp(`^${n} tokens`).test(document.getElementById('stats').textContent), tokens, { timeout: 300000 });
      const tps = Number(/· ([\d.]+) tokens\/s/.exec(await page.textContent('#stats'))[1]);
      out[open ? 'open' : 'closed'].push(tps);
    }
  }
  await setPanel(page, false);
  return { ...out, closedMedian: median(out.closed), openMedian: median(out.open), ratio: median(out.open) / median(out.closed) };
}

/** One line per figure, for people. */
export function speedReport({ closed, open, closedMedian, openMedian, ratio }) {
  return [`panel closed: ${closed.join(', ')} tokens/s (median ${closedMedian})`,
    `panel open:   ${open.join(', ')} tokens/s (median ${openMedian})`,
    `open / closed: ${ratio.toFixed(3)}`].join('\n');
}

async function main() {
  const { values } = parseArgs({ options: {
    model: { type: 'string', default: path.join(repo, 'build/fixtures/fix-L3-C64-H2.pth') },
    vocab: { type: 'string', default: path.join(repo, 'build/fixtures/fix-vocab-300.txt') },
    tokens: { type: 'string', default: '200' }, runs: { type: 'string', default: '3' },
  } });
  const { chromium } = await import('playwright-core');
  const dirs = [...new Set([path.dirname(path.resolve(values.model)), path.dirname(path.resolve(values.vocab))])];
  const srv = await startServer({ port: 0, models: dirs });
  const profile = await mkdtemp(path.join(tmpdir(), 'rwkv-inspector-speed-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, viewport: { width: 1600, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  try {
    const page = ctx.pages()[0] ?? await ctx.newPage();
    await page.goto(`${srv.url}web/`);
    const url = (file) => `${srv.url}models/${path.basename(file)}`;  // every folder is served at models/
    await page.fill('#model-url', url(values.model));
    await page.setChecked('#vocab-none', false);
    await page.fill('#vocab-url', url(values.vocab));
    await page.click('#load-button');
    await page.waitForFunction(() => document.documentElement.dataset.app === 'ready', null, { timeout: 600000 });
    const result = await measureInspectorSpeed(page, { tokens: Number(values.tokens), runs: Number(values.runs) });
    console.log(`${path.basename(values.model)}, ${values.tokens} tokens per run, Chromium ${ctx.browser()?.version() ?? ''}`);
    console.log(speedReport(result));
  } finally {
    await ctx.close();
    await srv.close();
    await rm(profile, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
