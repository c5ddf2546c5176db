// The package from its tarball: `npm pack`, installed into an empty folder, runs the
// README's Node example and examples/node/*.mjs, importing 'rwkv-web' as users do, with
// the same results as the library in this tree. (The browser example: tests/web/examples.test.mjs.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { installPacked } from './packed.mjs';
import { root, fixtureDir, skipNoFixtures } from './helpers.mjs';

const run = promisify(execFile);
const model = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const vocab = path.join(fixtureDir, 'fix-vocab-300.txt');
let installed;

before(async () => { if (!skipNoFixtures) installed = await installPacked(); });

test('the tarball holds the library, the built wasm of every build, docs and examples; nothing of scripts/ or tests/', { skip: skipNoFixtures }, async () => {
  const { stdout } = await run('tar', ['-tzf', installed.tarball]);
  const files = stdout.trim().split('\n').map((f) => f.replace(/^package\//, ''));
  for (const f of ['js/rwkv.mjs', 'js/engine.mjs', 'js/worker.mjs', 'js/rwkv.d.ts', 'build/wasm/rwkv.wasm', 'build/wasm/rwkv.js',
    'build/wasm/rwkv-mt.wasm', 'build/wasm/rwkv.web.mjs', 'build/wasm/rwkv-mt.web.mjs', 'build/wasm/rwkv-mt.web.worker.js', 'examples/browser/index.html'])
    assert.ok(files.includes(f), `${f} is not in the tarball`);
  // The relaxed-SIMD kernels, where clang-19 built them.
  for (const f of ['build/wasm/rwkv-relaxed.wasm', 'build/wasm/rwkv-relaxed-mt.wasm'])
    if (existsSync(path.join(root, f))) assert.ok(files.includes(f), `${f} is not in the tarball`);
  assert.ok(!files.some((f) => /^(scripts|tests|src|build\/(native|fixtures))\//.test(f) || /rwkv_tests/.test(f)), files.join(' '));
});

test('the README\'s Node example runs from the installed package', { skip: skipNoFixtures }, async () => {
  const readme = await readFile(path.join(root, 'README.md'), 'utf8');
  const block = /Node:\s*```js\n([^]*?)```/.exec(readme)?.[1];
  assert.ok(block?.includes("from 'rwkv-web'"), 'the README has a Node example importing rwkv-web');
  const script = block.replaceAll("'rwkv7-g1a-0.1b.pth'", JSON.stringify(model)).replaceAll("'rwkv_vocab_v20230424.txt'", JSON.stringify(vocab));
  assert.notEqual(script, block, 'the example names the model and vocabulary files');
  await writeFile(path.join(installed.app, 'readme.mjs'), script);
  const { stdout } = await run(process.execPath, ['readme.mjs'], { cwd: installed.app });
  // The same generation through the library of this tree.
  const m = await rwkv.load(model, { vocab });
  const want = await (await m.createSession()).generate('User: What is RWKV?\n\nAssistant:', { stop: ['\n\n'], seed: 1 }).text();
  await m.dispose();
  assert.equal(stdout, want);
});

test('examples/node run from the installed package', { skip: skipNoFixtures }, async () => {
  await cp(path.join(installed.pkg, 'examples'), path.join(installed.app, 'examples'), { recursive: true });
  const { stdout: text } = await run(process.execPath, ['examples/node/generate.mjs', model, vocab, 'hello'], { cwd: installed.app });
  const m = await rwkv.load(model, { vocab });
  const want = await (await m.createSession()).generate('hello', { stop: ['\n\n'], maxTokens: 64, seed: 1 }).text();
  const ids = await m.tokenize('Hello there');
  const rows = await (await m.createSession()).prefill(ids, { all: true });
  await m.dispose();
  assert.equal(text, `${want}\n`);
  const inline = JSON.parse((await run(process.execPath, ['examples/node/inline.mjs', model, vocab], { cwd: installed.app })).stdout);
  assert.deepEqual(inline.tokens, ids);
  const V = rows.length / ids.length;
  assert.deepEqual(inline.argmax, ids.map((_, t) => { const r = rows.subarray(t * V, (t + 1) * V); return r.indexOf(Math.max(...r)); }));
  assert.equal(inline.threads, 1);
  assert.ok(existsSync(path.join(installed.pkg, 'build/wasm/rwkv.wasm')));
});
