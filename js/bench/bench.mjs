// The benchmark behind `npm run bench` and `node js/cli.mjs bench` (Node only, in a
// checkout): our runtime natively (build/native/rwkv_bench), under Node (the wasm builds
// rwkv-bench.js for one thread, rwkv-bench-mt.js for more) and in Chromium (the page's
// builds, through the library), each cell run right before its peer's — llama.cpp
// natively (node-llama-cpp) and in wasm (wllama in the same Chromium) — on the same random
// weights of a published shape (our bf16/int8/q4 against llama.cpp's F16/Q8_0/Q4_0),
// with the machine's read bandwidth measured each round. See docs/bench.md.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openBrowser } from './browser.mjs';
import { installPeers } from './peers.mjs';
import { SHAPES, shapeConfig, writeRandomGguf, writeRandomModel } from './random-model.mjs';
import { PRECISIONS, RUNTIMES, formatReport } from './report.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const benchDir = path.join(root, 'build/bench');
/** The random model of a shape (written when absent). */
export const benchModel = (shape) => path.join(benchDir, `rwkv7-${shape}-shape.pth`);
export const defaultBenchModel = benchModel('0.1B');

export const usage = `usage: npm run bench -- [options]   (or: node js/cli.mjs bench [options])
  --shape 0.1B|0.4B|1.5B|2.9B   random model of that published shape (default 0.1B)
  --quick                       a small check: 1 round, prefill 128 only, 16 decoded tokens
  --rounds N                    rounds of every cell (default 3); the tables give medians
  --threads 1,2                 thread counts (default 1,2; Chromium adds navigator.hardwareConcurrency)
  --prefill-tokens 128,1024     prefill lengths (default 128,1024; --quick 128)
  --decode-tokens N             tokens per decode run (default 64; --quick 16)
  --precisions bf16,int8,q4     ours (against llama.cpp F16, Q8_0, Q4_0)
  --runtimes LIST               of ${Object.keys(RUNTIMES).join(',')} (default all)
  --skip-build                  use the programs already built
  --json                        print the results as JSON (always written to build/bench/results.json)`;

function log(msg) { process.stderr.write(`${msg}\n`); }

/** The options of the bench from command-line arguments; throws on a bad one. */
export function parseBenchArgs(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      shape: { type: 'string', default: '0.1B' }, quick: { type: 'boolean', default: false }, rounds: { type: 'string' },
      threads: { type: 'string', default: '1,2' }, 'prefill-tokens': { type: 'string' }, 'decode-tokens': { type: 'string' }, precisions: { type: 'string', default: Object.keys(PRECISIONS).join(',') },
      runtimes: { type: 'string', default: Object.keys(RUNTIMES).join(',') }, 'skip-build': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
  const o = {
    help: values.help, shape: values.shape, quick: values.quick, build: !values['skip-build'], json: values.json,
    rounds: Number(values.rounds ?? (values.quick ? 1 : 3)), threads: list(values.threads).map(Number),
    precisions: list(values.precisions), runtimes: list(values.runtimes),
    prefillLengths: list(values['prefill-tokens'] ?? (values.quick ? '128' : '128,1024')).map(Number),
    decodeTokens: Number(values['decode-tokens'] ?? (values.quick ? 16 : 64)),
  };
  if (!SHAPES[o.shape]) throw new Error(`--shape: '${o.shape}' is not one of ${Object.keys(SHAPES).join(', ')}`);
  if (!(Number.isInteger(o.rounds) && o.rounds >= 1)) throw new Error(`--rounds: '${values.rounds}' is not a positive integer`);
  if (!o.threads.length || !o.threads.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`--threads: '${values.threads}' is not a list of thread counts`);
  if (!o.prefillLengths.length || !o.prefillLengths.every((n) => Number.isInteger(n) && n >= 1)) throw new Error(`--prefill-tokens: '${values['prefill-tokens']}' is not a list of token counts`);
  if (!(Number.isInteger(o.decodeTokens) && o.decodeTokens >= 1)) throw new Error(`--decode-tokens: '${values['decode-tokens']}' is not a positive integer`);
  for (const p of o.precisions) if (!PRECISIONS[p]) throw new Error(`--precisions: unknown '${p}' (use ${Object.keys(PRECISIONS).join(', ')})`);
  for (const r of o.runtimes) if (!RUNTIMES[r]) throw new Error(`--runtimes: unknown '${r}' (use ${Object.keys(RUNTIMES).join(', ')})`);
  return o;
}

