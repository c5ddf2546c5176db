// The bench page (js/bench/page.html, served by js/bench/browser.mjs): one cell at a time,
// our runtime through the library as a page uses it (a worker; the pthread build for more
// than one thread) or wllama (llama.cpp in wasm, CPU only), the same measurements as
// tools/bench.cpp: greedy decode steps after a one-token prompt, prefill of each length.
import * as rwkv from '../rwkv.mjs';

const WLLAMA = './peers/node_modules/@wllama/wllama/esm/';
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const argmax = (x) => {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
};
const seconds = (t0) => (performance.now() - t0) / 1000;

async function ours(c, prompt) {
  // c.cache: through the model cache (OPFS): the first load keeps the converted model
  // there, the next one reads it back. stream_s: the file's bytes into the heap, without
  // the writing of the cache's copy that load_s includes.
  const url = new URL(`/models/${c.model}`, location.href).href;
  if (c.clearCache) await rwkv.clearCache();
  let last = null;
  const t0 = performance.now();
  // The bench's .pth is bf16: 'keep' asks for bf16, which fails where the heap cannot hold
  // it (unset, the library would pick a smaller type that fits).
  const quant = c.quant === 'keep' ? 'bf16' : c.quant;
  const model = await rwkv.load(url, { threads: c.threads, cache: c.cache === true, quant, onProgress: (p) => { last = p; } });
  const loadS = seconds(t0);
  const loadInfo = { stream_s: (last?.elapsedMs ?? NaN) / 1000, read_mb: (last?.total ?? NaN) / 2 ** 20, from_cache: !!last?.cached };
  try {
    const session = await model.createSession();
    // Warm-up, as tools/bench.cpp: the engine compiles a wasm function at its first calls
    // and optimizes it once it runs hot; the timed runs measure the optimized code.
    let warm = argmax(await session.prefill(prompt.slice(0, 16)));
    for (let i = 0; i < 4; i++) warm = argmax(await session.step(warm));
    const decode = [];
    for (let r = 0; r < c.decodeRuns; r++) {
      await session.reset();
      let token = argmax(await session.prefill([prompt[0]]));
      const start = performance.now();
      for (let i = 0; i < c.decodeTokens; i++) token = argmax(await session.step(token));
      decode.push(c.decodeTokens / seconds(start));
    }
    const prefill = [];
    for (const n of c.prefillLengths) {
      const tps = [];
      for (let r = 0; r < c.prefillRuns; r++) {
        await session.reset();
        const start = performance.now();
        await session.prefill(prompt.slice(0, n));
        tps.push(n / seconds(start));
      }
      prefill.push(median(tps));
    }
    const { wasmHeapBytes } = await model.memory();
    return { build: c.threads > 1 ? 'rwkv-mt.web' : 'rwkv.web', load_s: loadS, ...loadInfo, peak_memory_mb: wasmHeapBytes / 2 ** 20, decode_tps: median(decode), prefill_tps: prefill };
  } finally {
    await model.dispose();
  }
}

async function wllama(c, prompt) {
  const { Wllama } = await import(`${WLLAMA}index.js`);
  const quiet = { debug() {}, log() {}, info() {}, warn() {}, error: console.error };
  const w = new Wllama({ default: new URL(`${WLLAMA}wasm/wllama.wasm`, import.meta.url).href }, { logger: quiet });
  const longest = Math.max(...c.prefillLengths);
  const t0 = performance.now();
  await w.loadModelFromUrl(new URL(`/models/${c.model}`, location.href).href, {
    n_threads: c.threads, n_gpu_layers: 0, n_ctx: longest + c.decodeTokens + 16, n_batch: longest, n_ubatch: longest,
    useCache: false, warmup: false,
  });
  const loadS = seconds(t0);
  try {
    if (w.getNumThreads() !== c.threads) throw new Error(`wllama runs ${w.getNumThreads()} threads, not ${c.threads}`);
    // wllama takes text, not token ids: n ASCII letters are n tokens of the GGUF's byte
    // vocabulary (other ids than ours, the same work). llama.cpp's own timings (the
    // server's), prompt and generation apart.
    const text = (n) => prompt.slice(0, n).map((t) => String.fromCharCode(97 + (t % 26))).join('');
    const complete = async (n, maxTokens) => {
      const { timings } = await w.createCompletion({ prompt: text(n), max_tokens: maxTokens, temperature: 0, ignore_eos: true, cache_prompt: false });
      if (timings.prompt_n !== n) throw new Error(`wllama read ${timings.prompt_n} prompt tokens, not ${n}`);
      return timings;
    };
    const decode = [];
    for (let r = 0; r < c.decodeRuns; r++) decode.push((await complete(1, c.decodeTokens + 1)).predicted_per_second);
    const prefill = [];
    for (const n of c.prefillLengths) {
      const tps = [];
      for (let r = 0; r < c.prefillRuns; r++) tps.push((await complete(n, 1)).prompt_per_second);
      prefill.push(median(tps));
    }
    return { build: `wllama (${w.isMultithread() ? 'multi-thread' : 'single-thread'})`, load_s: loadS, peak_memory_mb: null, decode_tps: median(decode), prefill_tps: prefill };
  } finally {
    await w.exit();
  }
}

window.benchCell = async (c) => {
  const longest = Math.max(...c.prefillLengths);
  const prompt = Array.from({ length: longest }, (_, i) => (i * 7919 + 13) % 65536); // as tools/bench.cpp
  try {
    const result = await (c.runtime === 'wllama' ? wllama : ours)(c, prompt);
    return { threads: c.threads, ...result };
  } catch (err) {
    return { error: String(err?.message ?? err) };
  }
};
window.benchReady = true;
