// The Q4_0 prefill on the relaxed-SIMD kernels against the SIMD128 ones, in one run and
// through the library as users run it (docs/computation.md, "Relaxed SIMD"): two models
// loaded side by side, one with relaxedSimd: false, one with the relaxed kernels (Node:
// relaxedSimd: true, as they are opt-in on Node 20; Chromium: as it loads them), their
// prefills of 128 tokens interleaved, round after round; tokens/s medians and the median
// of the per-round ratios. Each model's path is checked: its prefill logits equal its
// steps' bit for bit on the SIMD128 kernels only.
//   node scripts/relaxed-bench.mjs [--runtime node|chromium] [--threads N] [--rounds N] [--model file]
// The default model is the random 0.1B shape `npm run bench` writes (build/bench/).
import { createServer } from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: {
  runtime: { type: 'string', default: 'node' }, threads: { type: 'string', default: '1' },
  rounds: { type: 'string', default: '15' }, model: { type: 'string', default: path.join(root, 'build/bench/rwkv7-0.1B-shape.pth') },
} });
const threads = Number(values.threads), rounds = Number(values.rounds);
if (!existsSync(values.model)) throw new Error(`${values.model} is missing: run \`npm run bench -- --quick\` once, or pass --model`);

// Runs in Node or in the page: rwkv is the library, url the model's.
async function abRun(rwkv, url, { threads, rounds, relaxed }) {
  const A = await rwkv.load(url, { threads, cache: false, quant: 'q4', relaxedSimd: false });
  const B = await rwkv.load(url, { threads, cache: false, quant: 'q4', ...relaxed });
  try {
    const sa = await A.createSession(), sb = await B.createSession();
    const tokens = Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % 65536);
    const time = async (s) => {
      await s.reset();
      const t0 = performance.now();
      await s.prefill(tokens);
      return 128 / ((performance.now() - t0) / 1000);
    };
    const kernels = async (s) => {
      const t = tokens.slice(0, 10);
      await s.reset();
      const a = await s.prefill(t);
      await s.reset();
      let b = await s.prefill([t[0]]);
      for (const x of t.slice(1)) b = await s.step(x);
      return a.every((v, i) => v === b[i]) ? 'simd128' : 'relaxed';
    };
    const paths = [await kernels(sa), await kernels(sb)];
    await time(sa);
    await time(sb);
    const a = [], b = [];
    for (let r = 0; r < rounds; r++) {
      a.push(await time(sa));
      b.push(await time(sb));
    }
    const med = (x) => { const s = [...x].sort((p, q) => p - q); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
    return { threads, kernels: paths, simd128: +med(a).toFixed(1), relaxed: +med(b).toFixed(1), ratioOfMedians: +(med(b) / med(a)).toFixed(2),
      medianRatio: +med(b.map((v, i) => v / a[i])).toFixed(2) };
  } finally {
    await A.close?.();
    await B.close?.();
  }
}

const os = await import('node:os');
const started = os.loadavg()[0];
let result;
if (values.runtime === 'node') {
  const rwkv = await import(pathToFileURL(path.join(root, 'js/rwkv.mjs')).href);
  result = await abRun(rwkv, values.model, { threads, rounds, relaxed: { relaxedSimd: true } });
} else if (values.runtime === 'chromium') {
  const { chromium } = await import('playwright-core');
  const modelDir = path.dirname(path.resolve(values.model));
  const MIME = { '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
  const server = createServer((req, res) => {  // the repository and /models/, cross-origin isolated
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    if (url === '/') return res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end('<!doctype html><title>relaxed-bench</title>');
    const [base, rel] = url.startsWith('/models/') ? [modelDir, url.slice(8)] : [root, url.slice(1)];
    const file = path.resolve(base, rel);
    if (!file.startsWith(path.resolve(base) + path.sep) || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { ...headers, 'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking'] });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(0);
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    result = await page.evaluate(async ({ fn, url, threads, rounds }) => {
      const rwkv = await import('/js/rwkv.mjs');
      return (0, eval)(`(${fn})`)(rwkv, url, { threads, rounds, relaxed: {} });
    }, { fn: abRun.toString(), url: `http://127.0.0.1:${server.address().port}/models/${path.basename(values.model)}`, threads, rounds });
    result.browser = browser.version();
  } finally {
    await browser.close();
    server.close();
  }
} else {
  throw new Error(`--runtime: '${values.runtime}' is not node or chromium`);
}
console.log(JSON.stringify({ runtime: values.runtime, ...result, rounds, loadAverage: [+started.toFixed(2), +os.loadavg()[0].toFixed(2)] }));
