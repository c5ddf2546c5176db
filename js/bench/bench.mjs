// The benchmark behind `npm run bench` and `node js/cli.mjs bench` (Node only): decode and
// prefill speed of one model file for each weight precision and thread count, natively
// (build/native/rwkv_bench) and as wasm under Node (build/wasm/rwkv-bench.js, the
// single-thread module; rwkv-bench-mt.js, the pthread one), the weight bytes read per
// decoded token, the machine's memory read bandwidth measured in the same run and the
// fraction of it decode reaches, peak memory; next to llama.cpp's numbers for the same
// model shape on the same kind of machine (2 cores). See docs/bench.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const defaultBenchModel = path.join(root, 'build/bench/rwkv7-0.1B-shape.pth');

// llama.cpp (native) on the published 0.1B shape, same kind of machine: tokens/s, and MB
// of weights read per decoded token. Our precision -> its closest type.
export const LLAMA = {
  BF16: { type: 'F16', mb: 284, decode: { 1: 26.7, 2: 43.6 }, prefill: { 1: 237, 2: 426 } },
  Q8_0: { type: 'Q8_0', mb: 158, decode: { 1: 35.2, 2: 61.4 }, prefill: { 1: 233, 2: 348 } },
  Q4_0: { type: 'Q4_0', mb: 103, decode: { 1: 48.9, 2: 75.6 }, prefill: { 1: 314, 2: 255 } },
};

/** The `--quant` value of rwkv_bench for a precision name of the bench. */
const QUANT_ARG = { keep: 'keep', bf16: 'bf16', f32: 'f32', int8: 'int8', q4: 'q4' };

function log(msg) { process.stderr.write(`${msg}\n`); }

function runJson(cmd, args) {
  const shown = [cmd === process.execPath ? 'node' : cmd, ...args].map((a) => (path.isAbsolute(a) ? path.relative(root, a) : a));
  log(`$ ${shown.join(' ')}`);
  const out = execFileSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`no JSON from ${cmd}: ${out}`);
  return JSON.parse(line);
}

