#!/usr/bin/env node
// `npm run bench`: speed of the core on a random model of the published 0.1B shape, for
// the bf16 weights of the file and int8 / 4-bit quantized on load, 1 and 2 threads,
// natively and as wasm under Node, next to llama.cpp's numbers (js/bench/, docs/bench.md).
//   node scripts/bench.mjs [--skip-build] [--model FILE] [--threads 1,2] [--precisions keep,int8,q4]
//                          [--decode-runs N] [--prefill-runs N] [--json]
// Creates the model (build/bench/rwkv7-0.1B-shape.pth) when absent, builds what is needed,
// prints the tables (or JSON) and writes the raw results to build/bench/results.json.
// Never part of `npm test`.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { buildBench, defaultBenchModel, formatReport, root, runBench } from '../js/bench/bench.mjs';
import { shapeConfig, writeRandomModel } from '../js/bench/random-model.mjs';

const usage = 'usage: node scripts/bench.mjs [--skip-build] [--model FILE] [--threads 1,2] [--precisions keep,int8,q4] [--decode-runs N] [--prefill-runs N] [--json]';

function parseArgs(argv) {
  const o = { build: true, model: defaultBenchModel, json: false };
  const list = (v, f = String) => v.split(',').map((x) => f(x.trim()));
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--skip-build') o.build = false;
    else if (a === '--json') o.json = true;
    else if (a === '--model') o.model = path.resolve(argv[++i]);
    else if (a === '--threads') o.threads = list(argv[++i], Number);
    else if (a === '--precisions') o.precisions = list(argv[++i]);
    else if (a === '--decode-runs') o.decodeRuns = Number(argv[++i]);
    else if (a === '--prefill-runs') o.prefillRuns = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log(usage);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${usage}`);
  }
  return o;
}

const o = parseArgs(process.argv.slice(2));
if (!existsSync(o.model)) {
  process.stderr.write(`creating ${path.relative(root, o.model)} (random weights, published 0.1B shape)...\n`);
  writeRandomModel(o.model, shapeConfig('0.1B'));
}
if (o.build) buildBench();
const results = runBench(o);
mkdirSync(path.join(root, 'build/bench'), { recursive: true });
writeFileSync(path.join(root, 'build/bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
console.log(o.json ? JSON.stringify(results, null, 2) : `\n${formatReport(results)}`);
