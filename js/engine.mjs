// The engine: the wasm core and everything that runs next to it, the same in a Web
// Worker, a Node worker thread or (load(..., {worker: false})) the calling thread. It owns
// the core instance, the loaded models, vocabularies and sessions, and answers the
// requests of the protocol (protocol.mjs) by verb: createEngine() returns the handlers
// that serve() dispatches to. Host differences (instantiation, threads) live in host.mjs.
//
// Every failure leaves as a typed error (errors.mjs); heap memory taken for a request is
// given back when it fails. Long loops (prefill slices, generated tokens) yield between
// steps so that abort requests get in.
import { instantiateCore, crashWorker, isNode, yieldToEvents } from './host.mjs';
import { openSource, readSource } from './sources.mjs';
import { isQuotaError, openModelCache } from './model-cache.mjs';
import { AbortError, BusyError, InvalidArgumentError, ModelFormatError, OutOfMemoryError, VocabError, RwkvError } from './errors.mjs';
import { decodeState, encodeState } from './state-format.mjs';
import { quantType } from './options.mjs';

/** The largest model a wasm32 heap can take: 4 GB less room for the runtime. */
const MAX_HEAP_BYTES = 2 ** 32 - 2 ** 24;

/**
 * The result of a core call that reports failures as an error record ({rwkvError: name,
 * message}, see src/bindings/bindings.cpp): the value, or a thrown Error of that name.
 */
function checked(result) {
  if (result !== null && typeof result === 'object' && typeof result.rwkvError === 'string') {
    const err = new Error(result.message);
    err.name = result.rwkvError;
    throw err;
  }
  return result;
}

// The core reports its failures as Error{name: 'RwkvError' | 'OutOfMemory'}: give them a type.
function typed(err, Kind = InvalidArgumentError) {
  if (err instanceof RwkvError) return err;
  if (err?.name === 'OutOfMemory' || err instanceof RangeError || /out of memory|Cannot enlarge memory|allocation failed/i.test(err?.message ?? ''))
    return new OutOfMemoryError(`out of memory: ${err.message}. The model and its states must fit in the 4 GB a wasm32 module can address; try a smaller model or fewer sessions.`);
  if (err?.name === 'RwkvError') return new Kind(err.message);
  return err;
}

function checkTokens(tokens, V) {
  return Int32Array.from(tokens ?? [], (t) => {
    if (!Number.isInteger(t) || t < 0 || t >= V) throw new InvalidArgumentError(`token id ${t} is out of range for a vocabulary of ${V}`);
    return t;
  });
}

