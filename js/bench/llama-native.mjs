#!/usr/bin/env node
// One benchmark cell of native llama.cpp, through node-llama-cpp's prebuilt binaries (CPU
// only), in a process of its own: the same measurements as tools/bench.cpp on a GGUF of
// the same random weights. Prints one line of JSON:
//   {build, load_s, peak_memory_mb, threads, decode_tps, prefill_tps: [per length]}
//   node js/bench/llama-native.mjs MODEL.gguf --threads N [--decode-tokens 64] [--decode-runs 3]
//        [--prefill-tokens 128,1024] [--prefill-runs 2]
// Decode: greedy steps after a one-token prompt, tokens/s of `decode-tokens` steps (median
// of the runs); prefill: one evaluation of the prompt in a single batch (median).
import { parseArgs } from 'node:util';
import { peerModule } from './peers.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    threads: { type: 'string', default: '1' }, 'decode-tokens': { type: 'string', default: '64' }, 'decode-runs': { type: 'string', default: '3' },
    'prefill-tokens': { type: 'string', default: '128,1024' }, 'prefill-runs': { type: 'string', default: '2' },
  },
});
const [modelPath] = positionals;
const threads = Number(values.threads);
const decodeTokens = Number(values['decode-tokens']);
const decodeRuns = Number(values['decode-runs']);
const prefillLengths = values['prefill-tokens'].split(',').map(Number);
const prefillRuns = Number(values['prefill-runs']);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const { getLlama, LlamaLogLevel } = await import(peerModule('node-llama-cpp'));
const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: threads });
const t0 = performance.now();
const model = await llama.loadModel({ modelPath, useMmap: false });
const longest = Math.max(...prefillLengths);
const context = await model.createContext({ contextSize: longest + decodeTokens + 16, batchSize: longest, threads: { ideal: threads, min: threads }, sequences: 1 });
const loadS = (performance.now() - t0) / 1000;
const sequence = context.getSequence();
const prompt = Array.from({ length: longest }, (_, i) => (i * 7919 + 13) % 65536); // the prompt tools/bench.cpp feeds (V 65536)

const decode = [];
for (let r = 0; r < decodeRuns; r++) {
  await sequence.clearHistory();
  let n = 0;
  const start = performance.now();
  for await (const token of sequence.evaluate([prompt[0]], { temperature: 0 })) {
    if (token === undefined || ++n >= decodeTokens) break;
  }
  decode.push(n / ((performance.now() - start) / 1000));
}
const prefill = [];
for (const length of prefillLengths) {
  const tps = [];
  for (let r = 0; r < prefillRuns; r++) {
    await sequence.clearHistory();
    const start = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, length));
    tps.push(length / ((performance.now() - start) / 1000));
  }
  prefill.push(median(tps));
}
const peak = process.resourceUsage().maxRSS / 1024;
await context.dispose();
await model.dispose();
console.log(JSON.stringify({ build: `llama.cpp ${llama.buildType} (node-llama-cpp)`, load_s: loadS, peak_memory_mb: peak, threads, decode_tps: median(decode), prefill_tps: prefill }));
