// The per-token trace and inspect() (docs/inspect.md) through the library (wasm core)
// against the plain-JS reference (tests/reference/rwkv7.mjs, float64, its own trace code):
// on the project's fixtures and, when present, the shared reference models. Also: the
// same text and state with and without the trace; the CLI's inspect table and PNG.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as rwkv from '../../js/rwkv.mjs';
import { readPth } from '../../scripts/make-fixtures.mjs';
import { loadModel, step, zeroState, traceRecordSize, TRACE_FIELDS } from '../reference/rwkv7.mjs';
import { root, fixtureDir, referenceDir, skipNoFixtures, haveReference } from './helpers.mjs';

const run = promisify(execFile);
const tmp = mkdtempSync(path.join(tmpdir(), 'rwkv-trace-'));
const fixtureModel = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
const fixtureVocab = path.join(fixtureDir, 'fix-vocab-300.txt');
const tinyModel = path.join(referenceDir, 'models/tiny-rwkv-7v0-834K.fp32.pth');
const skipNoTiny = haveReference && existsSync(tinyModel) ? false : `${tinyModel} is missing (shared reference data not on this machine)`;

// Float32 against float64 over a whole model: relative for the sizes (norms, half-lives),
// absolute for the means of values in (0, 1).
// [absolute, relative]: float32 results differ from the reference by about 1e-7 relative
// on the fixtures; these leave room for longer runs and deeper models.
const TOL = { stateNorm: [1e-5, 1e-4], decayMean: [1e-5, 0], decayStd: [1e-5, 1e-4], halfLife: [1e-5, 1e-4], rate: [1e-5, 0],
  update: [1e-5, 1e-4], valueMix: [1e-5, 0], residual: [1e-5, 1e-4] };
const close = (got, want, [abs, rel]) => (Number.isNaN(want) ? Number.isNaN(got) : Math.abs(got - want) <= abs + rel * Math.abs(want));

/** Runs a traced generation; returns every token fed, their records, the text and the reference model. */
async function tracedRun(file, options, prompt, genOptions) {
  const model = await rwkv.load(file, options);
  const session = await model.createSession();
  const fed = [], records = [], texts = [];
  let text = '';
  for await (const piece of session.generate(prompt, { ...genOptions, trace: true })) {
    assert.equal(piece.trace.length, piece.tokens.length * rwkv.traceRecordSize(model.config));
    assert.equal(piece.tokenTexts.length, piece.tokens.length);
    fed.push(...piece.tokens);
    texts.push(...piece.tokenTexts);
    records.push(piece.trace);
    text += piece.text;
  }
  const all = new Float32Array(records.reduce((n, r) => n + r.length, 0));
  records.reduce((at, r) => (all.set(r, at), at + r.length), 0);
  return { model, session, fed, texts, records: all, text };
}

/** Feeds `tokens` to the reference with its trace; returns the records (float64) and state. */
function referenceTrace(file, tokens) {
  const ref = loadModel(readPth(readFileSync(file)));
  const state = zeroState(ref);
  const size = traceRecordSize(ref);
  const records = new Float64Array(tokens.length * size);
  tokens.forEach((t, n) => step(ref, state, t, records.subarray(n * size, (n + 1) * size)));
  return { ref, state, records };
}

function compareRecords(got, want, config) {
  const { nLayer: L, nHead: H } = config;
  const size = rwkv.traceRecordSize(config);
  assert.equal(got.length, want.length);
  const worst = {};
  for (let t = 0; t < got.length / size; t++) {
    for (let i = 0; i < L; i++) {
      for (let h = 0; h < H; h++)
        TRACE_FIELDS.forEach((name, f) => {
          const at = t * size + (i * H + h) * TRACE_FIELDS.length + f;
          assert.ok(close(got[at], want[at], TOL[name]), `token ${t} layer ${i} head ${h} ${name}: ${got[at]} vs reference ${want[at]}`);
          if (!Number.isNaN(want[at])) worst[name] = Math.max(worst[name] ?? 0, Math.abs(got[at] - want[at]) / Math.max(1, Math.abs(want[at])));
        });
      const at = t * size + L * H * TRACE_FIELDS.length + i;
      assert.ok(close(got[at], want[at], TOL.residual), `token ${t} layer ${i} residual norm: ${got[at]} vs reference ${want[at]}`);
    }
  }
  return worst;
}

