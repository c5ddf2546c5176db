#!/usr/bin/env node
// `npm run bench`: our runtime against llama.cpp (native and wasm) on the same random
// weights, natively, under Node and in Chromium, measured in the same run (js/bench/,
// docs/bench.md). `npm run bench -- --help` lists the options. Never part of `npm test`.
import { main } from '../js/bench/bench.mjs';

try {
  await main(process.argv.slice(2));
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exitCode = 1;
}
