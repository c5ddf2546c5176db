#!/usr/bin/env node
// Writes a random model of the published RWKV-7 0.1B shape (12 layers, C 768, V 65536,
// LoRA 64/64/32/128, bf16, ~382 MB) in the official .pth layout, for benchmarks.
// Usage: node scripts/make-bench-model.mjs [OUT] (default build/bench/rwkv7-0.1B-shape.pth).
// Generated, never committed.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { buildFixtureModel, writePth } from './make-fixtures.mjs';

export const BENCH_SHAPE = {
  name: 'rwkv7-0.1B-shape', seed: 0x0b0b0b01, dtype: 'bf16',
  L: 12, C: 768, N: 64, F: 3072, V: 65536, Dw: 64, Da: 64, Dv: 32, Dg: 128, block0V: true,
};

export function makeBenchModel(out) {
  if (existsSync(out)) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const { tensors } = buildFixtureModel(BENCH_SHAPE);
  writeFileSync(out, writePth(tensors, { dtype: 'bf16' }));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? 'build/bench/rwkv7-0.1B-shape.pth';
  console.log(makeBenchModel(out));
}