/** inspect() of every layer and head against the reference's state. */
async function compareInspect(session, ref, state) {
  for (let i = 0; i < ref.L; i++)
    for (let h = 0; h < ref.H; h++) {
      const S = await session.inspect({ layer: i, head: h });
      assert.equal(S.length, ref.N * ref.N);
      const want = state[i].S.subarray(h * ref.N * ref.N, (h + 1) * ref.N * ref.N);
      let d = 0;
      for (let j = 0; j < S.length; j++) d = Math.max(d, Math.abs(S[j] - want[j]));
      assert.ok(d <= 5e-4, `layer ${i} head ${h}: inspect() differs from the reference state by ${d}`);
    }
}

test('traced numbers and inspect() match the JS reference on the fixture model (prompt and generated tokens)', { skip: skipNoFixtures }, async (t) => {
  const prompt = JSON.parse(readFileSync(path.join(fixtureDir, 'fix-L3-C64-H2.seq40.json'), 'utf8')).tokens.slice(0, 30);
  const { model, session, fed, texts, records } = await tracedRun(fixtureModel, { vocab: fixtureVocab, threads: 1 }, prompt,
    { maxTokens: 12, temperature: 0, bannedTokens: [0] });
  try {
    assert.deepEqual(fed.slice(0, prompt.length), prompt);
    assert.equal(fed.length, prompt.length + 12);
    assert.deepEqual(texts, await Promise.all(fed.map((t) => model.detokenize([t]))));
    const { ref, state, records: want } = referenceTrace(fixtureModel, fed);
    const worst = compareRecords(records, want, model.config);
    t.diagnostic(`largest differences from the reference (relative above 1): ${JSON.stringify(worst)}`);
    await compareInspect(session, ref, state);
    // traceReader reads the same layout.
    const r = rwkv.traceReader(records, model.config);
    assert.equal(r.tokens, fed.length);
    const size = rwkv.traceRecordSize(model.config);
    assert.equal(r.field(5, 2, 1, 'halfLife'), records[5 * size + (2 * 2 + 1) * 7 + 3]);
    assert.equal(r.residual(5, 2), records[5 * size + 3 * 2 * 7 + 2]);
  } finally {
    await model.dispose();
  }
});

test('traced numbers and inspect() match the JS reference on a trained model (shared reference)', { skip: skipNoTiny }, async (t) => {
  const { model, session, fed, records } = await tracedRun(tinyModel, { threads: 2 }, 'The quick brown fox jumps over',
    { maxTokens: 10, temperature: 0 });
  try {
    const { ref, state, records: want } = referenceTrace(tinyModel, fed);
    t.diagnostic(`largest differences from the reference (relative above 1): ${JSON.stringify(compareRecords(records, want, model.config))}`);
    await compareInspect(session, ref, state);
  } finally {
    await model.dispose();
  }
});

test('with the trace off, the same text, logits and state, bit for bit', { skip: skipNoFixtures }, async () => {
  const model = await rwkv.load(fixtureModel, { vocab: fixtureVocab });
  try {
    const opts = { maxTokens: 20, temperature: 1, topP: 0.9, seed: 3 };
    const [a, b] = [await model.createSession(), await model.createSession()];
    const textA = await a.generate('User: hello', opts).text();
    let textB = '';
    for await (const piece of b.generate('User: hello', { ...opts, trace: true })) textB += piece.text;
    assert.equal(textB, textA);
    assert.deepEqual(await b.saveState(), await a.saveState());
    assert.deepEqual(await b.step(5), await a.step(5));
    // Without the option the pieces are plain strings, as before.
    for await (const piece of a.generate(' and', { maxTokens: 3 })) assert.equal(typeof piece, 'string');
  } finally {
    await model.dispose();
  }
});

