// One engine, one options schema, layers that only depend downwards:
//   - the options schema (js/options.mjs) is what the core checks (the same ranges, by
//     the header the build generates), what the CLI parses and lists, and what
//     js/rwkv.d.ts declares;
//   - the imports of js/ and the #includes of src/ read as layers;
//   - the engine's API beyond generation: vocabularies on their own, all-rows prefill,
//     saving a model, and the engine run in the calling thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { GENERATE_OPTIONS, LOAD_OPTIONS, checkValue, rangeText } from '../../js/options.mjs';
import { root, fixtureDir, skipNoFixtures, maxAbsDiff } from './helpers.mjs';

const run = promisify(execFile);
const tmp = mkdtempSync(path.join(tmpdir(), 'rwkv-engine-'));
const modelFile = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const vocabFile = path.join(fixtureDir, 'fix-vocab-300.txt');

test('the core refuses exactly what the schema refuses, with the schema\'s range in the message', { skip: skipNoFixtures }, async () => {
  const model = await rwkv.load(modelFile, { vocab: vocabFile, threads: 1 });
  try {
    const s = await model.createSession();
    for (const o of GENERATE_OPTIONS.filter((x) => x.type === 'number' || x.type === 'integer')) {
      for (const bad of [o.min - 1, o.max + 1, NaN].filter((v) => !Number.isFinite(v) ? Number.isNaN(v) : true)) {
        assert.ok(checkValue(o, bad), `${o.name}: the schema takes ${bad}`);
        const err = await s.generate('hi', { maxTokens: 1, [o.name]: bad }).result.then(() => null, (e) => e);
        assert.ok(err instanceof rwkv.InvalidArgumentError, `${o.name} = ${bad}: ${err}`);
        if (!Number.isNaN(bad)) assert.ok(err.message.includes(`${o.name} must be ${rangeText(o)}`), err.message);
      }
      for (const good of [o.min, o.max].filter(Number.isFinite)) {
        if (o.name === 'maxTokens' && good > 8) continue;  // valid, but not worth generating
        assert.equal(checkValue(o, good), null);
        await s.generate('hi', { maxTokens: 1, [o.name]: good }).result;
      }
    }
  } finally {
    await model.dispose();
  }
});

test('the generated C++ header lists every option the core holds, with the schema\'s ranges', async () => {
  const out = path.join(tmp, 'rwkv_options.h');
  await run(process.execPath, [path.join(root, 'scripts/options-header.mjs'), out]);
  const header = readFileSync(out, 'utf8');
  for (const o of GENERATE_OPTIONS.filter((x) => x.core)) {
    const field = o.core.split('.')[1];
    assert.match(header, new RegExp(`X\\(${field}, "${o.name}"`), o.name);
    if (o.type === 'number' || o.type === 'integer') assert.ok(header.includes(JSON.stringify(rangeText(o))), o.name);
  }
});

test('rwkv.d.ts declares every option of the schema, and the CLI lists and parses every flag', async () => {
  const dts = readFileSync(path.join(root, 'js/rwkv.d.ts'), 'utf8');
  const block = (name) => dts.slice(dts.indexOf(`export interface ${name}`), dts.indexOf('}', dts.indexOf(`export interface ${name}`)));
  const declared = block('SamplingOptions') + block('GenerateOptions') + block('LoadOptions');
  for (const o of [...GENERATE_OPTIONS, ...LOAD_OPTIONS]) assert.match(declared, new RegExp(`\\b${o.name}\\?:`), `${o.name} is not in rwkv.d.ts`);
  const { stdout } = await run(process.execPath, [path.join(root, 'js/cli.mjs'), '--help']);
  for (const o of [...GENERATE_OPTIONS, ...LOAD_OPTIONS].filter((x) => x.flag && x.name !== 'cacheDir'))
    assert.ok(stdout.includes(`--${o.flag}`) && stdout.includes(o.help), `--${o.flag} is not in --help`);
  const cli = (args) => run(process.execPath, [path.join(root, 'js/cli.mjs'), ...args]).then(() => null, (e) => e);
  for (const [flag, value, pattern] of [['top-p', '1.5', /--top-p: '1\.5' must be between 0 and 1/], ['top-k', '2.5', /--top-k: '2\.5' must be an integer/],
    ['quant', 'int3', /unknown quant 'int3'/], ['logit-bias', '5=1', /'5=1' is not ID:BIAS/], ['threads', '0', /must be between 1 and 64/]]) {
    const err = await cli(['generate', '--model', 'x.pth', '--prompt', 'hi', `--${flag}`, value]);
    assert.equal(err?.code, 2, `--${flag} ${value}`);
    assert.match(err.stderr, pattern);
  }
});

// ---- layers

function filesUnder(dir, exts) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p, exts));
    else if (exts.some((e) => name.endsWith(e))) out.push(p);
  }
  return out;
}

