// The bad-input table: each hostile file or careless call gives a typed error with a
// useful message, the worker stays usable, and the heap in use returns to where it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { startServer } from './http-server.mjs';
import { fixtureDir, skipNoFixtures, haveFixtures } from './helpers.mjs';

const fx = (name) => path.join(fixtureDir, name);
const bytes = (name) => new Uint8Array(readFileSync(fx(name)));
let server;

before(async () => {
  if (!haveFixtures) return;
  server = await startServer(fixtureDir);
});
after(async () => {
  await server?.close();
});

// A safetensors file of fix-L3 with one change made through its header and data.
function editSafetensors(edit) {
  const buf = bytes('fix-L3-C64-H2.f32.safetensors');
  const n = Number(new DataView(buf.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
  const data = buf.slice(8 + n);
  edit(header, data);
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

function replaceBytes(buf, from, to) {
  const out = buf.slice();
  const needle = new TextEncoder().encode(from);
  const at = Buffer.from(out).indexOf(Buffer.from(needle));
  assert.ok(at >= 0, `'${from}' not found`);
  out.set(new TextEncoder().encode(to), at);
  return out;
}

const vocab = () => readFileSync(fx('fix-vocab-300.txt'), 'utf8');

// [name, source, options, error class, message pattern]
const badLoads = () => [
  ['empty file', new Uint8Array(0), {}, rwkv.ModelFormatError, /empty/],
  ['not a model', new TextEncoder().encode('<html>404 page</html>'), {}, rwkv.ModelFormatError, /unrecognised model file/],
  ['truncated .pth', bytes('bad-truncated.pth'), {}, rwkv.ModelFormatError, /truncated|end-of-central-directory|past the end/],
  ['truncated .safetensors', bytes('fix-L3-C64-H2.f32.safetensors').slice(0, 5000), {}, rwkv.ModelFormatError, /truncated/],
  ['zip directory destroyed', (() => { const b = bytes('fix-L3-C64-H2.pth'); b.fill(0, b.length - 200); return b; })(), {}, rwkv.ModelFormatError, /end-of-central-directory|zip/],
  ['unknown pickle callable', replaceBytes(bytes('fix-L3-C64-H2.pth'), '_rebuild_tensor_v2', '_rebuild_tensor_v9'), {}, rwkv.ModelFormatError, /unsupported callable torch\._utils\._rebuild_tensor_v9/],
  ['missing tensor', bytes('bad-missing-key.pth'), {}, rwkv.ModelFormatError, /lacks tensor 'blocks\.1\.att\.key\.weight' \(expected shape \(64, 64\)\)/],
  ['mismatched shape', bytes('bad-shape.pth'), {}, rwkv.ModelFormatError, /'blocks\.2\.ffn\.value\.weight': expected shape \(64, 224\), found \(64, 200\)/],
  ['NaN weight', editSafetensors((h, d) => { const [b] = h['blocks.1.att.key.weight'].data_offsets; new DataView(d.buffer).setFloat32(b + 40, NaN, true); }), {}, rwkv.ModelFormatError, /'blocks\.1\.att\.key\.weight' holds NaN or infinite values \(first at element 10\)/],
  ['infinite weight', editSafetensors((h, d) => { const [b] = h['head.weight'].data_offsets; new DataView(d.buffer).setFloat32(b, Infinity, true); }), {}, rwkv.ModelFormatError, /'head\.weight' holds NaN or infinite/],
  ['dimension overflow', editSafetensors((h) => { h['emb.weight'].shape = [2 ** 40, 2 ** 40]; }), {}, rwkv.ModelFormatError, /out of range|too large/],
  ['byte count not matching the shape', editSafetensors((h) => { h['ln_out.weight'].shape = [65]; }), {}, rwkv.ModelFormatError, /'ln_out\.weight': shape \(65,\) needs 260 bytes/],
  ['unsupported dtype', editSafetensors((h) => { h['ln_out.bias'].dtype = 'I64'; }), {}, rwkv.ModelFormatError, /dtype I64 is not supported/],
  ['heads not dividing n_embd', editSafetensors((h) => { h['blocks.0.att.r_k'].shape = [3, 16]; h['blocks.0.att.r_k'].data_offsets[1] -= 4 * 16; }), {}, rwkv.ModelFormatError, /heads x head size must equal n_embd 64/],
  ['missing file', fx('no-such-model.pth'), {}, rwkv.LoadError, /no such file/],
  ['HTTP 404', () => `${server.base}/fix-L3-C64-H2.pth?status=404`, { cache: false }, rwkv.LoadError, /HTTP 404/],
  ['vocabulary with a malformed line', fx('fix-L3-C64-H2.pth'), { vocab: new TextEncoder().encode(vocab().replace("258 'User' 4", "258 'User 4")) }, rwkv.VocabError, /line 258/],
  ['vocabulary length field wrong', fx('fix-L3-C64-H2.pth'), { vocab: new TextEncoder().encode(vocab().replace("258 'User' 4", "258 'User' 5")) }, rwkv.VocabError, /line 258/],
  ['vocabulary bigger than the model', fx('fix-L3-C64-H2.pth'), { vocab: new TextEncoder().encode(`${vocab()}300 'extra' 5\n`) }, rwkv.VocabError, /301 tokens but the model only 300/],
];

test('bad model and vocabulary files: typed errors, and loading still works after', { skip: skipNoFixtures }, async () => {
  for (const [name, source, options, Kind, pattern] of badLoads()) {
    const src = typeof source === 'function' ? source() : source;
    await assert.rejects(rwkv.load(src, options), (err) => {
      assert.ok(err instanceof Kind, `${name}: expected ${Kind.name}, got ${err.name}: ${err.message}`);
      assert.match(err.message, pattern, name);
      return true;
    }, name);
  }
  const ok = await rwkv.load(fx('fix-L3-C64-H2.pth'));
  assert.equal((await (await ok.createSession()).step(1)).length, 300);
  await ok.dispose();
});

test('bad calls: typed errors, the worker usable and the heap back where it was', { skip: skipNoFixtures }, async () => {
  const model = await rwkv.load(fx('fix-L3-C64-H2.pth'), { vocab: fx('fix-vocab-300.txt') });
  const other = await rwkv.load(fx('fix-L2-C64-H1.fp16.pth'));
  const foreignState = await (await other.createSession()).saveState();
  await other.dispose();
  const s = await model.createSession();
  await s.prefill(Array.from({ length: 600 }, (_, i) => 1 + (i % 250)));  // scratch buffers reach full size
  await s.generate('warm up', { maxTokens: 5 }).result;
  const base = (await model.memory()).heapUsedBytes;
  const gen = (o, prompt = 'hi') => s.generate(prompt, { maxTokens: 5, ...o }).result;
  const calls = [
    ['token id too large', () => s.step(300), rwkv.InvalidArgumentError, /token id 300 is out of range for a vocabulary of 300/],
    ['negative token id', () => s.prefill([1, -4]), rwkv.InvalidArgumentError, /token id -4 is out of range/],
    ['non-integer token id', () => s.step(1.5), rwkv.InvalidArgumentError, /token id 1\.5/],
    ['empty prompt', () => gen({}, ''), rwkv.InvalidArgumentError, /prompt is empty/],
    ['prompt ids out of range', () => gen({}, [5, 300]), rwkv.InvalidArgumentError, /out of range/],
    ['negative temperature', () => gen({ temperature: -0.5 }), rwkv.InvalidArgumentError, /temperature/],
    ['NaN temperature', () => gen({ temperature: NaN }), rwkv.InvalidArgumentError, /temperature/],
    ['top_p above 1', () => gen({ topP: 1.01 }), rwkv.InvalidArgumentError, /top_p/],
    ['NaN top_p', () => gen({ topP: NaN }), rwkv.InvalidArgumentError, /top_p/],
    ['negative top_k', () => gen({ topK: -1 }), rwkv.InvalidArgumentError, /top_k/],
    ['min_p above 1', () => gen({ minP: 2 }), rwkv.InvalidArgumentError, /min_p/],
    ['penalty decay above 1', () => gen({ penaltyDecay: 1.5 }), rwkv.InvalidArgumentError, /decay/],
    ['a sampling option of the wrong type', () => gen({ topK: 'many' }), rwkv.InvalidArgumentError, /topK must be a number/],
    ['huge max tokens', () => gen({ maxTokens: 1e12 }), rwkv.InvalidArgumentError, /maxTokens must be between 0 and 1e9/],
    ['negative max tokens', () => gen({ maxTokens: -3 }), rwkv.InvalidArgumentError, /maxTokens/],
    ['empty stop string', () => gen({ stop: [''] }), rwkv.InvalidArgumentError, /stop string 0 is empty/],
    ['banned token out of range', () => gen({ bannedTokens: [1000] }), rwkv.InvalidArgumentError, /banned|out of range/],
    ['every token banned', () => gen({ bannedTokens: Array.from({ length: 300 }, (_, i) => i) }), rwkv.InvalidArgumentError, /-inf|NaN|every/i],
    ['state of another model shape', () => s.restoreState(foreignState), rwkv.InvalidArgumentError, /2 layers, n_embd 64, 1 heads of 64; this model has 3, 64, 2 of 32/],
    ['bytes that are not a state', () => s.restoreState(new Uint8Array(64)), rwkv.InvalidArgumentError, /not a saved rwkv-web state/],
    ['detokenize ids out of range', () => model.detokenize([1, 301]), rwkv.InvalidArgumentError, /out of range/],
  ];
  for (const [name, call, Kind, pattern] of calls) {
    await assert.rejects(call(), (err) => {
      assert.ok(err instanceof Kind, `${name}: expected ${Kind.name}, got ${err.name}: ${err.message}`);
      assert.match(err.message, pattern, name);
      return true;
    }, name);
    assert.equal((await s.step(1)).length, 300, `${name}: worker still usable`);
    assert.equal((await model.memory()).heapUsedBytes, base, `${name}: heap in use back to ${base}`);
  }
  // Not errors: max tokens 0, and a prompt with a lone surrogate (sent as its WTF-8 bytes).
  assert.equal((await gen({ maxTokens: 0 })).tokens, 0);
  assert.ok((await gen({}, 'x\uD800y')).promptTokens >= 3);
  await model.dispose();
});

test('aborts: during download, prefill and decode', { skip: skipNoFixtures }, async () => {
  const ac = new AbortController();
  const loading = rwkv.load(`${server.base}/fix-L3-C64-H2.pth?stall=65536`, { cache: false, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(loading, (err) => err.name === 'AbortError' && err instanceof rwkv.AbortError);
  const model = await rwkv.load(fx('fix-L3-C64-H2.pth'), { vocab: fx('fix-vocab-300.txt') });
  const s = await model.createSession();
  await s.prefill(Array.from({ length: 600 }, (_, i) => 1 + (i % 250)));  // scratch buffers reach full size
  await s.generate('warm up', { maxTokens: 5 }).result;
  const base = (await model.memory()).heapUsedBytes;
  const p = new AbortController();
  setTimeout(() => p.abort(), 20);
  await assert.rejects(s.prefill(Array.from({ length: 20000 }, (_, i) => 1 + (i % 250)), { signal: p.signal }), rwkv.AbortError);
  const d = new AbortController();
  const g = s.generate('hi', { maxTokens: 100000, bannedTokens: [0], signal: d.signal });
  setTimeout(() => d.abort(), 50);
  await assert.rejects((async () => { for await (const _ of g); })(), rwkv.AbortError);
  assert.equal((await g.result).stopReason, 'aborted');
  assert.equal((await model.memory()).heapUsedBytes, base);
  assert.equal((await s.step(1)).length, 300);
  await model.dispose();
});
