#!/usr/bin/env node
// `npm run bench`: speed of the core on a random model of the published 0.1B shape (bf16),
// natively and as wasm under Node, single-thread and with 2 threads, next to llama.cpp's
// numbers for the same model on the same kind of machine (2 cores).
//   node scripts/bench.mjs [--skip-build] [--model FILE] [--decode-runs N] [--prefill-runs N] [--json]
// Creates the model (build/bench/rwkv7-0.1B-shape.pth) when absent, builds what is needed
// (scripts/build.sh, then the targets rwkv_bench and rwkv_bench_mt), runs build/native/rwkv_bench, build/wasm/rwkv-bench.js (single-thread
// module) and build/wasm/rwkv-bench-mt.js (pthread module), prints one table and writes
// the raw results to build/bench/results.json. Never part of `npm test`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeBenchModel } from './make-bench-model.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// llama.cpp (native, F16) on the same model shape and the same kind of machine.
const LLAMA = { decode: { 1: 26.7, 2: 43.6 }, prefill: { 1: 237, 2: 426 } };

function parseArgs(argv) {
  const o = { build: true, model: path.join(root, 'build/bench/rwkv7-0.1B-shape.pth'), decodeRuns: 7, prefillRuns: 3, json: false };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--skip-build') o.build = false;
    else if (a === '--json') o.json = true;
    else if (a === '--model') o.model = path.resolve(argv[++i]);
    else if (a === '--decode-runs') o.decodeRuns = Number(argv[++i]);
    else if (a === '--prefill-runs') o.prefillRuns = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/bench.mjs [--skip-build] [--model FILE] [--decode-runs N] [--prefill-runs N] [--json]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function log(msg) { process.stderr.write(`${msg}\n`); }

function runJson(cmd, args) {
  const shown = [cmd === process.execPath ? 'node' : cmd, ...args].map((a) => (path.isAbsolute(a) ? path.relative(root, a) : a));
  log(`$ ${shown.join(' ')}`);
  const out = execFileSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`no JSON from ${cmd}: ${out}`);
  return JSON.parse(line);
}

const byThreads = (r, n) => r?.results.find((x) => x.threads === n);
const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '-');

