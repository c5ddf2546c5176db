#!/usr/bin/env node
// check-reference.mjs — validates tests/reference/rwkv7.mjs against the official
// golden runs in shared/reference/golden (docs/computation.md#golden-runs).
//
//   node tests/reference/check-reference.mjs [sharedReferenceDir]
//
// For every golden/*.json run (except tokenizer.json) it loads the model — from the
// .safetensors of the same name when there is one, else from the .pth with the small
// reader in scripts/make-fixtures.mjs — runs the reference over the golden tokens and
// prints the max abs difference of the logits and of the final state. Where both a
// .pth and a .safetensors exist, it also checks that they hold identical tensors.
// Exits 1 if any logits difference exceeds 1e-4; exits 0 if the shared folder is absent.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPth, readSafetensors } from '../../scripts/make-fixtures.mjs';
import { loadModel, runSequence } from './rwkv7.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const refDir = process.argv[2] ?? path.resolve(here, '../../../shared/reference');
const goldenDir = path.join(refDir, 'golden');
const modelDir = path.join(refDir, 'models');
if (!fs.existsSync(goldenDir) || !fs.existsSync(modelDir)) {
  console.log(`check-reference: ${refDir} not found, nothing to check`);
  process.exit(0);
}

const LOGITS_TOL = 1e-4;
const readF32 = (file) => {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const maxAbsDiff = (a, b) => {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

function loadTensors(pthName) {
  const base = pthName.replace(/\.pth$/, '');
  const st = path.join(modelDir, `${base}.safetensors`);
  const pth = path.join(modelDir, pthName);
  if (fs.existsSync(st)) {
    const tensors = readSafetensors(fs.readFileSync(st));
    if (fs.existsSync(pth)) { // the two files must hold the same tensors
      const other = readPth(fs.readFileSync(pth));
      for (const [name, t] of tensors) {
        const o = other.get(name);
        if (!o || maxAbsDiff(o.data, t.data) !== 0) throw new Error(`${pthName}: ${name} differs from safetensors`);
      }
      if (other.size !== tensors.size) throw new Error(`${pthName}: key count differs from safetensors`);
    }
    return { tensors, source: path.basename(st) };
  }
  return { tensors: readPth(fs.readFileSync(pth)), source: pthName };
}

let failed = false;
for (const f of fs.readdirSync(goldenDir).filter((n) => n.endsWith('.json') && n !== 'tokenizer.json').sort()) {
  const run = f.replace(/\.json$/, '');
  const g = JSON.parse(fs.readFileSync(path.join(goldenDir, f), 'utf8'));
  const t0 = Date.now();
  const { tensors, source } = loadTensors(g.model);
  const model = loadModel(tensors);
  const { logits, state, argmax } = runSequence(model, g.tokens);
  const dLogits = maxAbsDiff(logits, readF32(path.join(goldenDir, `${run}.logits.f32`)));
  const dState = maxAbsDiff(state, readF32(path.join(goldenDir, `${run}.state.f32`)));
  const gptFile = path.join(goldenDir, `${run}.gpt_logits.f32`);
  const dGpt = fs.existsSync(gptFile) ? maxAbsDiff(logits, readF32(gptFile)) : null;
  const argmaxOk = argmax.every((v, i) => v === g.argmax[i]);
  const ok = dLogits <= LOGITS_TOL && state.length === g.state_floats;
  if (!ok) failed = true;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${run} (${source}, T=${g.tokens.length}): ` +
    `logits max|d|=${dLogits.toExponential(3)} state max|d|=${dState.toExponential(3)}` +
    (dGpt === null ? '' : ` gpt_logits max|d|=${dGpt.toExponential(3)}`) +
    ` argmax ${argmaxOk ? 'match' : 'DIFFER'} [${Date.now() - t0} ms]`);
}
process.exit(failed ? 1 : 0);