test('the shipped library imports nothing from scripts/ or tests/', () => {
  for (const file of filesUnder(path.join(root, 'js'), ['.mjs'])) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith('.')) continue;
      const target = path.relative(root, path.resolve(path.dirname(file), spec));
      assert.ok(!/^(scripts|tests)\//.test(target), `${path.relative(root, file)} imports ${target}`);
    }
  }
});

test('src/ folders include only from their own layer or the layers below', () => {
  // Each folder's allowed includes: the order of the layers (docs/README.md, README "Layout").
  const below = {
    base: ['base'], formats: ['base', 'formats'], kernels: ['base', 'kernels'],
    model: ['base', 'formats', 'kernels', 'model'], text: ['base', 'formats', 'kernels', 'model', 'text'],
    bindings: ['base', 'formats', 'kernels', 'model', 'text', 'bindings'],
  };
  const src = path.join(root, 'src');
  for (const file of filesUnder(src, ['.h', '.cpp'])) {
    const layer = path.relative(src, file).split(path.sep)[0];
    assert.ok(below[layer], `${layer}/ is not a known layer`);
    for (const m of readFileSync(file, 'utf8').matchAll(/#include "([^"]+)"/g)) {
      if (!m[1].includes('/')) continue;  // a generated header of the build
      const to = m[1].split('/')[0];
      assert.ok(below[layer].includes(to), `${path.relative(root, file)} includes ${m[1]}: ${layer}/ may not depend on ${to}/`);
    }
  }
});

// ---- the engine's API

test('a vocabulary on its own tokenizes as the model does; all-rows prefill equals steps', { skip: skipNoFixtures }, async () => {
  const model = await rwkv.load(modelFile, { vocab: vocabFile });
  const vocab = await rwkv.loadVocab(vocabFile);
  try {
    const text = 'the quick brown fox, the lazy dog';
    const ids = await model.tokenize(text);
    assert.deepEqual(await vocab.tokenize(text), ids);
    assert.equal(await vocab.detokenize(ids), text);
    assert.equal(vocab.size, 300);
    const V = model.config.vocabSize;
    const a = await model.createSession(), b = await model.createSession();
    const rows = await a.prefill(ids, { all: true });
    assert.equal(rows.length, ids.length * V);
    for (let i = 0; i < ids.length; ++i) {
      const step = await b.step(ids[i]);
      assert.ok(maxAbsDiff(rows.subarray(i * V, (i + 1) * V), step) <= 1e-5, `row ${i}`);
    }
    assert.deepEqual(await a.saveState(), await b.saveState());
  } finally {
    await vocab.dispose();
    await model.dispose();
  }
  await assert.rejects(vocab.tokenize('x'), rwkv.InvalidArgumentError);
});

test('save writes a .rwkv file that loads to the same logits, with the vocabulary embedded', { skip: skipNoFixtures }, async () => {
  const out = path.join(tmp, 'saved.rwkv');
  const model = await rwkv.load(modelFile, { quant: 'int8' });
  const { bytes, vocabBytes, dtype } = await model.save(out, { vocab: vocabFile, metadata: { source: 'test' } });
  assert.equal(dtype, 'Q8_0');
  assert.equal(statSync(out).size, bytes);
  assert.equal(vocabBytes, statSync(vocabFile).size);
  const again = await rwkv.load(out);
  try {
    assert.ok(again.hasVocab);
    const ids = await again.tokenize('hello world');
    const [x, y] = [await (await model.createSession()).prefill(ids), await (await again.createSession()).prefill(ids)];
    assert.deepEqual(x, y);
  } finally {
    await model.dispose();
    await again.dispose();
  }
});

test('the engine in the calling thread gives what the worker gives, and generation aborts there too', { skip: skipNoFixtures }, async () => {
  const opts = { maxTokens: 24, seed: 3 };
  const inWorker = await rwkv.load(modelFile, { vocab: vocabFile, threads: 1 });
  const inThread = await rwkv.load(modelFile, { vocab: vocabFile, threads: 1, worker: false });
  try {
    const a = await (await inWorker.createSession()).generate('hello', opts).result;
    const b = await (await inThread.createSession()).generate('hello', opts).result;
    assert.equal(b.text, a.text);
    assert.equal(b.tokens, a.tokens);
    const ac = new AbortController();
    const gen = (await inThread.createSession()).generate('hello', { maxTokens: 1000, signal: ac.signal });
    let pieces = 0;
    await assert.rejects((async () => {
      for await (const _ of gen) if (++pieces === 3) ac.abort();
    })(), rwkv.AbortError);
    assert.equal((await gen.result).stopReason, 'aborted');
  } finally {
    await inWorker.dispose();
    await inThread.dispose();
  }
});
