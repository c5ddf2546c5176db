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

// A small random problem in the kernel's layout: rows x T, nb blocks per row.
function problem(rows, T, nb, seed) {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const q = Uint8Array.from({ length: rows * nb * 16 }, () => Math.floor(rand() * 256));
  const d = Float32Array.from({ length: rows * nb }, () => (rand() - 0.5) * 0.01);
  const x = Int8Array.from({ length: T * nb * 32 }, () => Math.floor(rand() * 255) - 127);
  const dx = Float32Array.from({ length: T * nb }, () => rand() * 0.05);
  const bias = new Int32Array(T * nb * 4);
  for (let i = 0; i < T * nb; i++)
    for (let k = 0; k < 4; k++) {
      let sum = 0;
      for (let j = 0; j < 4; j++) sum += x[i * 32 + 4 * k + j] + x[i * 32 + 16 + 4 * k + j];
      bias[i * 4 + k] = -8 * sum;
    }
  return { q, d, x, dx, bias };
}

// Token t's block b: (t0 * nb + b * g + j) with t0 = t - t % 4, g the group's size.
function expected({ q, d, x, dx, bias }, rows, T, nb) {
  const f = Math.fround, Y = new Float32Array(T * rows);
  for (let r = 0; r < rows; r++)
    for (let t = 0; t < T; t++) {
      const t0 = t - (t % 4), g = Math.min(4, T - t0);
      const acc = [0, 0, 0, 0];
      for (let b = 0; b < nb; b++) {
        const at = t0 * nb + b * g + (t - t0), w = (r * nb + b) * 16;
        const scale = f(d[r * nb + b] * dx[at]);
        for (let k = 0; k < 4; k++) {
          let isum = bias[at * 4 + k];
          for (let i = 4 * k; i < 4 * k + 4; i++)
            isum += x[at * 32 + i] * (q[w + i] & 15) + x[at * 32 + 16 + i] * (q[w + i] >> 4);
          acc[k] = f(acc[k] + f(f(isum) * scale));
        }
      }
      Y[t * rows + r] = f(f(acc[0] + acc[2]) + f(acc[1] + acc[3]));
    }
  return Y;
}

for (const shared of [false, true]) {
  test(`rwkv-relaxed${shared ? '-mt' : ''}.wasm: owns nothing in the memory it imports, Q4_0 matmul bit-exact`, { skip: skip(shared) }, () => {
    const memory = new WebAssembly.Memory(shared ? { initial: 64, maximum: 65536, shared: true } : { initial: 64 });
    const heap = new Uint8Array(memory.buffer);
    heap.fill(0xA5);
    const k = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file(shared))), { env: { memory } }).exports;
    assert.ok(heap.every((v) => v === 0xA5), 'instantiating wrote to the memory (a data segment)');
    assert.equal(k.probe(-3, 5, 7), -53);
    const rows = 5, T = 7, nb = 3;
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
    k.q4_matmul(at.q, at.d, nb, 0, 3, at.x, at.dx, at.bias, T, yAt, rows);  // rows 0-2 and 3-4 in two calls
    k.q4_matmul(at.q, at.d, nb, 3, rows, at.x, at.dx, at.bias, T, yAt, rows);
    const Y = new Float32Array(heap.slice(yAt, yAt + yBytes).buffer);
    assert.deepEqual(Y, expected(p, rows, T, nb));
    for (let i = 0; i < heap.length; i++)
      if ((i < yAt || i >= yAt + yBytes) && heap[i] !== before[i]) assert.fail(`the kernel wrote at ${i}, outside its output`);
  });
}
