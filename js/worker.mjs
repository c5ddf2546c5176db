// The worker: owns the wasm core, the loaded models and the sessions' states. Speaks
// the protocol of protocol.mjs; the same file runs as a Web Worker and as a Node
// worker_threads worker. Long loops yield between tokens so cancel messages get in.
import { serve, selfEndpoint } from './protocol.mjs';
import { openSource, readSource } from './sources.mjs';
import { AbortError, BusyError, InvalidArgumentError, ModelFormatError, OutOfMemoryError, VocabError, RwkvError } from './errors.mjs';
import { STATE_MAGIC, STATE_VERSION, STATE_HEADER_BYTES } from './state-format.mjs';
import { checked, quantCode } from './core.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

// Node: the pthread build when more than one thread is wanted (and built). Browsers: the
// pthread build (rwkv-mt.web.mjs) with a pool of `threads` (default min(cores, 4)) when the
// page is cross-origin isolated; else, or when it does not start, the single-thread build.
async function instantiate(wasmBase, threads) {
  if (isNode) {
    const { loadCore, defaultThreads } = await import('./core.mjs');
    coreThreads = threads ?? await defaultThreads();
    return loadCore({ wasmBase, threads: coreThreads });
  }
  const base = new URL(wasmBase ?? '../build/wasm/', import.meta.url);
  const locateFile = (f) => new URL(f, base).href;
  const wanted = Math.max(1, Math.floor(threads ?? Math.min(navigator.hardwareConcurrency || 1, 4)));
  if (wanted > 1 && globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function' && typeof Worker === 'function') {
    try {
      const threaded = await startThreaded(locateFile('rwkv-mt.web.mjs'), locateFile, wanted);
      coreThreads = wanted;
      return threaded;
    } catch (err) {
      console.warn(`rwkv-web: the threaded core did not start (${err?.message ?? err}); running on one thread`);
    }
  }
  coreThreads = 1;
  const factory = (await import(locateFile('rwkv.web.mjs'))).default;
  return factory({ locateFile });
}

