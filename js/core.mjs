// Loads the wasm core (build/wasm/rwkv.js + rwkv.wasm) and moves model bytes into its
// heap. The lowest layer of the JS library: everything above talks to the Embind
// classes `Model` and `State` through the helpers here.

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

/** Where the built glue and wasm live, relative to this file. */
export const defaultWasmBase = new URL('../build/wasm/', import.meta.url);

/**
 * Instantiates the wasm core. In Node the glue's own loader cannot fetch the wasm
 * (Node 20's fetch rejects file paths), so the bytes are read here and handed over.
 * With threads > 1 the pthread build (rwkv-mt.js) is used when it was built, with a
 * pool of that many threads; otherwise the single-thread one.
 * @param {{wasmBase?: URL|string, threads?: number}} [options]
 */
export async function loadCore(options = {}) {
  const base = new URL(options.wasmBase ?? defaultWasmBase);
  if (!isNode) throw new Error('loadCore: the browser loader lives in js/worker.mjs');
  const [{ createRequire }, { readFile }, { existsSync }, { fileURLToPath }] = await Promise.all([
    import('node:module'), import('node:fs/promises'), import('node:fs'), import('node:url')]);
  const threads = Math.max(1, Math.floor(options.threads ?? 1));
  const name = threads > 1 && existsSync(fileURLToPath(new URL('rwkv-mt.js', base))) ? 'rwkv-mt' : 'rwkv';
  const gluePath = fileURLToPath(new URL(`${name}.js`, base));
  let factory;
  try {
    factory = createRequire(import.meta.url)(gluePath);
  } catch (err) {
    throw new Error(`the wasm core is not built (${gluePath} is missing): run \`npm run build\``, { cause: err });
  }
  const wasmBinary = await readFile(new URL(`${name}.wasm`, base));
  return factory({ wasmBinary, pthreadPoolSize: threads });
}

/** Threads a Node process can use: the CPUs it may run on, at most 4. */
export async function defaultThreads() {
  if (!isNode) return 1;
  const os = await import('node:os');
  return Math.min(4, os.availableParallelism?.() ?? os.cpus().length);
}

/**
 * The result of a core call that reports failures as an error record
 * ({rwkvError: name, message}, see src/bindings.cpp): the value, or a thrown Error with
 * that name and message.
 */
export function checked(result) {
  if (result !== null && typeof result === 'object' && typeof result.rwkvError === 'string') {
    const err = new Error(result.message);
    err.name = result.rwkvError;
    throw err;
  }
  return result;
}

/** The `quant` load option's names and the weight types they convert the matrices to. */
export const QUANT_TYPES = Object.freeze({ int8: 'Q8_0', q8_0: 'Q8_0', q4: 'Q4_0', q4_0: 'Q4_0', bf16: 'BF16', f32: 'F32' });
const DTYPE_CODES = { F32: 0, BF16: 2, Q8_0: 3, Q4_0: 4 };

/**
 * The number Model.fromHeap takes for a `quant` option: -1 (keep the file's types) for
 * undefined, null or ''; else the weight type's number. Throws a TypeError on other names.
 */
export function quantCode(quant) {
  if (quant === undefined || quant === null || quant === '') return -1;
  const dtype = QUANT_TYPES[String(quant).toLowerCase()];
  if (!dtype) throw new TypeError(`unknown quant '${quant}': use one of ${Object.keys(QUANT_TYPES).join(', ')}`);
  return DTYPE_CODES[dtype];
}

/**
 * Copies a model file into the wasm heap chunk by chunk and builds the model there.
 * `chunks` is an async iterable of Uint8Array whose lengths add up to `size`; at no
 * point does a second full copy of the file exist. The core takes the bytes over, and
 * converts the matrices as `quant` asks (see quantCode), in place where they shrink.
 * @returns the Embind Model (call .delete() when done)
 */
export async function modelFromChunks(core, chunks, size, onProgress, quant) {
  const code = quantCode(quant);
  const ptr = core._malloc(size);
  if (!ptr) throw Object.assign(new Error(`out of memory: cannot place a ${size}-byte model in the wasm heap (wasm32 addresses at most 4 GB)`), { name: 'OutOfMemory' });
  let done = 0;
  try {
    for await (const chunk of chunks) {
      if (done + chunk.length > size) throw new Error(`model source delivered more than the announced ${size} bytes`);
      core.HEAPU8.set(chunk, ptr + done);  // HEAPU8 is re-read: the heap may have grown
      done += chunk.length;
      onProgress?.(done, size);
    }
    if (done !== size) throw new Error(`model source ended after ${done} of ${size} bytes (truncated download?)`);
  } catch (err) {
    core._free(ptr);
    throw err;
  }
  return core.Model.fromHeap(ptr, size, code);  // owns ptr from here on, even when it throws
}

/** Node: reads a model file from disk straight into the heap (`quant`: see quantCode). */
export async function modelFromFile(core, path, onProgress, quant) {
  const { open } = await import('node:fs/promises');
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    async function* chunks() {
      const buf = new Uint8Array(Math.min(size, 8 << 20) || 1);
      for (let pos = 0; pos < size;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
        yield buf.subarray(0, bytesRead);
      }
    }
    return await modelFromChunks(core, chunks(), size, onProgress, quant);
  } finally {
    await fh.close();
  }
}
