// What differs between the hosts the engine runs on (Node and browsers), in one place:
// how the wasm core is instantiated, how many threads to use, how a long loop lets
// messages in, how a crash is simulated. Everything above this file is host-independent.
import { MAX_DEFAULT_THREADS } from './options.mjs';

export const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

/** Where the built glue and wasm live, relative to this file (the package ships them there). */
export const defaultWasmBase = new URL('../build/wasm/', import.meta.url);

/** Threads when none are asked for: the CPUs this process may run on, at most MAX_DEFAULT_THREADS. */
export async function defaultThreads() {
  if (isNode) {
    const os = await import('node:os');
    return Math.min(MAX_DEFAULT_THREADS, os.availableParallelism?.() ?? os.cpus().length);
  }
  return Math.min(MAX_DEFAULT_THREADS, globalThis.navigator?.hardwareConcurrency || 1);
}

/**
 * Instantiates the wasm core: the pthread build with a pool of `threads` when more than one
 * is asked for and the host can run it (Node: when it was built; browsers: in a
 * cross-origin isolated context whose workers can start workers), else the single-thread
 * build. Resolves to {core, threads} with the threads the core really has. relaxedSimd:
 * false keeps the core on its SIMD128 kernels, true asks for the relaxed-SIMD ones even
 * where they are opt-in (Node 20); by default they run where the host has relaxed SIMD
 * (src/kernels/relaxed/relaxed.cpp, docs/computation.md).
 */
export async function instantiateCore({ wasmBase, threads, relaxedSimd } = {}) {
  const base = new URL(wasmBase ?? defaultWasmBase, globalThis.location?.href);
  const wanted = Math.max(1, Math.floor(threads ?? await defaultThreads()));
  return isNode ? instantiateNode(base, wanted, relaxedSimd) : instantiateBrowser(base, wanted, relaxedSimd);
}

// Node 20's fetch cannot read file: URLs, so the wasm bytes are read here and handed to
// the (classic) glue.
async function instantiateNode(base, wanted, relaxedSimd) {
  const [{ createRequire }, { readFile }, { existsSync }, { fileURLToPath }] = await Promise.all([
    import('node:module'), import('node:fs/promises'), import('node:fs'), import('node:url')]);
  const threaded = wanted > 1 && existsSync(fileURLToPath(new URL('rwkv-mt.js', base)));
  const name = threaded ? 'rwkv-mt' : 'rwkv';
  const gluePath = fileURLToPath(new URL(`${name}.js`, base));
  let factory;
  try {
    factory = createRequire(import.meta.url)(gluePath);
  } catch (err) {
    throw new Error(`the wasm core is not built (${gluePath} is missing): run \`npm run build\``, { cause: err });
  }
  const wasmBinary = await readFile(new URL(`${name}.wasm`, base));
  const core = await factory({ wasmBinary, pthreadPoolSize: wanted, relaxedSimd });
  return { core, threads: threaded ? wanted : 1 };
}

// The relaxed-SIMD kernels (src/kernels/relaxed/, docs/computation.md): the bytes of the
// module for a plain (rwkv-relaxed.wasm) or a shared memory (rwkv-relaxed-mt.wasm), when
// they were built and this browser validates them (relaxed SIMD: Chromium 114+), else
// undefined and the core runs its SIMD128 kernels. The core checks them again and loads
// them; under Node its glue reads them itself.
async function relaxedWasm(url, relaxedSimd) {
  if (relaxedSimd === false) return undefined;
  try {
    const res = await fetch(url);
    if (!res.ok) return undefined;
    const bytes = new Uint8Array(await res.arrayBuffer());
    return WebAssembly.validate(bytes) ? bytes : undefined;
  } catch {
    return undefined;
  }
}

async function instantiateBrowser(base, wanted, relaxedSimd) {
  const locateFile = (f) => new URL(f, base).href;
  if (wanted > 1 && globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function' && typeof Worker === 'function') {
    try {
      const relaxed = await relaxedWasm(locateFile('rwkv-relaxed-mt.wasm'), relaxedSimd);
      return { core: await startThreaded(locateFile('rwkv-mt.web.mjs'), locateFile, wanted, relaxed), threads: wanted };
    } catch (err) {
      console.warn(`rwkv-web: the threaded core did not start (${err?.message ?? err}); running on one thread`);
    }
  }
  const [factory, relaxed] = await Promise.all([import(locateFile('rwkv.web.mjs')).then((m) => m.default),
    relaxedWasm(locateFile('rwkv-relaxed.wasm'), relaxedSimd)]);
  return { core: await factory({ locateFile, relaxedWasm: relaxed }), threads: 1 };
}

// Starts the pthread build. Its pool's workers (classic workers that import the glue
// again: mainScriptUrlOrBlob) are watched while it starts: one that fails to load would
// leave the factory waiting forever, so it fails the start instead, and all are ended.
async function startThreaded(url, locateFile, pthreadPoolSize, relaxedWasm) {
  const factory = (await import(url)).default;
  const NativeWorker = globalThis.Worker;
  const pool = [];
  let starting = true, fail;
  const failed = new Promise((_, reject) => { fail = reject; });
  globalThis.Worker = class extends NativeWorker {
    constructor(...args) {
      super(...args);
      pool.push(this);
      this.addEventListener('error', (e) => {
        if (!starting) return;  // later errors are the runtime's to report
        e.preventDefault();
        e.stopImmediatePropagation();
        fail(new Error(`a pthread worker failed to start: ${e.message || 'it did not load'}`));
      });
    }
  };
  try {
    const ready = factory({ locateFile, mainScriptUrlOrBlob: url, pthreadPoolSize, relaxedWasm });
    ready.catch?.(() => {});  // a failure after the race was lost is not reported twice
    return await Promise.race([ready, failed]);
  } catch (err) {
    for (const w of pool) w.terminate();
    throw err;
  } finally {
    starting = false;
    globalThis.Worker = NativeWorker;
  }
}

/** Resolves after pending events (messages, abort requests) had their turn. */
export const yieldToEvents = isNode
  ? () => new Promise((r) => setImmediate(r))
  : (() => {  // a MessageChannel round trip: unlike setTimeout, never clamped to 4 ms
      let ch = null;
      const queue = [];
      return () => new Promise((r) => {
        if (!ch) {
          ch = new MessageChannel();
          ch.port1.onmessage = () => queue.shift()?.();
        }
        queue.push(r);
        ch.port2.postMessage(0);
      });
    })();

/** Ends this worker abruptly, as a crash would (a test hook: the library must recover). */
export function crashWorker() {
  if (isNode) process.exit(70);
  setTimeout(() => { throw new Error('worker crash requested'); });
  globalThis.close?.();
}