test('inspect() refuses a layer or head that is not there, and works while generating', { skip: skipNoFixtures }, async () => {
  const model = await rwkv.load(fixtureModel, { vocab: fixtureVocab });
  try {
    const s = await model.createSession();
    for (const where of [{ layer: 3, head: 0 }, { layer: 0, head: 2 }, { layer: -1, head: 0 }, { layer: 0.5, head: 0 }, { layer: 0 }])
      await assert.rejects(s.inspect(where), rwkv.InvalidArgumentError, JSON.stringify(where));
    assert.ok((await s.inspect({ layer: 0, head: 0 })).every((x) => x === 0), 'a new session holds zeros');
    const gen = s.generate('User: hello', { maxTokens: 30, trace: true });
    let seen = 0;
    for await (const piece of gen) {
      if (!piece.tokens.length) continue;
      const S = await s.inspect({ layer: 2, head: 1 });
      assert.ok(S.some((x) => x !== 0));
      if (++seen === 3) break;
    }
  } finally {
    await model.dispose();
  }
});

// ---- the CLI

/** The IHDR of a PNG: width, height; checks the signature and that the image data inflates. */
function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  assert.equal(bytes.toString('latin1', 12, 16), 'IHDR');
  const width = bytes.readUInt32BE(16), height = bytes.readUInt32BE(20);
  const chunks = [];
  for (let at = 8; at < bytes.length;) {
    const n = bytes.readUInt32BE(at), type = bytes.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') chunks.push(bytes.subarray(at + 8, at + 8 + n));
    at += 12 + n;
  }
  const raw = inflateSync(Buffer.concat(chunks));
  assert.equal(raw.length, height * (1 + width * 4), 'filter byte + RGBA per row');
  return { width, height };
}

test('cli inspect prints the half-lives of the reference and writes the heatmap as a PNG', { skip: skipNoFixtures }, async () => {
  const text = 'User: hello there';
  const png = path.join(tmp, 'heat.png');
  const cli = (args) => run(process.execPath, [path.join(root, 'js/cli.mjs'), 'inspect', '--model', fixtureModel, '--vocab', fixtureVocab, '--text', text, ...args]);
  const { stdout } = await cli(['--png', png]);
  const json = JSON.parse((await cli(['--json'])).stdout);
  const model = await rwkv.load(fixtureModel, { vocab: fixtureVocab });
  const tokens = await model.tokenize(text);
  await model.dispose();
  assert.deepEqual(json.tokens, tokens);
  const { ref, records } = referenceTrace(fixtureModel, tokens);
  const size = traceRecordSize(ref), last = tokens.length - 1;
  for (let i = 0; i < ref.L; i++)
    for (let h = 0; h < ref.H; h++) {
      const want = records[last * size + (i * ref.H + h) * TRACE_FIELDS.length + 3];
      assert.ok(close(json.halfLife[i][h], want, TOL.halfLife), `layer ${i} head ${h}: ${json.halfLife[i][h]} vs ${want}`);
    }
  // The table: a row per layer, the last token's half-life per head as printed.
  const rows = stdout.split('\n').filter((l) => /^\s*\d+(\s+([\d.]+|inf))+\s*$/.test(l));
  assert.equal(rows.length, ref.L);
  rows.forEach((row, i) => {
    const cells = row.trim().split(/\s+/).slice(1);
    for (let h = 0; h < ref.H; h++) assert.ok(Math.abs(Number(cells[h]) - json.halfLife[i][h]) <= 0.01 * json.halfLife[i][h] + 0.01, row);
  });
  const { width, height } = pngSize(readFileSync(png));
  assert.equal(width % tokens.length, 0, `one column per token (${width} px for ${tokens.length} tokens)`);
  assert.equal(height % (ref.L * ref.H), 0, `one row per layer and head (${height} px)`);
});