/** Builds what the bench runs: the native and wasm rwkv_bench, the library's wasm builds. */
export function buildBench() {
  log('building (scripts/build.sh: rwkv_bench natively and in wasm, the page builds)...');
  const env = {
    ...process.env, RWKV_NATIVE_TARGETS: 'rwkv_bench',
    RWKV_WASM_TARGETS: 'rwkv_bench rwkv_bench_mt rwkv_wasm rwkv_wasm_mt rwkv_wasm_web rwkv_wasm_web_mt',
  };
  execFileSync('bash', ['scripts/build.sh'], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** Writes what is missing of the shape's models: the .pth, its GGUF twins, the bandwidth probe's tiny model. */
export async function prepareModels(shape, precisions) {
  const cfg = shapeConfig(shape);
  const pth = benchModel(shape);
  const timed = async (what, f) => {
    log(`writing ${path.relative(root, what)}...`);
    const t0 = performance.now();
    await f();
    log(`  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };
  if (!existsSync(pth)) await timed(pth, () => writeRandomModel(pth, cfg));
  const gguf = {};
  for (const p of precisions) {
    const type = PRECISIONS[p].gguf;
    gguf[p] = pth.replace(/\.pth$/, `.${type}.gguf`);
    if (!existsSync(gguf[p])) await timed(gguf[p], () => writeRandomGguf(gguf[p], cfg, type));
  }
  const probe = path.join(benchDir, 'bandwidth-probe.pth');
  if (!existsSync(probe))
    writeRandomModel(probe, { name: 'probe', seed: 1, L: 1, C: 64, N: 64, F: 256, V: 256, Dw: 32, Da: 32, Dv: 32, Dg: 32, block0V: true });
  return { pth, gguf, probe };
}

// A program printing one JSON line; its last such line, parsed. Throws with its stderr's end.
function runJson(cmd, args) {
  try {
    const out = execFileSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'] });
    const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
    if (!line) throw new Error(`no JSON from ${path.basename(args[0] ?? cmd)}`);
    return JSON.parse(line);
  } catch (err) {
    const why = (err.stderr || err.message || '').trim().split('\n').filter(Boolean).slice(-2).join(' ').replace(/^error: /, '');
    throw new Error(why || `${path.basename(cmd)} failed`);
  }
}

const node = [process.execPath, '--no-experimental-fetch'];
const programs = {
  native: ['build/native/rwkv_bench'],
  wasm: [...node, 'build/wasm/rwkv-bench.js'],
  'wasm-mt': [...node, 'build/wasm/rwkv-bench-mt.js'],
};

// One cell of tools/bench.cpp (natively or in Node) as {decode_tps, prefill_tps: [], load_s, peak_memory_mb, ...}.
function oursCell(program, model, precision, threads, p) {
  const [cmd, ...pre] = programs[program].map((x, i) => (i === programs[program].length - 1 ? path.join(root, x) : x));
  const r = runJson(cmd, [...pre, model, '--threads', String(threads), '--quant', PRECISIONS[precision].quant,
    '--decode-tokens', String(p.decodeTokens), '--decode-runs', String(p.decodeRuns),
    '--prefill-tokens', p.prefillLengths.join(','), '--prefill-runs', String(p.prefillRuns), '--bandwidth-mb', '0', '--json']);
  const res = r.results[0];
  return { build: r.build, load_s: r.load_s, peak_memory_mb: r.peak_memory_mb, decode_weight_bytes: r.decode_weight_bytes, threads: res.threads, decode_tps: res.decode_tps, prefill_tps: res.prefill_tps };
}

function llamaCell(gguf, threads, p) {
  return runJson(process.execPath, [path.join(root, 'js/bench/llama-native.mjs'), gguf, '--threads', String(threads),
    '--decode-tokens', String(p.decodeTokens), '--decode-runs', String(p.decodeRuns),
    '--prefill-tokens', p.prefillLengths.join(','), '--prefill-runs', String(p.prefillRuns)]);
}

// The machine's read bandwidth per thread count (GB/s): rwkv_bench's probe, natively.
function bandwidth(probe, threads) {
  const r = runJson(path.join(root, programs.native[0]), [probe, '--threads', threads.join(','), '--decode-runs', '0', '--prefill-runs', '0', '--prefill-tokens', '1', '--json']);
  return Object.fromEntries(r.results.map((x) => [x.threads, x.bandwidth_gbs]));
}

function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const features = [];
  if (existsSync('/proc/cpuinfo')) {
    // The model name, and the vector features that matter to both sides' kernels.
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? cpu;
    const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(' '));
    for (const f of ['avx2', 'fma', 'f16c', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16']) if (flags.has(f)) features.push(f);
  }
  return { cpu, features, cores: os.cpus().length, memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version.slice(1) };
}

/**
 * Runs the bench (options of parseBenchArgs). Returns the results object that
 * formatReport prints: {date, machine, shape, model, runtimes, rounds, prefillLengths, decodeTokens,
 * precisions, missing: {runtime: reason}, bandwidth: {threads: [GB/s per round]},
 * decodeWeightBytes: {precision: bytes}, cells: [{runtime, precision, threads, runs: [...]}]}.
 */
export async function runBench(o) {
  const started = performance.now();
  const p = { decodeTokens: o.decodeTokens, decodeRuns: o.quick ? 1 : 2, prefillLengths: o.prefillLengths, prefillRuns: 1 };
  mkdirSync(benchDir, { recursive: true });
  const want = new Set(o.runtimes);
  const missing = {};
  if (want.has('llama-native') || want.has('wllama')) {
    const why = installPeers({ log });
    if (why) for (const r of ['llama-native', 'wllama']) if (want.has(r)) missing[r] = why;
  }
  const models = await prepareModels(o.shape, o.precisions);
  const cfg = shapeConfig(o.shape);
  const results = {
    date: new Date().toISOString(), machine: machine(), loadavg: { start: os.loadavg()[0] }, shape: o.shape,
    model: { n_layer: cfg.L, n_embd: cfg.C, vocab: cfg.V, ffn: cfg.F, lora: { w: cfg.Dw, a: cfg.Da, v: cfg.Dv, g: cfg.Dg } },
    runtimes: o.runtimes, rounds: o.rounds, quick: o.quick, prefillLengths: p.prefillLengths, decodeTokens: p.decodeTokens, precisions: o.precisions,
    missing, bandwidth: {}, decodeWeightBytes: {}, cells: [],
  };
  let browser = null;
  if (want.has('ours-chromium') || want.has('wllama')) {
    try {
      browser = await openBrowser({ root, modelsDir: benchDir, log });
      results.machine.chromium = browser.version;
    } catch (err) {
      for (const r of ['ours-chromium', 'wllama']) if (want.has(r)) missing[r] ??= err.message;
    }
  }
  const browserThreads = browser && browser.hardwareConcurrency > Math.max(...o.threads) ? [...o.threads, browser.hardwareConcurrency] : o.threads;
  const pthName = path.basename(models.pth);

  const cellOf = (runtime, precision, threads) => {
    let c = results.cells.find((x) => x.runtime === runtime && x.precision === precision && x.threads === threads);
    if (!c) results.cells.push(c = { runtime, precision, threads, runs: [] });
    return c;
  };
  const run = async (runtime, precision, threads, f) => {
    if (!want.has(runtime) || missing[runtime]) return;
    const t0 = performance.now();
    let r;
    try {
      r = await f();
      if (r.error) throw new Error(r.error);
    } catch (err) {
      r = { error: err.message };
    }
    cellOf(runtime, precision, threads).runs.push(r);
    const tps = r.error ? `error: ${r.error}` : `decode ${r.decode_tps.toFixed(1)}, prefill ${r.prefill_tps.map((x) => x.toFixed(1)).join('/')} tok/s`;
    log(`  ${RUNTIMES[runtime].label}, ${precision}, ${threads}t: ${tps} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    return r;
  };

  try {
    for (let round = 1; round <= o.rounds; round++) {
      log(`round ${round} of ${o.rounds} (load average ${os.loadavg()[0].toFixed(2)})`);
      try {
        for (const [t, gbs] of Object.entries(bandwidth(models.probe, o.threads))) (results.bandwidth[t] ??= []).push(gbs);
      } catch (err) {
        results.bandwidthError = err.message;
      }
      for (const precision of o.precisions) {
        for (const threads of browserThreads) {
          const everywhere = o.threads.includes(threads); // the extra browser thread count runs in Chromium only
          if (everywhere) {
            const native = await run('ours-native', precision, threads, () => oursCell('native', models.pth, precision, threads, p));
            await run('llama-native', precision, threads, () => llamaCell(models.gguf[precision], threads, p));
            const wasm = await run('ours-node', precision, threads, () => oursCell(threads > 1 ? 'wasm-mt' : 'wasm', models.pth, precision, threads, p));
            const bytes = [native, wasm].find((r) => r && !r.error)?.decode_weight_bytes;
            if (bytes) results.decodeWeightBytes[precision] = bytes;
          }
          await run('ours-chromium', precision, threads, () => browser.run({ runtime: 'ours', model: pthName, quant: PRECISIONS[precision].quant, threads, ...p }));
          await run('wllama', precision, threads, () => browser.run({ runtime: 'wllama', model: path.basename(models.gguf[precision]), threads, ...p }));
        }
      }
    }
  } finally {
    await browser?.close();
  }
  results.loadavg.end = os.loadavg()[0];
  results.durationS = (performance.now() - started) / 1000;
  return results;
}

/** The bench as a command: parses argv, builds, runs, prints the report (or JSON), writes build/bench/results.json. */
export async function main(argv) {
  const o = parseBenchArgs(argv);
  if (o.help) {
    console.log(usage);
    return;
  }
  if (o.build) buildBench();
  const results = await runBench(o);
  writeFileSync(path.join(benchDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(o.json ? JSON.stringify(results, null, 2) : `\n${formatReport(results)}`);
}