// Starts the pthread build. Its pool's workers (classic workers that import the glue
// again: mainScriptUrlOrBlob) are watched while it starts: one that fails to load would
// leave the factory waiting forever, so it fails the start instead, and all are ended.
async function startThreaded(url, locateFile, pthreadPoolSize) {
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
    const ready = factory({ locateFile, mainScriptUrlOrBlob: url, pthreadPoolSize });
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

let core = null;
let coreThreads = 1;         // threads asked of the core when it was started
const models = new Map();    // id -> {model, tokenizer, config}
const sessions = new Map();  // id -> {modelId, state, busy}
let nextId = 1;
const PREFILL_SLICE = 256;
const MAX_HEAP_BYTES = 2 ** 32 - 2 ** 24;  // a wasm32 heap, less room for the runtime  // tokens fed between two looks at the abort flag

// The core reports its failures as Error{name: 'RwkvError' | 'OutOfMemory'}: give them a type.
function typed(err, Kind = InvalidArgumentError) {
  if (err instanceof RwkvError) return err;
  if (err?.name === 'OutOfMemory' || err instanceof RangeError || /out of memory|Cannot enlarge memory|allocation failed/i.test(err?.message ?? ''))
    return new OutOfMemoryError(`out of memory: ${err.message}. The model and its states must fit in the 4 GB a wasm32 module can address; try a smaller model or fewer sessions.`);
  if (err?.name === 'RwkvError') return new Kind(err.message);
  return err;
}

const yieldToEvents = isNode
  ? () => new Promise((r) => setImmediate(r))
  : (() => {  // a MessageChannel round trip: unlike setTimeout, never clamped to 4 ms
      const ch = new MessageChannel();
      const queue = [];
      ch.port1.onmessage = () => queue.shift()?.();
      return () => new Promise((r) => { queue.push(r); ch.port2.postMessage(0); });
    })();

function getModel(id) {
  const m = models.get(id);
  if (!m) throw new InvalidArgumentError(`no model with id ${id} (it was unloaded?)`);
  return m;
}
function getSession(id, { idle = true } = {}) {
  const s = sessions.get(id);
  if (!s) throw new InvalidArgumentError(`no session with id ${id} (it was deleted?)`);
  if (idle && s.busy) throw new BusyError(`session ${id} is generating; wait for it or abort it first`);
  return s;
}
function tokenizerOf(m) {
  if (!m.tokenizer) throw new VocabError('this model has no vocabulary: pass `vocab` to load() (models with 256 tokens are byte-level and need none)');
  return m.tokenizer;
}
function checkTokens(tokens, V) {
  const arr = Int32Array.from(tokens ?? [], (t) => {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new InvalidArgumentError(`token id ${t} is out of range for a vocabulary of ${V}`);
    return t;
  });
  return arr;
}

const handlers = {
  async init({ wasmBase, threads }) {
    core ??= await instantiate(wasmBase, threads);
    return { simd: core.simd() };
  },

  async loadModel({ source, vocab, options = {} }, ctx) {
    let quant;
    try {
      quant = quantCode(options.quant);
    } catch (err) {
      throw new InvalidArgumentError(err.message);
    }
    core ??= await instantiate(options.wasmBase, options.threads);
    const opened = await openSource(source, options, ctx.signal);
    const mb = (n) => `${(n / 2 ** 20).toFixed(0)} MB`;
    const tooBig = () => new OutOfMemoryError(`out of memory: a ${mb(opened.size)} model does not fit in the wasm heap (a wasm32 module addresses at most 4 GB, weights and states together); use a smaller model`);
    // _malloc takes a 32-bit size: larger requests would wrap around, so refuse them here.
    const ptr = opened.size < MAX_HEAP_BYTES ? core._malloc(opened.size) : 0;
    if (!ptr) {
      opened.cancel?.();
      throw tooBig();
    }
    let done = 0, lastEmit = 0;
    const started = Date.now();
    try {
      for await (const chunk of opened.chunks) {
        if (done + chunk.length > opened.size) throw new ModelFormatError(`the source delivered more than the announced ${opened.size} bytes`);
        core.HEAPU8.set(chunk, ptr + done);
        done += chunk.length;
        const now = Date.now();
        if (now - lastEmit > 100 || done === opened.size) {
          lastEmit = now;
          ctx.emit('progress', { loaded: done, total: opened.size, elapsedMs: now - started, cached: !!opened.cached });
        }
      }
      if (done !== opened.size) throw new ModelFormatError(`the model file ended after ${done} of ${opened.size} bytes (truncated download?)`);
    } catch (err) {
      core._free(ptr);
      opened.cancel?.();
      throw err;
    }
    let model;
    try {
      model = core.Model.fromHeap(ptr, opened.size, quant);  // owns ptr from here, even on error
    } catch (err) {
      throw typed(err, ModelFormatError);
    }
    const config = model.config();
    const threads = model.setThreads(coreThreads);  // clamped to what the build can run
    const runtime = { threads, simd: core.simd() };
    let tokenizer = null;
    try {
      // A vocabulary passed to load() wins over one embedded in a .rwkv file; a model with
      // neither is byte-level when it has 256 tokens, else it has no tokenizer.
      tokenizer = new core.Tokenizer();  // byte-level
      if (vocab) checked(tokenizer.loadVocab(await readSource(vocab, options, ctx.signal)));
      else if (!model.loadEmbeddedVocab(tokenizer) && config.vocabSize !== 256) {
        tokenizer.delete();
        tokenizer = null;
      }
    } catch (err) {
      tokenizer?.delete();
      model.delete();
      throw typed(err, VocabError);
    }
    if (tokenizer && tokenizer.vocabSize() > config.vocabSize) {
      const n = tokenizer.vocabSize();
      tokenizer.delete();
      model.delete();
      throw new VocabError(`the vocabulary has ${n} tokens but the model only ${config.vocabSize}: wrong vocabulary file?`);
    }
    const id = nextId++;
    models.set(id, { model, tokenizer, config });
    return { modelId: id, config, runtime, name: opened.name, hasVocab: !!tokenizer };
  },

  unloadModel({ modelId }) {
    const m = getModel(modelId);
    for (const [sid, s] of sessions) if (s.modelId === modelId) handlers.deleteSession({ sessionId: sid });
    m.tokenizer?.delete();
    m.model.delete();
    models.delete(modelId);
  },

  createSession({ modelId }) {
    const m = getModel(modelId);
    let state;
    try {
      state = m.model.newState();
    } catch (err) {
      throw typed(err);
    }
    const id = nextId++;
    sessions.set(id, { modelId, state, busy: false, initial: null });
    return { sessionId: id };
  },

  deleteSession({ sessionId }) {
    const s = sessions.get(sessionId);
    if (!s) return;
    s.abort?.abort();
    s.state.delete();
    sessions.delete(sessionId);
  },

  resetSession({ sessionId }) {
    const s = getSession(sessionId);
    if (s.initial) s.state.data().set(s.initial);
    else s.state.reset();
  },

  // A state-tuning file becomes the session's state, and the state reset() returns to.
  async loadStateFile({ sessionId, source, options = {} }, ctx) {
    const s = getSession(sessionId);
    const bytes = await readSource(source, options, ctx.signal);
    try {
      checked(getModel(s.modelId).model.loadStateFile(s.state, bytes));
    } catch (err) {
      throw typed(err, ModelFormatError);
    }
    s.initial = s.state.data().slice();
  },

  forkSession({ sessionId }) {
    const s = getSession(sessionId);
    const { sessionId: id } = handlers.createSession({ modelId: s.modelId });
    const copy = sessions.get(id);
    copy.state.copyFrom(s.state);
    copy.initial = s.initial;
    return { sessionId: id };
  },

  saveState({ sessionId }, ctx) {
    const s = getSession(sessionId);
    const c = getModel(s.modelId).config;
    const data = s.state.data();
    const out = new ArrayBuffer(STATE_HEADER_BYTES + data.byteLength);
    const head = new DataView(out);
    STATE_MAGIC.split('').forEach((ch, i) => head.setUint8(i, ch.charCodeAt(0)));
    [STATE_VERSION, c.nLayer, c.nEmbd, c.nHead, c.headSize, data.length].forEach((v, i) => head.setUint32(8 + 4 * i, v, true));
    new Float32Array(out, STATE_HEADER_BYTES).set(data);
    ctx.transfer([out]);
    return out;
  },

  restoreState({ sessionId, bytes }) {
    const s = getSession(sessionId);
    const c = getModel(s.modelId).config;
    const buf = bytes instanceof ArrayBuffer ? bytes : bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    if (buf.byteLength < STATE_HEADER_BYTES) throw new InvalidArgumentError(`a saved state has at least ${STATE_HEADER_BYTES} bytes; got ${buf.byteLength}`);
    const head = new DataView(buf);
    const magic = String.fromCharCode(...new Uint8Array(buf, 0, 8));
    if (magic !== STATE_MAGIC) throw new InvalidArgumentError('these bytes are not a saved rwkv-web state');
    const [version, nLayer, nEmbd, nHead, headSize, count] = [0, 1, 2, 3, 4, 5].map((i) => head.getUint32(8 + 4 * i, true));
    if (version !== STATE_VERSION) throw new InvalidArgumentError(`saved state version ${version} is not supported (expected ${STATE_VERSION})`);
    if (nLayer !== c.nLayer || nEmbd !== c.nEmbd || nHead !== c.nHead || headSize !== c.headSize)
      throw new InvalidArgumentError(`the saved state is for a model with ${nLayer} layers, n_embd ${nEmbd}, ${nHead} heads of ${headSize}; this model has ${c.nLayer}, ${c.nEmbd}, ${c.nHead} of ${c.headSize}`);
    if (count !== c.stateSize || buf.byteLength !== STATE_HEADER_BYTES + 4 * count)
      throw new InvalidArgumentError('the saved state is truncated or has extra bytes');
    s.state.data().set(new Float32Array(buf, STATE_HEADER_BYTES, count));
  },

  tokenize({ modelId, text }) {
    try {
      return Array.from(checked(tokenizerOf(getModel(modelId)).encode(text)));
    } catch (err) {
      throw typed(err);
    }
  },

  detokenize({ modelId, tokens }) {
    const m = getModel(modelId);
    try {
      return checked(tokenizerOf(m).decode(checkTokens(tokens, m.config.vocabSize)));
    } catch (err) {
      throw typed(err);
    }
  },

  // Long inputs go in slices with a pause between them, where an abort restores the
  // state as it was before the call.
  async prefill({ sessionId, tokens }, ctx) {
    const s = getSession(sessionId);
    const m = getModel(s.modelId);
    const ids = checkTokens(tokens, m.config.vocabSize);
    if (ids.length === 0) throw new InvalidArgumentError('prefill needs at least one token');
    const before = ids.length > PREFILL_SLICE ? s.state.data().slice() : null;
    s.busy = true;
    try {
      let logits;
      for (let i = 0; i < ids.length; i += PREFILL_SLICE) {
        if (ctx.signal.aborted) {
          s.state.data().set(before);
          throw new AbortError('prefill was aborted; the session state is as it was before');
        }
        logits = checked(m.model.prefill(s.state, ids.subarray(i, i + PREFILL_SLICE)));
        if (i + PREFILL_SLICE < ids.length) await yieldToEvents();
      }
      const out = logits.slice();
      ctx.transfer([out.buffer]);
      return out;
    } catch (err) {
      throw typed(err);
    } finally {
      s.busy = false;
    }
  },

  step({ sessionId, token }, ctx) {
    const s = getSession(sessionId);
    const m = getModel(s.modelId);
    try {
      const logits = m.model.step(s.state, checkTokens([token], m.config.vocabSize)[0]).slice();
      ctx.transfer([logits.buffer]);
      return logits;
    } catch (err) {
      throw typed(err);
    }
  },

  sample({ logits, options = {} }) {
    try {
      return checked(core.sampleOnce(Float32Array.from(logits), options));
    } catch (err) {
      throw typed(err);
    }
  },

  async generate({ sessionId, prompt, options = {} }, ctx) {
    const s = getSession(sessionId);
    const m = getModel(s.modelId);
    const tok = tokenizerOf(m);
    let gen;
    const started = performance.now();
    s.busy = true;
    try {
      const promptIds = typeof prompt === 'string' ? checked(tok.encode(prompt)) : checkTokens(prompt, m.config.vocabSize);
      gen = new core.Generator();
      try {
        checked(gen.start(m.model, s.state, tok, promptIds, options));
      } catch (err) {
        throw typed(err);
      }
      // Aborting while the prompt is fed puts the state back as it was.
      const before = s.state.data().slice();
      let prefillMs = 0, tokens = 0, reason = null;
      const pieces = [];
      for (let prefilling = true; ;) {
        if (ctx.signal.aborted) {
          if (prefilling) s.state.data().set(before);
          reason = 'aborted';
          break;
        }
        let r;
        try {
          r = gen.next();
        } catch (err) {
          throw typed(err);
        }
        if (prefilling && r.token >= 0) {
          prefilling = false;
          prefillMs = performance.now() - started;
        }
        if (r.token >= 0) tokens++;
        if (r.text) {
          pieces.push(r.text);
          ctx.emit('text', { text: r.text, token: r.token });
        }
        if (r.done) { reason = r.reason; break; }
        await yieldToEvents();
      }
      const rest = gen.finish();  // held-back text (a partial stop-string match or UTF-8 tail)
      if (rest && reason !== 'stop') {
        pieces.push(rest);
        ctx.emit('text', { text: rest, token: -1 });
      }
      const totalMs = performance.now() - started;
      const decodeMs = totalMs - prefillMs;
      return {
        text: pieces.join(''), promptTokens: promptIds.length, tokens, stopReason: reason,
        prefillMs, decodeMs, totalMs, tokensPerSecond: tokens > 1 ? (tokens - 1) / (decodeMs / 1000) : 0,
      };
    } finally {
      gen?.delete();
      s.busy = false;
    }
  },

  // Test hook: ends the worker abruptly, as a crash would (the library must recover).
  crash() {
    if (isNode) process.exit(70);
    setTimeout(() => { throw new Error('worker crash requested'); });
    self.close();
  },

  memory() {
    return { wasmHeapBytes: core ? core.HEAPU8.length : 0, heapUsedBytes: core ? core.heapUsed() : 0,
      models: models.size, sessions: sessions.size };
  },
};

serve(await selfEndpoint(), handlers);
