// `node js/cli.mjs convert` and the .rwkv format (docs/format.md) through the library: a
// converted file gives the same logits bit for bit and the same text as its source loaded
// with the same `quant`, carries its vocabulary, and bad arguments fail cleanly.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, existsSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { root, referenceDir, fixtureDir, skipNoReference, skipNoFixtures, maxAbsDiff, readF32 } from './helpers.mjs';

const run = promisify(execFile);
const cli = path.join(root, 'js/cli.mjs');
const tmp = mkdtempSync(path.join(tmpdir(), 'rwkv-convert-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const source = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const vocab = path.join(fixtureDir, 'fix-vocab-300.txt');
const tokens = [1, 2, 3, 0, 5, 299, 42, 7, 7, 100, 250, 17];
const prompt = 'hello world, this is a test';
const genOptions = { seed: 3, maxTokens: 40, temperature: 1, topP: 0.9 };

async function convert(input, output, ...args) {
  const { stdout } = await run(process.execPath, [cli, 'convert', input, output, ...args]);
  return stdout;
}

// Logits of every step and of a prefill, and generated text: the model's fingerprint.
async function fingerprint(file, options = {}) {
  const m = await rwkv.load(file, { vocab, ...options });
  try {
    const s = await m.createSession();
    const rows = [];
    for (const t of tokens) rows.push(...(await s.step(t)));
    const p = await m.createSession();
    rows.push(...(await p.prefill(tokens)));
    const g = await m.createSession();
    const { text } = await g.generate(prompt, genOptions).result;
    return { logits: Float32Array.from(rows), text, dtype: m.config.dtype, hasVocab: m.hasVocab };
  } finally {
    await m.dispose();
  }
}

const sameBits = (a, b) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength),
  Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

test('converted files give the same logits and text as their source loaded with the same quant', { skip: skipNoFixtures }, async () => {
  const plain = await fingerprint(source);
  const sizes = {};
  for (const [quant, dtype] of [['', 'BF16'], ['bf16', 'BF16'], ['f32', 'F32'], ['int8', 'Q8_0'], ['q4', 'Q4_0']]) {
    const out = path.join(tmp, `fix.${quant || 'keep'}.rwkv`);
    const summary = await convert(source, out, ...(quant ? ['--quant', quant] : []));
    assert.match(summary, new RegExp(`fix-L3-C64-H2\\.pth \\(0\\.4 MB\\) -> .*fix\\.${quant || 'keep'}\\.rwkv \\([0-9.]+ MB, ${dtype} weights\\) in [0-9.]+ s, peak [0-9.]+ MB\\n$`));
    assert.ok(!existsSync(`${out}.tmp`));
    sizes[quant || 'keep'] = statSync(out).size;
    const want = await fingerprint(source, quant ? { quant } : {});
    const got = await fingerprint(out);
    assert.equal(got.dtype, dtype);
    assert.ok(sameBits(got.logits, want.logits), `${quant || 'keep'}: logits differ by ${maxAbsDiff(got.logits, want.logits)}`);
    assert.equal(got.text, want.text);
    // Widening bf16 to f32 or keeping it changes no number: the text of the file as it was.
    if (['', 'bf16', 'f32'].includes(quant)) assert.equal(got.text, plain.text, `${quant || 'keep'}: text differs from the source's`);
  }
  assert.ok(sizes.f32 > sizes.keep && sizes.keep === sizes.bf16 && sizes.int8 < sizes.keep && sizes.q4 < sizes.int8,
    JSON.stringify(sizes));
  // A .rwkv file converts like any other: int8 of the kept file is the int8 file.
  const again = path.join(tmp, 'fix.again.rwkv');
  await convert(path.join(tmp, 'fix.keep.rwkv'), again, '--quant', 'int8');
  assert.ok(sameBits((await fingerprint(again)).logits, (await fingerprint(path.join(tmp, 'fix.int8.rwkv'))).logits));
});

test('an embedded vocabulary makes the model tokenize on its own, and survives another conversion', { skip: skipNoFixtures }, async () => {
  const out = path.join(tmp, 'fix.vocab.rwkv');
  assert.match(await convert(source, out, '--quant', 'int8', '--vocab', vocab), /Q8_0 weights, vocabulary embedded\)/);
  const m = await rwkv.load(out);
  const ref = await rwkv.load(source, { vocab, quant: 'int8' });
  try {
    assert.equal(m.hasVocab, true);
    assert.deepEqual(await m.tokenize(prompt), await ref.tokenize(prompt));
    const s = await m.createSession(), r = await ref.createSession();
    assert.equal((await s.generate(prompt, genOptions).result).text, (await r.generate(prompt, genOptions).result).text);
  } finally {
    await m.dispose();
    await ref.dispose();
  }
  const plain = await rwkv.load(path.join(tmp, 'fix.keep.rwkv'));
  assert.equal(plain.hasVocab, false);
  await plain.dispose();
  // Converted again without --vocab, the vocabulary stays.
  const again = path.join(tmp, 'fix.vocab2.rwkv');
  assert.match(await convert(out, again, '--quant', 'q4'), /Q4_0 weights, vocabulary embedded\)/);
  const m2 = await rwkv.load(again);
  assert.equal(m2.hasVocab, true);
  await m2.dispose();
});

