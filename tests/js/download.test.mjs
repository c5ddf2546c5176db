// Downloads the size of a film: a connection cut mid-way is resumed with an HTTP Range
// request (validated by the ETag), the progress keeps counting, and the model is the
// same; when resuming cannot work, the error says what happened (the URL, the bytes
// received of the total, the server's answer). A partial download is never kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { startServer } from './http-server.mjs';
import { fixtureDir, skipNoFixtures } from './helpers.mjs';

const file = 'fix-L3-C64-H2.pth';
let server;
before(async () => { if (!skipNoFixtures) server = await startServer(fixtureDir); });
after(async () => { await server?.close(); });

async function logitsOf(model) {
  const s = await model.createSession();
  return s.prefill([1, 2, 3, 4, 5]);
}

test('a connection dropped mid-download is resumed; progress keeps counting; same model', { skip: skipNoFixtures }, async () => {
  const size = statSync(path.join(fixtureDir, file)).size;
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'rwkv-resume-'));
  const seen = [];
  const model = await rwkv.load(`${server.base}/${file}?drop=100000`, { cacheDir, onProgress: (p) => seen.push(p.loaded) });
  const again = await rwkv.load(path.join(fixtureDir, file));
  try {
    assert.deepEqual(await logitsOf(model), await logitsOf(again));
    assert.ok(seen.every((v, i) => i === 0 || v >= seen[i - 1]), 'progress never goes back');
    assert.equal(seen.at(-1), size);
    assert.equal(server.counts.get(`/${file}`), 2, 'one request, one resume');
    // The model is kept on the device (as loaded: a .rwkv image), as after an uninterrupted download.
    const kept = readdirSync(path.join(cacheDir, 'models'));
    assert.equal(kept.length, 1);
    assert.match(kept[0], /\.rwkv$/);
  } finally {
    await model.dispose();
    await again.dispose();
  }
});

test('when resuming cannot work the error says why, with the bytes received; nothing is cached', { skip: skipNoFixtures }, async () => {
  const size = statSync(path.join(fixtureDir, file)).size;
  const cases = [
    ['noEtag', /stopped after \d+ of \d+ bytes .*no way to resume \(no ETag or Last-Modified\)/],
    ['changed', /stopped after (\d+) of \d+ bytes.*resuming at byte \1 failed: the server answered HTTP 200 with the whole file/],
  ];
  for (const [flag, pattern] of cases) {
    const cacheDir = mkdtempSync(path.join(tmpdir(), 'rwkv-resume-'));
    const url = `${server.base}/${file}?dropEvery=50000&${flag}`;
    const err = await rwkv.load(url, { cacheDir }).then(() => null, (e) => e);
    assert.ok(err instanceof rwkv.LoadError, `${flag}: ${err}`);
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(url) && err.message.includes(`of ${size} bytes`));
    assert.deepEqual(readdirSync(cacheDir), [], `${flag}: something of a failed download was kept`);
  }
  // Every resume cut off again: a few attempts, then the error.
  const before = server.counts.get(`/${file}`) ?? 0;
  const err = await rwkv.load(`${server.base}/${file}?dropEvery=30000`, { cache: false }).then(() => null, (e) => e);
  assert.ok(err instanceof rwkv.LoadError);
  assert.match(err.message, /stopped after \d+ of \d+ bytes .*5 attempts to resume failed/);
  assert.equal(server.counts.get(`/${file}`) - before, 6);
});

test('the converted model is what is kept: one entry per quant, read back without converting; a cache that cannot be written warns, the model runs', { skip: skipNoFixtures }, async () => {
  const cacheDir = mkdtempSync(path.join(tmpdir(), 'rwkv-kept-'));
  const url = `${server.base}/${file}`;
  const first = await rwkv.load(url, { cacheDir, quant: 'int8' });
  const want = await logitsOf(first);
  await first.dispose();
  const [entry] = readdirSync(path.join(cacheDir, 'models'));
  assert.match(entry, /\.Q8_0\.rwkv$/);
  const requests = server.counts.get(`/${file}`);
  const again = await rwkv.load(url, { cacheDir, quant: 'int8' });
  assert.equal(server.counts.get(`/${file}`), requests, 'read from the device');
  assert.equal(again.config.dtype, 'Q8_0');
  assert.deepEqual(await logitsOf(again), want);
  await again.dispose();
  const plain = await rwkv.load(url, { cacheDir });  // another quant: another entry
  assert.equal(plain.config.dtype, 'BF16');
  await plain.dispose();
  assert.equal(readdirSync(path.join(cacheDir, 'models')).length, 2);

  const warnings = [];
  const blocked = path.join(cacheDir, 'models', entry);  // a file where a folder should be
  const m = await rwkv.load(url, { cacheDir: blocked, onWarning: (w) => warnings.push(w) });
  const local = await rwkv.load(path.join(fixtureDir, file));
  assert.deepEqual(await logitsOf(m), await logitsOf(local));
  await m.dispose();
  await local.dispose();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /not kept on this device: .*It runs, but the next load downloads it again/);
});
