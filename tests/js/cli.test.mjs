// `node js/cli.mjs logits` (the wasm build) against golden runs: the official ones in
// ../shared/reference and the project's own fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root, referenceDir, fixtureDir, skipNoReference, skipNoFixtures, readF32, maxAbsDiff, argmaxRows } from './helpers.mjs';

const run = promisify(execFile);
const cli = path.join(root, 'js/cli.mjs');
const tmp = mkdtempSync(path.join(tmpdir(), 'rwkv-cli-'));

async function checkRun(goldenDir, modelDir, name, mode) {
  const g = JSON.parse(readFileSync(path.join(goldenDir, `${name}.json`), 'utf8'));
  const out = path.join(tmp, `${name}.${mode}.f32`), stateOut = path.join(tmp, `${name}.${mode}.state.f32`);
  await run(process.execPath, [cli, 'logits', '--model', path.join(modelDir, g.model), '--tokens', g.tokens.join(','),
    '--out', out, '--mode', mode, '--state-out', stateOut]);
  const V = g.logits_shape[1];
  const got = readF32(out), want = readF32(path.join(goldenDir, `${name}.logits.f32`));
  assert.ok(maxAbsDiff(got, want) <= 5e-4, `${name} ${mode}: logits differ by ${maxAbsDiff(got, want)}`);
  assert.deepEqual(argmaxRows(got, V), g.argmax);
  const state = readF32(stateOut), wantState = readF32(path.join(goldenDir, `${name}.state.f32`));
  assert.ok(maxAbsDiff(state, wantState) <= 5e-4, `${name} ${mode}: state differs by ${maxAbsDiff(state, wantState)}`);
}

for (const mode of ['step', 'prefill']) {
  test(`official golden runs, ${mode} mode`, { skip: skipNoReference }, async () => {
    const dir = path.join(referenceDir, 'golden');
    for (const name of ['rand-L2-D128-V1000.seq48', 'rand-L2-D128-V65536.eiffel', 'tiny-rwkv-7v0-834K.bf16.fox', 'tiny-rwkv-7v0-834K.fp32.fox'])
      await checkRun(dir, path.join(referenceDir, 'models'), name, mode);
  });
  test(`fixture golden runs, ${mode} mode`, { skip: skipNoFixtures }, async () => {
    for (const name of ['fix-L3-C64-H2.seq40', 'fix-L2-C64-H1.fp16.seq24']) await checkRun(fixtureDir, fixtureDir, name, mode);
  });
}

test('bad arguments and bad files give a message and a non-zero exit', { skip: skipNoFixtures }, async () => {
  const model = path.join(fixtureDir, 'fix-L3-C64-H2.pth');
  const out = path.join(tmp, 'x.f32');
  const fails = async (args, pattern, code) => {
    const err = await run(process.execPath, [cli, ...args]).then(() => null, (e) => e);
    assert.ok(err, `expected ${args.join(' ')} to fail`);
    assert.equal(err.code, code);
    assert.match(err.stderr, pattern);
  };
  await fails(['logits', '--model', model, '--tokens', '1,2,300', '--out', out], /token id 300 .* out of range/, 1);
  await fails(['logits', '--model', model, '--tokens', '1,x', '--out', out], /not an integer/, 2);
  await fails(['logits', '--model', path.join(fixtureDir, 'bad-shape.pth'), '--tokens', '1', '--out', out], /blocks\.2\.ffn\.value\.weight/, 1);
  await fails(['logits', '--model', path.join(tmp, 'nope.pth'), '--tokens', '1', '--out', out], /no such file|ENOENT/, 1);
  await fails(['nonsense'], /unknown command/, 2);
  assert.ok(!existsSync(out));
});

test('chat goes through the chat layer: piped turns with --system equal the same messages through the library', { skip: skipNoFixtures }, async () => {
  const { spawn } = await import('node:child_process');
  const rwkv = await import('../../js/rwkv.mjs');
  const model = path.join(fixtureDir, 'fix-L3-C64-H2.pth'), vocab = path.join(fixtureDir, 'fix-vocab-300.txt');
  const ban = Array.from({ length: 128 }, (_, i) => 129 + i).concat([298, 299]);
  const saved = path.join(tmp, 'chat.json');
  const child = spawn(process.execPath, [cli, 'chat', '--model', model, '--vocab', vocab, '--system', 'Be brief.', '--seed', '1', '--max-tokens', '20', '--ban', ban.join(',')], { env: { ...process.env, RWKV_WEB_CACHE: tmp } });
  child.stdin.end(`hello there\nsecond turn\n/save ${saved}\n/exit\n`);
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
  assert.match(out, /User: hello there\nAssistant: [^]*User: second turn\nAssistant: [^]*conversation saved/);

  const m = await rwkv.load(model, { vocab, stateCache: 0 });
  const req = { seed: 1, max_tokens: 20, bannedTokens: ban };
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hello there' }];
  const first = (await m.chat.completions.create({ ...req, messages })).choices[0].message.content;
  messages.push({ role: 'assistant', content: first }, { role: 'user', content: 'second turn' });
  const second = (await m.chat.completions.create({ ...req, messages })).choices[0].message.content;
  assert.ok(out.includes(`Assistant: ${first}\n`) && out.includes(`Assistant: ${second}\n`), out);
  assert.deepEqual(JSON.parse(readFileSync(saved, 'utf8')), [...messages, { role: 'assistant', content: second }]);
  await m.dispose();
});