/** A fresh engine: its handlers, by verb. */
export function createEngine() {
  let core = null;
  let coreThreads = 1;              // threads the core was started with
  const models = new Map();         // id -> {model, tokenizer, config}
  const vocabularies = new Map();   // id -> Tokenizer (vocabularies loaded without a model)
  const sessions = new Map();       // id -> {modelId, state, busy, closing, initial}
  let nextId = 1;

  async function ensureCore(options = {}) {
    if (!core) ({ core, threads: coreThreads } = await instantiateCore(options));
    return core;
  }

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
  // Marks a session busy for a long request; the returned function ends it (freeing a
  // session deleted meanwhile). stopped() is true once the request should end early.
  function occupy(s, ctx) {
    s.busy = true;
    return {
      stopped: () => ctx.signal.aborted || s.closing === true,
      release: () => {
        s.busy = false;
        if (s.closing) s.state.delete();
      },
    };
  }

  // The tokenizer of a request: a model's ({modelId}) or a vocabulary's ({vocabId}).
  function tokenizerOf({ modelId, vocabId }) {
    if (vocabId !== undefined) {
      const t = vocabularies.get(vocabId);
      if (!t) throw new InvalidArgumentError(`no vocabulary with id ${vocabId} (it was disposed?)`);
      return { tokenizer: t, V: t.vocabSize() };
    }
    const m = getModel(modelId);
    if (!m.tokenizer) throw new VocabError('this model has no vocabulary: pass `vocab` to load() (models with 256 tokens are byte-level and need none)');
    return { tokenizer: m.tokenizer, V: m.config.vocabSize };
  }

  // A tokenizer from vocabulary bytes (the World vocabulary file); byte-level for none.
  function newTokenizer(bytes) {
    const t = new core.Tokenizer();
    try {
      if (bytes) checked(t.loadVocab(bytes));
      return t;
    } catch (err) {
      t.delete();
      throw typed(err, VocabError);
    }
  }

  // Writes the .rwkv image of a loaded model (weights as held, from the heap) to the model
  // cache. A failure (storage full, no permission) is reported as a 'warning' event: the
  // model runs all the same, uncached.
  async function keepOnDevice(modelCache, url, quant, model, vocabBytes, ctx) {
    let writer = null;
    try {
      const image = checked(model.fileParts(vocabBytes ?? new Uint8Array(0), JSON.stringify({ source: url, quant: quant || 'as in file' })));
      writer = await modelCache.writer(url, quant);
      for (let i = 0; i < image.parts.length; i += 2) {
        const at = image.parts[i], n = image.parts[i + 1];
        for (let done = 0; done < n; done += 64 << 20) await writer.write(core.HEAPU8.subarray(at + done, at + Math.min(n, done + (64 << 20))));
      }
      await writer.commit();
      ctx.emit('cached', { bytes: image.size });
    } catch (err) {
      await writer?.abort().catch(() => {});
      const why = isQuotaError(err) ? 'the storage is full (its quota is used up)' : err.message;
      ctx.emit('warning', { message: `the model is not kept on this device: ${why}. It runs, but the next load downloads it again.` });
    }
  }

  const handlers = {
    async init(options) {
      await ensureCore(options);
      return { simd: core.simd(), threads: coreThreads };
    },

    // The file's bytes stream into one heap block the core then takes over; a source that
    // delivers more or fewer bytes than it announced, or a core that refuses the file,
    // leaves nothing allocated.
    //
    // A model from a URL is kept on the device as it was loaded (converted, vocabulary
    // included: model-cache.mjs) and read from there the next time.
    async loadModel({ source, vocab, options = {} }, ctx) {
      let quant = quantType(options.quant);
      await ensureCore(options);
      const modelCache = source.url && /^https?:/.test(source.url) ? await openModelCache(options) : null;
      const cachedCopy = await modelCache?.lookup(source.url, quant);
      if (cachedCopy) quant = '';  // the copy holds the weights as they were converted
      // The raw download is not cached when the converted model will be.
      const opened = await openSource(cachedCopy ?? source, modelCache ? { ...options, cache: false } : options, ctx.signal);
      if (cachedCopy) Object.assign(opened, { cached: true, name: source.url.split('?')[0].split('/').pop() });
      const mb = (n) => `${(n / 2 ** 20).toFixed(0)} MB`;
      // _malloc takes a 32-bit size: larger requests would wrap around, so refuse them here.
      const ptr = opened.size < MAX_HEAP_BYTES ? core._malloc(opened.size) : 0;
      if (!ptr) {
        opened.cancel?.();
        throw new OutOfMemoryError(`out of memory: a ${mb(opened.size)} model does not fit in the wasm heap (a wasm32 module addresses at most 4 GB, weights and states together); use a smaller model`);
      }
      let done = 0, lastEmit = 0;
      const started = Date.now();
      try {
        for await (const chunk of opened.chunks) {
          if (done + chunk.length > opened.size) throw new ModelFormatError(`the source delivered more than the announced ${opened.size} bytes`);
          core.HEAPU8.set(chunk, ptr + done);  // HEAPU8 is read anew: the heap may have grown
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
        // The weight type by its number in the core's table; -1 keeps the file's types.
        const code = quant ? core.dtypeCodes()[quant] : -1;
        model = core.Model.fromHeap(ptr, opened.size, code);  // owns ptr from here, even on error
      } catch (err) {
        throw typed(err, ModelFormatError);
      }
      const config = model.config();
      const threads = model.setThreads(coreThreads);  // clamped to what the build can run
      // A vocabulary passed to load() wins over one embedded in a .rwkv file (but for the
      // copy kept on the device, which embeds the one it was loaded with); a model with
      // neither is byte-level when it has 256 tokens, else it has no tokenizer.
      if (cachedCopy) vocab = undefined;
      let tokenizer = null;
      try {
        tokenizer = newTokenizer(vocab ? await readSource(vocab, options, ctx.signal) : null);
        if (!vocab && !model.loadEmbeddedVocab(tokenizer) && config.vocabSize !== 256) {
          tokenizer.delete();
          tokenizer = null;
        }
        if (tokenizer && tokenizer.vocabSize() > config.vocabSize)
          throw new VocabError(`the vocabulary has ${tokenizer.vocabSize()} tokens but the model only ${config.vocabSize}: wrong vocabulary file?`);
      } catch (err) {
        tokenizer?.delete();
        model.delete();
        throw typed(err, VocabError);
      }
      const id = nextId++;
      models.set(id, { model, tokenizer, config });
      if (modelCache && !cachedCopy) await keepOnDevice(modelCache, source.url, quantType(options.quant), model, vocab ? await readSource(vocab, options, ctx.signal) : null, ctx);
      return { modelId: id, config, runtime: { threads, simd: core.simd() }, name: opened.name, hasVocab: !!tokenizer };
    },

    unloadModel({ modelId }) {
      const m = getModel(modelId);
      for (const [sid, s] of sessions) if (s.modelId === modelId) handlers.deleteSession({ sessionId: sid });
      m.tokenizer?.delete();
      m.model.delete();
      models.delete(modelId);
    },

    // A vocabulary on its own (tokenize and detokenize without a model): one thread is
    // enough for the core of an engine that has no model yet.
    async loadVocab({ source, options = {} }, ctx) {
      await ensureCore({ ...options, threads: options.threads ?? 1 });
      const t = newTokenizer(await readSource(source, options, ctx.signal));
      const id = nextId++;
      vocabularies.set(id, t);
      return { vocabId: id, vocabSize: t.vocabSize() };
    },

    disposeVocab({ vocabId }) {
      vocabularies.get(vocabId)?.delete();
      vocabularies.delete(vocabId);
    },

    // The loaded model as a .rwkv file (docs/format.md) at `path` (Node): its weights as
    // held, the vocabulary `vocab` (bytes; default: the model's embedded one) and metadata.
    // Written from the heap part by part to path.tmp, then renamed.
    async saveModel({ modelId, path, vocab, metadata = {} }) {
      if (!isNode) throw new InvalidArgumentError('saveModel writes files: Node only');
      const m = getModel(modelId);
      const { open, rename, rm } = await import('node:fs/promises');
      let image;
      try {
        image = checked(m.model.fileParts(vocab ?? new Uint8Array(0), JSON.stringify(metadata)));
      } catch (err) {
        throw typed(err, VocabError);
      }
      const { size, parts, vocabBytes } = image;
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        for (let i = 0; i < parts.length; i += 2) {
          const at = parts[i], n = parts[i + 1];
          for (let done = 0; done < n;) {
            const { bytesWritten } = await fh.write(core.HEAPU8.subarray(at + done, at + Math.min(n, done + (64 << 20))));
            done += bytesWritten;
          }
        }
        await fh.close();
        await rename(tmp, path);
      } catch (err) {
        await fh.close().catch(() => {});
        await rm(tmp, { force: true });
        throw err;
      }
      return { bytes: size, vocabBytes, dtype: m.config.dtype };
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

    // A busy session stops at its next pause and is freed there.
    deleteSession({ sessionId }) {
      const s = sessions.get(sessionId);
      if (!s) return;
      sessions.delete(sessionId);
      if (s.busy) s.closing = true;
      else s.state.delete();
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
      const out = encodeState(getModel(s.modelId).config, s.state.data());
      ctx.transfer([out]);
      return out;
    },

    restoreState({ sessionId, bytes }) {
      const s = getSession(sessionId);
      let floats;
      try {
        floats = decodeState(getModel(s.modelId).config, bytes);
      } catch (err) {
        throw new InvalidArgumentError(err.message);
      }
      s.state.data().set(floats);
    },

    tokenize({ modelId, vocabId, text }) {
      const { tokenizer } = tokenizerOf({ modelId, vocabId });
      try {
        return Array.from(checked(tokenizer.encode(text)));
      } catch (err) {
        throw typed(err);
      }
    },

    detokenize({ modelId, vocabId, tokens }) {
      const { tokenizer, V } = tokenizerOf({ modelId, vocabId });
      try {
        return checked(tokenizer.decode(checkTokens(tokens, V)));
      } catch (err) {
        throw typed(err);
      }
    },

    // Long inputs go in slices of the core's prefill slice with a pause between them, where
    // an abort restores the state as it was before the call. Resolves to the last token's
    // logits (V), or with `all`, the logits after every token (T, V).
    async prefill({ sessionId, tokens, all = false }, ctx) {
      const s = getSession(sessionId);
      const m = getModel(s.modelId);
      const ids = checkTokens(tokens, m.config.vocabSize);
      if (ids.length === 0) throw new InvalidArgumentError('prefill needs at least one token');
      const slice = core.prefillSlice();
      const V = m.config.vocabSize;
      const before = ids.length > slice ? s.state.data().slice() : null;
      const rows = all ? new Float32Array(ids.length * V) : null;
      const run = occupy(s, ctx);
      try {
        let logits;
        for (let i = 0; i < ids.length; i += slice) {
          if (run.stopped()) {
            if (before) s.state.data().set(before);
            throw new AbortError('prefill was aborted; the session state is as it was before');
          }
          const part = ids.subarray(i, i + slice);
          if (all) rows.set(checked(m.model.prefillAll(s.state, part)), i * V);
          else logits = checked(m.model.prefill(s.state, part));
          if (i + slice < ids.length) await yieldToEvents();
        }
        const out = all ? rows : logits.slice();
        ctx.transfer([out.buffer]);
        return out;
      } catch (err) {
        throw typed(err);
      } finally {
        run.release();
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

    async sample({ logits, options = {} }) {
      await ensureCore();
      try {
        return checked(core.sampleOnce(Float32Array.from(logits), options));
      } catch (err) {
        throw typed(err);
      }
    },

    // The core's generation loop, one token per turn of the event loop; every piece of
    // text goes out as a 'text' event as soon as it is final.
    async generate({ sessionId, prompt, options = {} }, ctx) {
      const s = getSession(sessionId);
      const m = getModel(s.modelId);
      const { tokenizer } = tokenizerOf({ modelId: s.modelId });
      let gen;
      const started = performance.now();
      const run = occupy(s, ctx);
      try {
        const promptIds = typeof prompt === 'string' ? checked(tokenizer.encode(prompt)) : checkTokens(prompt, m.config.vocabSize);
        gen = new core.Generator();
        try {
          checked(gen.start(m.model, s.state, tokenizer, promptIds, options));
        } catch (err) {
          throw typed(err);
        }
        // Aborting while the prompt is fed puts the state back as it was.
        const before = s.state.data().slice();
        let prefillMs = 0, reason = null;
        const pieces = [], ids = [];
        for (let prefilling = true; ;) {
          if (run.stopped()) {
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
          if (r.token >= 0) ids.push(r.token);
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
          text: pieces.join(''), promptTokens: promptIds.length, tokens: ids.length, tokenIds: ids, stopReason: reason,
          prefillMs, decodeMs, totalMs, tokensPerSecond: ids.length > 1 ? (ids.length - 1) / (decodeMs / 1000) : 0,
        };
      } finally {
        gen?.delete();
        run.release();
      }
    },

    crash() {
      crashWorker();
    },

    // Frees everything and ends the core's threads: the end of an engine that runs in the
    // calling thread (a worker's engine ends with its worker).
    shutdown() {
      for (const id of [...models.keys()]) handlers.unloadModel({ modelId: id });
      for (const id of [...vocabularies.keys()]) handlers.disposeVocab({ vocabId: id });
      core?.PThread?.terminateAllThreads();
      core = null;
    },

    memory() {
      return { wasmHeapBytes: core ? core.HEAPU8.length : 0, heapUsedBytes: core ? core.heapUsed() : 0,
        models: models.size, sessions: sessions.size };
    },
  };
  return handlers;
}