/** Builds the library's targets and the benchmark programs (native and wasm). */
export function buildBench() {
  log('building (scripts/build.sh, then the benchmark targets)...');
  const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':') };
  const build = (args) => execFileSync(args[0], args.slice(1), { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  build(['bash', 'scripts/build.sh']);
  const jobs = String(os.cpus().length);
  build(['cmake', '--build', 'build/native', '-j', jobs, '--target', 'rwkv_bench']);
  build(['cmake', '--build', 'build/wasm', '-j', jobs, '--target', 'rwkv_bench', 'rwkv_bench_mt']);
}

/**
 * Runs the benchmark. Options: model (file), threads (list, default [1, 2]), precisions
 * (list of keep|bf16|f32|int8|q4, default keep, int8, q4), decodeRuns, prefillRuns,
 * builds (list of native|wasm, default both), identical (check that every build and
 * thread count gives the same logits, default true). Returns a plain object (see
 * formatReport).
 */
export function runBench(o) {
  const threads = o.threads ?? [1, 2];
  const precisions = o.precisions ?? ['keep', 'int8', 'q4'];
  const builds = o.builds ?? ['native', 'wasm'];
  for (const p of precisions) if (!QUANT_ARG[p]) throw new Error(`unknown precision '${p}': use ${Object.keys(QUANT_ARG).join(', ')}`);
  const node = [process.execPath, '--no-experimental-fetch'];
  const programs = {
    native: [path.join(root, 'build/native/rwkv_bench')],
    wasm: [node[0], node[1], path.join(root, 'build/wasm/rwkv-bench.js')],
    'wasm-mt': [node[0], node[1], path.join(root, 'build/wasm/rwkv-bench-mt.js')],
  };
  for (const [name, cmd] of Object.entries(programs))
    if (!existsSync(cmd.at(-1))) throw new Error(`${path.relative(root, cmd.at(-1))} is missing (${name}): run without --skip-build`);
  const common = ['--decode-runs', String(o.decodeRuns ?? 7), '--prefill-runs', String(o.prefillRuns ?? 3), '--json'];
  const run = (prog, args) => runJson(programs[prog][0], [...programs[prog].slice(1), o.model, ...args, ...common]);
  const list = (xs) => xs.join(',');
  const runs = [];
  let bandwidthDone = false;
  for (const precision of precisions) {
    const quant = ['--quant', QUANT_ARG[precision]];
    // The machine's bandwidth once per build (it does not depend on the model).
    const bw = bandwidthDone ? ['--bandwidth-mb', '0'] : [];
    const entry = { precision };
    if (builds.includes('native')) entry.native = run('native', ['--threads', list(threads), ...quant, ...bw]);
    if (builds.includes('wasm')) {
      if (threads.includes(1)) entry.wasm = run('wasm', ['--threads', '1', ...quant, ...bw]);
      const many = threads.filter((n) => n > 1);
      if (many.length) entry.wasmMt = run('wasm-mt', ['--threads', list(many), ...quant, ...bw]);
    }
    if (o.identical ?? true) entry.identical = sameLogits(programs, o.model, quant, threads, builds);
    runs.push(entry);
    bandwidthDone = true;
  }
  // The bandwidth was measured in each build's runs of the first precision: copy it over.
  for (const key of ['native', 'wasm', 'wasmMt'])
    for (const r of runs.slice(1))
      for (const res of r[key]?.results ?? []) {
        const ref = runs[0][key]?.results.find((x) => x.threads === res.threads);
        if (!ref) continue;
        res.bandwidth_gbs = ref.bandwidth_gbs;
        res.bandwidth_1stream_gbs = ref.bandwidth_1stream_gbs;
        res.bandwidth_fraction = res.bandwidth_gbs > 0 ? res.decode_read_gbs / res.bandwidth_gbs : 0;
      }
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`;
  return { machine, date: new Date().toISOString(), model: path.basename(o.model), loadavg: os.loadavg()[0], llama_cpp: LLAMA, runs };
}

// The logits and state of a fixed run from every build and thread count, compared byte
// for byte: true when all are the same.
function sameLogits(programs, model, quant, threads, builds) {
  const cases = [];
  if (builds.includes('native')) for (const n of threads) cases.push(['native', String(n)]);
  if (builds.includes('wasm')) {
    if (threads.includes(1)) cases.push(['wasm', '1']);
    for (const n of threads.filter((x) => x > 1)) cases.push(['wasm-mt', String(n)]);
  }
  const dumps = cases.map(([prog, n], i) => {
    const file = path.join(path.dirname(model), `dump-${process.pid}-${i}.f32`);
    const cmd = programs[prog];
    execFileSync(cmd[0], [...cmd.slice(1), model, '--threads', n, ...quant, '--dump', file], { cwd: root, stdio: 'ignore' });
    const bytes = readFileSync(file);
    rmSync(file);
    return bytes;
  });
  return dumps.every((d) => d.equals(dumps[0]));
}

const fmt = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(d));
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '-');

function grid(head, rows) {
  const lines = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
  const out = lines.map((l) => l.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
  out.splice(1, 0, widths.map((x) => '-'.repeat(x)).join('  '));
  return out.join('\n');
}

/** The results of runBench as text: a speed table, a memory table, notes. */
export function formatReport(results) {
  const speed = [], memory = [], notes = [];
  for (const r of results.runs) {
    const any = r.native ?? r.wasm ?? r.wasmMt;
    const dtype = any.weight_dtype;
    const ref = LLAMA[dtype];
    const threadCounts = [...new Set([...(r.native?.results ?? []), ...(r.wasm?.results ?? []), ...(r.wasmMt?.results ?? [])].map((x) => x.threads))].sort();
    for (const n of threadCounts) {
      const nat = r.native?.results.find((x) => x.threads === n);
      const was = (n === 1 ? r.wasm : r.wasmMt)?.results.find((x) => x.threads === n);
      const label = `${dtype}, ${n} thread${n > 1 ? 's' : ''}`;
      speed.push([label, fmt(was?.decode_tps), fmt(nat?.decode_tps), fmt(ref?.decode[n]), ratio(was?.decode_tps, ref?.decode[n]),
        fmt(was?.prefill_tps), fmt(nat?.prefill_tps), fmt(ref?.prefill[n], 0), ratio(was?.prefill_tps, ref?.prefill[n])]);
      const part = (x) => (x ? `${fmt(x.decode_read_gbs, 2)} / ${fmt(x.bandwidth_gbs, 2)} = ${(100 * x.bandwidth_fraction).toFixed(0)}%` : '-');
      memory.push([label, fmt(any.decode_weight_bytes / 1e6), ref ? String(ref.mb) : '-', part(was), part(nat), fmt(was?.bandwidth_1stream_gbs, 2)]);
    }
    notes.push(`${dtype}: model in memory ${fmt(any.model_memory_mb, 0)} MB; peak memory: native ${fmt(r.native?.peak_memory_mb, 0)} MB RSS, ` +
      `wasm heap ${fmt(r.wasm?.peak_memory_mb, 0)} MB (pthread module ${fmt(r.wasmMt?.peak_memory_mb, 0)} MB); load ${fmt(r.wasm?.load_s ?? any.load_s, 2)} s` +
      (r.identical === undefined ? '' : `; logits bit-identical across builds and threads: ${r.identical ? 'yes' : 'NO'}`));
  }
  const prefillTokens = results.runs[0]?.native?.prefill_tokens ?? results.runs[0]?.wasm?.prefill_tokens ?? 128;
  const out = [
    `${results.model} on ${results.machine}`,
    '',
    grid(['tokens/s', 'decode wasm', 'native', 'llama.cpp', 'wasm/llama', `prefill${prefillTokens} wasm`, 'native', 'llama.cpp', 'wasm/llama'], speed),
    '',
    grid(['decode memory', 'MB/token', 'llama.cpp', 'wasm GB/s read / bandwidth', 'native', 'wasm 1 stream GB/s'], memory),
    '',
    ...notes,
    'llama.cpp: native CPU build on the same model shape and kind of machine (F16 for BF16); bandwidth: a 512 MB buffer summed with SIMD, 8 streams per thread, measured in this run.',
  ];
  if (results.loadavg > 1.5) out.push(`note: load average ${results.loadavg.toFixed(1)} at the end of the run; other processes skew the numbers (threads most)`);
  return out.join('\n');
}
