// The relaxed-SIMD kernel module (build/wasm/rwkv-relaxed.wasm and rwkv-relaxed-mt.wasm,
// src/kernels/relaxed/q4_kernel.cpp) on its own: it shares the core's memory, so it must
// write nothing there but its outputs (no data segments, no stack), and its Q4_0 matmul
// must give the bits of the arithmetic q4_kernel.cpp states, emulated here in float32.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { root } from './helpers.mjs';

// Node 20: relaxed SIMD is behind a flag, and its baseline compiler (Liftoff) gets
// relaxed_dot wrong (the core's loader does the same: src/kernels/relaxed/relaxed.cpp).
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
v8.setFlagsFromString('--no-liftoff');

const file = (shared) => path.join(root, 'build/wasm', shared ? 'rwkv-relaxed-mt.wasm' : 'rwkv-relaxed.wasm');
const skip = (shared) => !existsSync(file(shared)) ? `${file(shared)} is not built (no clang-19: scripts/setup.sh)`
  : !WebAssembly.validate(readFileSync(file(shared))) ? 'this Node does not validate relaxed SIMD' : false;

// A small random problem in the kernel's layout (relaxed.h: quantize_x8): rows x T,
// nb blocks per row, tokens in groups of 4 (the last one padded with zeros).
function problem(rows, T, nb, seed) {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const groups = Math.ceil(T / 4);
  const q = Uint8Array.from({ length: rows * nb * 16 }, () => Math.floor(rand() * 256));
  const d = Float32Array.from({ length: rows * nb }, () => (rand() - 0.5) * 0.01);
  const x = new Int8Array(groups * nb * 128), dx = new Float32Array(groups * nb * 4), bias = new Int32Array(groups * nb * 4);
  for (let t = 0; t < T; t++)
    for (let b = 0; b < nb; b++) {
      const G = Math.floor(t / 4), j = t % 4, at = (G * nb + b) * 4 + j;
      let sum = 0;
      for (let i = 0; i < 32; i++) {
        const v = Math.floor(rand() * 255) - 127;
        x[(G * nb + b) * 128 + (i >> 2) * 16 + j * 4 + (i & 3)] = v;
        sum += v;
      }
      bias[at] = -8 * sum;
      dx[at] = rand() * 0.05;
    }
  return { q, d, x, dx, bias, scratch: new Uint8Array(2 * nb * 128) };
}

// Value i of token t's block b (the nibble of weight value i: byte i % 16, low then high).
function expected({ q, d, x, dx, bias }, rows, T, nb) {
  const f = Math.fround, Y = new Float32Array(T * rows);
  for (let r = 0; r < rows; r++)
    for (let t = 0; t < T; t++) {
      const G = Math.floor(t / 4), j = t % 4;
      let acc = 0;
      for (let b = 0; b < nb; b++) {
        const at = (G * nb + b) * 4 + j, w = (r * nb + b) * 16;
        let isum = bias[at];
        for (let i = 0; i < 32; i++) {
          const n = i < 16 ? q[w + i] & 15 : q[w + i - 16] >> 4;
          isum += x[(G * nb + b) * 128 + (i >> 2) * 16 + j * 4 + (i & 3)] * n;
        }
        acc = f(acc + f(f(isum) * f(d[r * nb + b] * dx[at])));
      }
      Y[t * rows + r] = acc;
    }
  return Y;
}

// The section ids of a module, in order (the binary format: magic, version, then id +
// LEB128 size + contents per section).
function sectionIds(bytes) {
  const ids = [];
  for (let p = 8; p < bytes.length;) {
    ids.push(bytes[p++]);
    let size = 0, shift = 0, b;
    do { b = bytes[p++]; size += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80);
    p += size;
  }
  return ids;
}

for (const shared of [false, true]) {
  test(`rwkv-relaxed${shared ? '-mt' : ''}.wasm: no data, no start function, imports the memory alone`, { skip: existsSync(file(shared)) ? false : `${file(shared)} is not built` }, () => {
    const bytes = readFileSync(file(shared));
    const ids = sectionIds(bytes);
    for (const [id, name] of [[8, 'start'], [11, 'data'], [12, 'data count']]) assert.ok(!ids.includes(id), `a ${name} section`);
    const m = new WebAssembly.Module(bytes);
    assert.deepEqual(WebAssembly.Module.imports(m), [{ module: 'env', name: 'memory', kind: 'memory' }]);
    assert.deepEqual(WebAssembly.Module.exports(m).map((e) => e.name).sort(), ['probe', 'q4_matmul']);
  });

  test(`rwkv-relaxed${shared ? '-mt' : ''}.wasm: owns nothing in the memory it imports, Q4_0 matmul bit-exact`, { skip: skip(shared) }, () => {
    const memory = new WebAssembly.Memory(shared ? { initial: 64, maximum: 65536, shared: true } : { initial: 64 });
    const heap = new Uint8Array(memory.buffer);
    heap.fill(0xA5);
    const k = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file(shared))), { env: { memory } }).exports;
    assert.ok(heap.every((v) => v === 0xA5), 'instantiating wrote to the memory (a data segment)');
    assert.equal(k.probe(-3, 5, 7), -53);
    const rows = 5, T = 11, nb = 3;  // a row pair and a single row; two groups and a partial one
    const p = problem(rows, T, nb, 42);
    const at = {};
    let top = 1024;
    for (const [name, a] of Object.entries(p)) {
      at[name] = top;
      heap.set(new Uint8Array(a.buffer), top);
      top += a.byteLength + 16;
    }
    const yAt = top, yBytes = T * rows * 4;
    const before = heap.slice();
    k.q4_matmul(at.q, at.d, nb, 0, 3, at.x, at.dx, at.bias, T, yAt, rows, at.scratch);  // rows 0-2, 3-4: two calls
    k.q4_matmul(at.q, at.d, nb, 3, rows, at.x, at.dx, at.bias, T, yAt, rows, at.scratch);
    const Y = new Float32Array(heap.slice(yAt, yAt + yBytes).buffer);
    assert.deepEqual(Y, expected(p, rows, T, nb));
    for (let i = 0; i < heap.length; i++)
      if ((i < yAt || i >= yAt + yBytes) && (i < at.scratch || i >= yAt) && heap[i] !== before[i])
        assert.fail(`the kernel wrote at ${i}, outside its output and scratch`);
  });
}
