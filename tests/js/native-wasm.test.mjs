// The same seed and prompt give byte-identical text from the native build
// (build/native/rwkv_generate) and the wasm build (js/cli.mjs generate), and across runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { root, fixtureDir, referenceDir, skipNoFixtures, skipNoReference } from './helpers.mjs';

const run = promisify(execFile);
const native = path.join(root, 'build/native/rwkv_generate');
const skipNoNative = existsSync(native) ? false : `${native} is not built`;

// Ids whose bytes are not UTF-8 on their own (bytes literals of the vocabulary, and the
// single bytes 0x80-0xFF): banned so that the text is the same bytes on both sides (the JS
// side shows lone bytes as U+FFFD).
function nonUtf8Ids(vocabFile) {
  const ids = [0];
  for (const line of readFileSync(vocabFile, 'latin1').split('\n')) {
    const m = /^(\d+) b['"]/.exec(line);
    if (m) ids.push(Number(m[1]));
  }
  return ids.join(',');
}

async function compare(model, vocab, prompt, seed, extra = []) {
  const args = ['--prompt', prompt, '--max-tokens', '150', '--seed', String(seed), '--top-p', '0.8',
    '--ban', nonUtf8Ids(vocab), ...extra];
  const n = await run(native, [model, '--vocab', vocab, ...args], { encoding: 'buffer', maxBuffer: 1 << 24 });
  const w1 = await run(process.execPath, [path.join(root, 'js/cli.mjs'), 'generate', '--model', model, '--vocab', vocab, ...args], { encoding: 'buffer', maxBuffer: 1 << 24 });
  const w2 = await run(process.execPath, [path.join(root, 'js/cli.mjs'), 'generate', '--model', model, '--vocab', vocab, ...args], { encoding: 'buffer', maxBuffer: 1 << 24 });
  const strip = (b) => b.subarray(0, b.length - 1);  // the CLI ends with a newline
  assert.ok(n.stdout.length > 20, 'generated something');
  assert.deepEqual(strip(w1.stdout), n.stdout);
  assert.deepEqual(w2.stdout, w1.stdout);
}

test('native and wasm generate the same bytes (fixture model and vocabulary)', { skip: skipNoFixtures || skipNoNative }, async () => {
  for (const seed of [1, 11, 12345])
    await compare(path.join(fixtureDir, 'fix-L3-C64-H2.pth'), path.join(fixtureDir, 'fix-vocab-300.txt'), 'User: hello world', seed,
      ['--presence-penalty', '0.3', '--stop', 'the']);
});

test('native and wasm generate the same bytes (World vocabulary, 65536-token model)', { skip: skipNoReference || skipNoNative }, async () => {
  await compare(path.join(referenceDir, 'models/rand-L2-D128-V65536.pth'), path.join(referenceDir, 'vocab/rwkv_vocab_v20230424.txt'),
    'User: The Eiffel tower is in\n\nAssistant:', 3, ['--top-k', '50', '--min-p', '0.01']);
});