test('a converted World model tokenizes without a separate vocabulary file', { skip: skipNoReference }, async () => {
  const world = path.join(referenceDir, 'models/rand-L2-D128-V65536.pth');
  const worldVocab = path.join(referenceDir, 'vocab/rwkv_vocab_v20230424.txt');
  const out = path.join(tmp, 'world.rwkv');
  assert.match(await convert(world, out, '--vocab', worldVocab), /vocabulary embedded/);
  const m = await rwkv.load(out);
  try {
    assert.equal(m.hasVocab, true);
    for (const { text, ids } of JSON.parse(readFileSync(path.join(referenceDir, 'golden/tokenizer.json'), 'utf8')))
      assert.deepEqual(await m.tokenize(text), ids, text);
    // And keeps the official golden logits.
    const g = JSON.parse(readFileSync(path.join(referenceDir, 'golden/rand-L2-D128-V65536.eiffel.json'), 'utf8'));
    const want = readF32(path.join(referenceDir, 'golden/rand-L2-D128-V65536.eiffel.logits.f32'));
    const s = await m.createSession();
    const rows = [];
    for (const t of g.tokens) rows.push(...(await s.step(t)));
    assert.ok(maxAbsDiff(Float32Array.from(rows), want) <= 5e-4);
  } finally {
    await m.dispose();
  }
  const source = await rwkv.load(world);
  assert.equal(source.hasVocab, false);
  await source.dispose();
});

test('convert: bad arguments and bad inputs give a message, a non-zero exit and no output file', { skip: skipNoFixtures }, async () => {
  const out = path.join(tmp, 'bad.rwkv');
  const fails = async (args, pattern, code) => {
    const err = await run(process.execPath, [cli, 'convert', ...args]).then(() => null, (e) => e);
    assert.ok(err, `expected convert ${args.join(' ')} to fail`);
    assert.equal(err.code, code, err.stderr);
    assert.match(err.stderr, pattern);
    assert.ok(!existsSync(out) && !existsSync(`${out}.tmp`));
  };
  await fails([source, out, '--quant', 'q5'], /--quant: unknown quant 'q5'/, 2);
  await fails([source], /convert needs IN and OUT/, 2);
  await fails([path.join(tmp, 'missing.pth'), out], /no such file|ENOENT/, 1);
  await fails([path.join(fixtureDir, 'bad-shape.pth'), out], /blocks\.2\.ffn\.value\.weight/, 1);
  const notVocab = path.join(tmp, 'not-a-vocab.txt');
  writeFileSync(notVocab, 'this is not a vocabulary\n');
  await fails([source, out, '--vocab', notVocab], /line 1/, 1);
  if (!skipNoReference)
    await fails([source, out, '--vocab', path.join(referenceDir, 'vocab/rwkv_vocab_v20230424.txt')], /tokens but the model only 300/, 1);
  // A damaged .rwkv file is named as such.
  const good = readFileSync(path.join(tmp, 'fix.keep.rwkv'));
  const damaged = path.join(tmp, 'damaged.rwkv');
  writeFileSync(damaged, good.subarray(0, good.length - 10));
  await fails([damaged, out], /rwkv file: .*truncated/, 1);
});