function table(native, wasm, wasmMt) {
  const rows = [];
  const w = (n) => (n === 1 ? byThreads(wasm, 1) : byThreads(wasmMt, n));
  for (const n of [1, 2]) {
    const nat = byThreads(native, n), was = w(n);
    rows.push([`decode tok/s, ${n} thread${n > 1 ? 's' : ''}`, nat?.decode_tps, was?.decode_tps, LLAMA.decode[n]]);
  }
  for (const n of [1, 2]) {
    const nat = byThreads(native, n), was = w(n);
    rows.push([`prefill ${native.prefill_tokens} tok/s, ${n} thread${n > 1 ? 's' : ''}`, nat?.prefill_tps, was?.prefill_tps, LLAMA.prefill[n]]);
  }
  const head = ['', 'native', 'wasm', 'wasm/native', 'llama.cpp', 'wasm/llama', 'native/llama'];
  const lines = [head, ...rows.map(([name, nat, was, ref]) => [name, fmt(nat), fmt(was), ratio(was, nat), fmt(ref), ratio(was, ref), ratio(nat, ref)])];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
  const out = lines.map((l) => l.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
  out.splice(1, 0, widths.map((x) => '-'.repeat(x)).join('  '));

  const mem = [];
  mem.push(`weights read per decoded token: ${(native.decode_weight_bytes / 1e6).toFixed(1)} MB (${native.weight_dtype}, all matrices but the embedding)`);
  for (const n of [1, 2]) {
    const nat = byThreads(native, n), was = w(n);
    const part = (r) => (r ? `${fmt(r.decode_read_gbs, 2)} GB/s of ${fmt(r.bandwidth_gbs, 2)} (${(100 * r.bandwidth_fraction).toFixed(0)}%; one plain stream: ${fmt(r.bandwidth_1stream_gbs, 2)} GB/s)` : '-');
    const label = `decode reads, ${n} thread${n > 1 ? 's' : ''}: `;
    mem.push(`${label}native ${part(nat)}`);
    mem.push(`${' '.repeat(label.length)}wasm   ${part(was)}`);
  }
  mem.push(`peak memory: native ${fmt(native.peak_memory_mb, 0)} MB RSS; wasm heap ${fmt(wasm.peak_memory_mb, 0)} MB (pthread module ${fmt(wasmMt?.peak_memory_mb, 0)} MB); model ${fmt(native.model_memory_mb, 0)} MB`);
  const mt1 = byThreads(wasmMt, 1);
  if (mt1) mem.push(`wasm pthread module on 1 thread: decode ${fmt(mt1.decode_tps)} tok/s, prefill ${fmt(mt1.prefill_tps)} tok/s`);
  return [...out, '', ...mem].join('\n');
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(o.model)) {
    log(`creating ${path.relative(root, o.model)} (random weights, published 0.1B shape)...`);
    makeBenchModel(o.model);
  }
  if (o.build) {
    log('building (scripts/build.sh, then the benchmark targets)...');
    const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':') };
    const build = (args) => execFileSync(args[0], args.slice(1), { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
    build(['bash', 'scripts/build.sh']);
    const jobs = String(os.cpus().length);
    build(['cmake', '--build', 'build/native', '-j', jobs, '--target', 'rwkv_bench']);
    build(['cmake', '--build', 'build/wasm', '-j', jobs, '--target', 'rwkv_bench', 'rwkv_bench_mt']);
  }
  const common = ['--decode-runs', String(o.decodeRuns), '--prefill-runs', String(o.prefillRuns), '--json'];
  const node = [process.execPath, '--no-experimental-fetch'];
  const native = runJson(path.join(root, 'build/native/rwkv_bench'), [o.model, '--threads', '1,2', ...common]);
  const wasm = runJson(node[0], [node[1], path.join(root, 'build/wasm/rwkv-bench.js'), o.model, '--threads', '1', ...common]);
  const wasmMt = runJson(node[0], [node[1], path.join(root, 'build/wasm/rwkv-bench-mt.js'), o.model, '--threads', '1,2', ...common]);
  // The same logits and state, to the bit, from every build and thread count.
  const dumps = [
    ['native, 1 thread', path.join(root, 'build/native/rwkv_bench'), [], '1'],
    ['native, 2 threads', path.join(root, 'build/native/rwkv_bench'), [], '2'],
    ['wasm', node[0], [node[1], path.join(root, 'build/wasm/rwkv-bench.js')], '1'],
    ['wasm pthread, 2 threads', node[0], [node[1], path.join(root, 'build/wasm/rwkv-bench-mt.js')], '2'],
  ].map(([name, cmd, pre, threads], i) => {
    const file = path.join(root, `build/bench/dump-${i}.f32`);
    execFileSync(cmd, [...pre, o.model, '--threads', threads, '--dump', file], { cwd: root, stdio: 'ignore' });
    const bytes = readFileSync(file);
    rmSync(file);
    return { name, bytes };
  });
  const identical = dumps.every((d) => d.bytes.equals(dumps[0].bytes));
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`;
  const results = { machine, date: new Date().toISOString(), llama_cpp: LLAMA, identical_logits: identical, native, wasm, wasm_mt: wasmMt };
  writeFileSync(path.join(root, 'build/bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  if (o.json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  console.log(`\n${path.basename(o.model)} on ${machine} (SIMD: native ${native.simd}, wasm ${wasm.simd})\n`);
  console.log(table(native, wasm, wasmMt));
  console.log(`logits and state of a fixed run bit-identical across ${dumps.map((d) => d.name).join(' / ')}: ${identical ? 'yes' : 'NO'}`);
  if (os.loadavg()[0] > 1.5) console.log(`\nnote: load average ${os.loadavg()[0].toFixed(1)} during the run; other processes skew the numbers (threads most)`);
}

main();
