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
import { DEFAULT_MEMORY_BUDGET, quantType } from './options.mjs';
import { traceRecordSize } from './trace.mjs';

/** The largest model a wasm32 heap can take: 4 GB less room for the runtime. */
const MAX_HEAP_BYTES = 2 ** 32 - 2 ** 24;

const mb = (n) => `${(n / 2 ** 20).toFixed(0)} MB`;

/**
 * The weight type to load a model as, from the loader's plan ({bytes: {stored, F32, BF16,
 * Q8_0, Q4_0}}, 0 where the file cannot be held so) and the `quant` asked for ('' or
 * 'auto': as stored when it fits the budget, else BF16, Q8_0, Q4_0, the first that fits).
 * '' keeps the file's types. OutOfMemoryError, giving each choice's size, when nothing fits.
 */
export function chooseQuant(plan, quant, budget = DEFAULT_MEMORY_BUDGET) {
  const b = plan.bytes;
  const sizes = `${mb(b.stored)} as stored, ${mb(b.BF16)} as bf16, ${mb(b.Q8_0)} as int8, ${mb(b.Q4_0)} as q4`;
  if (quant && quant !== 'auto') {
    if (b[quant] > MAX_HEAP_BYTES)
      throw new OutOfMemoryError(`out of memory: the model needs ${mb(b[quant])} as ${quant}, more than a wasm32 heap holds (the model takes ${sizes}); choose a smaller quant`);
    return quant;
  }
  const choices = [['', b.stored], ['BF16', b.BF16], ['Q8_0', b.Q8_0], ['Q4_0', b.Q4_0]];
  const fit = choices.find(([, n]) => n > 0 && n <= budget);
  if (fit) return fit[0];
  if (choices.every(([, n]) => n === 0)) return '';  // the loader says why when it starts
  throw new OutOfMemoryError(`out of memory: the model takes ${sizes}: none fits the memory budget of ${mb(budget)} (memoryBudget)`);
}

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

/**
 * Streams an opened source into a core Loader: each piece written into the heap at the
 * loader's window and committed; onPlan(plan) once the file's header is read (it must
 * start the loader). A source with readInto (a Node file, the model cache's file in a
 * worker) reads straight into the window; other sources' chunks are copied there. Emits
 * 'progress' events. Throws on a source that delivers more or fewer bytes than announced.
 */
async function streamInto(core, loader, opened, ctx, onPlan, afterCommit = null) {
  let done = 0, lastEmit = 0;
  const started = Date.now();
  // After each commit, at once: the plan may refuse the model while the rest is still to come.
  const ready = () => {
    if (loader.planned() && !loader.started()) onPlan(loader.plan());
  };
  // Progress now and then, and a turn of the event loop there: pieces already buffered
  // arrive without one, and an abort must get in.
  const progress = async () => {
    const now = Date.now();
    if (now - lastEmit > 100 || done === opened.size) {
      lastEmit = now;
      ctx.emit('progress', { loaded: done, total: opened.size, elapsedMs: now - started, cached: !!opened.cached });
      await yieldToEvents();
      if (ctx.signal.aborted) throw new AbortError('loading the model was aborted');
    }
  };
  const windowOf = (n) => {
    const ptr = loader.window();  // first: windowSize() is the size of the window it gave
    const size = Math.min(n, loader.windowSize());
    if (size === 0) throw new ModelFormatError('the model file goes on after its end');
    return { ptr, size };
  };
  if (opened.readInto) {
    while (done < opened.size) {
      const { ptr, size } = windowOf(opened.size - done);
      // HEAPU8 is read anew (the heap may have grown). The window is the loader's own;
      // a heap that grows while the read is pending (another request of this engine)
      // grows in place on 64-bit hosts, so the bytes land where the loader looks.
      const n = await opened.readInto(core.HEAPU8.subarray(ptr, ptr + size));
      loader.commit(n);
      done += n;
      ready();
      if (afterCommit) await afterCommit();
      await progress();
    }
  } else {
    for await (const chunk of opened.chunks) {
      if (done + chunk.length > opened.size) throw new ModelFormatError(`the source delivered more than the announced ${opened.size} bytes`);
      for (let at = 0; at < chunk.length;) {
        const { ptr, size } = windowOf(chunk.length - at);
        core.HEAPU8.set(at === 0 && size === chunk.length ? chunk : chunk.subarray(at, at + size), ptr);
        loader.commit(size);
        at += size;
        ready();
        if (afterCommit) await afterCommit();
      }
      done += chunk.length;
      await progress();
    }
  }
  if (done !== opened.size) throw new ModelFormatError(`the model file ended after ${done} of ${opened.size} bytes (truncated download?)`);
  ready();
  if (afterCommit) await afterCommit();
}

/** A fresh engine: its handlers, by verb. */
export function createEngine() {
  let core = null;
  let coreThreads = 1;              // threads the core was started with
  const models = new Map();         // id -> {model, tokenizer, config}
  const vocabularies = new Map();   // id -> Tokenizer (vocabularies loaded without a model)
  const sessions = new Map();       // id -> {modelId, state, busy, closing, initial}
  let nextId = 1;
  let lastLoad = null;              // {peakBytes, fileBytes} of the last model loaded

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

    // The file streams through the core's loader: each chunk is written into the heap where
    // the loader asks (its input buffer) and read there, every tensor converted into its
    // place in the model; the file is never whole in memory. After the file's header the
    // loader's plan gives the model's size for each quant, and 'auto' picks the one that
    // fits (or the load fails there, before the rest is downloaded). A source that delivers
    // more or fewer bytes than it announced, an abort, or a file the core refuses leaves
    // nothing allocated.
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
      const loader = new core.Loader(false);
      let model, chosen = quant;
      try {
        const budget = options.memoryBudget ?? DEFAULT_MEMORY_BUDGET;
        await streamInto(core, loader, opened, ctx, (plan) => {
          chosen = chooseQuant(plan, quant, budget);
          // The weight type by its number in the core's table; -1 keeps the file's types.
          loader.start(chosen ? core.dtypeCodes()[chosen] : -1);
        });
        model = loader.finish();
        lastLoad = { peakBytes: loader.peakBytes(), fileBytes: opened.size };
      } catch (err) {
        opened.cancel?.();
        throw typed(err, ModelFormatError);
      } finally {
        loader.delete();
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
      return { modelId: id, config, runtime: { threads, simd: core.simd() }, name: opened.name, hasVocab: !!tokenizer, quant: chosen || 'as stored' };
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

    // A model file converted to a .rwkv file at `path` (Node) as it streams in, without
    // loading the model: each tensor is written at its place in path.tmp as soon as it is
    // converted, then freed (memory: the largest tensor and the loader's buffers); renamed
    // to `path` at the end. `quant` as for loadModel (the budget decides 'auto'); `vocab`
    // (bytes) replaces an embedded vocabulary; `metadata` (strings) goes into the header.
    async convertModel({ source, path, vocab, metadata = {}, options = {} }, ctx) {
      if (!isNode) throw new InvalidArgumentError('convertModel writes files: Node only');
      const quant = quantType(options.quant);
      await ensureCore({ ...options, threads: 1 });
      const { open, rename, rm } = await import('node:fs/promises');
      const opened = await openSource(source, options, ctx.signal);
      const vocabBytes = vocab ? await readSource(vocab, options, ctx.signal) : new Uint8Array(0);
      const loader = new core.Loader(true);
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w');
      const write = async (from, n, position) => {
        for (let done = 0; done < n;) {
          const { bytesWritten } = await fh.write(core.HEAPU8.subarray(from + done, from + Math.min(n, done + (64 << 20))), 0, undefined, position + done);
          done += bytesWritten;
        }
      };
      let header = null, chosen = quant, size = 0, dtype = '', keptVocab = vocabBytes.length;
      try {
        await streamInto(core, loader, opened, ctx, (plan) => {
          chosen = chooseQuant(plan, quant, options.memoryBudget ?? DEFAULT_MEMORY_BUDGET);
          const r = checked(loader.startFile(chosen ? core.dtypeCodes()[chosen] : -1, vocabBytes, JSON.stringify(metadata)));
          header = r.header.slice();
          keptVocab ||= plan.vocabBytes;
          ({ size, dtype } = r);
        }, async () => {
          if (header) {
            await fh.write(header, 0, header.length, 0);
            header = null;
          }
          for (let part = loader.ready(); part; part = loader.ready()) {
            await write(part[1], part[2], part[0]);
            loader.pop();
          }
        });
        loader.finish();
        const peakBytes = loader.peakBytes();
        await fh.truncate(size);
        await fh.close();
        await rename(tmp, path);
        return { bytes: size, peakBytes, dtype, vocabBytes: keptVocab };
      } catch (err) {
        opened.cancel?.();
        await fh.close().catch(() => {});
        await rm(tmp, { force: true });
        throw typed(err, ModelFormatError);
      } finally {
        loader.delete();
      }
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
    // text goes out as a 'text' event as soon as it is final. With options.trace, every
    // step goes out (text or not) with the trace records of the tokens it fed.
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
        let promptFed = 0;  // prompt tokens whose trace records went out
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
          if (r.text) pieces.push(r.text);
          if (options.trace === true) {
            const records = gen.trace().slice();
            const n = records.length / traceRecordSize(m.config);
            const fed = r.token >= 0 ? Int32Array.of(r.token).subarray(0, n) : promptIds.slice(promptFed, promptFed += n);
            const tokenTexts = Array.from(fed, (t) => checked(tokenizer.decode([t])));
            ctx.emit('text', { text: r.text, token: r.token, tokens: fed, tokenTexts, trace: records }, [records.buffer]);
          } else if (r.text) {
            ctx.emit('text', { text: r.text, token: r.token });
          }
          if (r.done) { reason = r.reason; break; }
          await yieldToEvents();
        }
        const rest = gen.finish();  // held-back text (a partial stop-string match or UTF-8 tail)
        if (rest && reason !== 'stop') {
          pieces.push(rest);
          ctx.emit('text', options.trace === true
            ? { text: rest, token: -1, tokens: new Int32Array(0), tokenTexts: [], trace: new Float32Array(0) }
            : { text: rest, token: -1 });
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

    // A copy of one head's wkv state, N × N as [value p][key q] (docs/computation.md#the-state).
    // Also while the session generates: it is read between two tokens.
    inspect({ sessionId, layer, head }, ctx) {
      const s = getSession(sessionId, { idle: false });
      const { nLayer, nHead, nEmbd, headSize } = getModel(s.modelId).config;
      if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer) throw new InvalidArgumentError(`layer must be an integer from 0 to ${nLayer - 1}, not ${layer}`);
      if (!Number.isInteger(head) || head < 0 || head >= nHead) throw new InvalidArgumentError(`head must be an integer from 0 to ${nHead - 1}, not ${head}`);
      const at = layer * (2 * nEmbd + nHead * headSize * headSize) + nEmbd + head * headSize * headSize;
      const out = s.state.data().slice(at, at + headSize * headSize);
      ctx.transfer([out.buffer]);
      return out;
    },

    // What a model of each shape ({nLayer, nEmbd, headSize, ffnSize, vocabSize, loraW,
    // loraA, loraV, loraG}, stored as bf16 as published) takes in each precision, and the
    // quant 'auto' picks within options.memoryBudget: 'BF16', 'Q8_0', 'Q4_0', or null when
    // none fits.
    async planShapes({ shapes, options = {} }) {
      const c = await ensureCore(options);
      const budget = options.memoryBudget ?? DEFAULT_MEMORY_BUDGET;
      return shapes.map((shape) => {
        const plan = c.planShape(shape);
        try {
          return { ...plan, auto: chooseQuant(plan, 'auto', budget) || 'BF16' };
        } catch (err) {
          if (err instanceof OutOfMemoryError) return { ...plan, auto: null };
          throw err;
        }
      });
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

    // The heap, what is allocated in it, the models' bytes and the last load's peak (the
    // loader's own count: the model, its buffers, metadata).
    memory() {
      let modelBytes = 0;
      for (const m of models.values()) modelBytes += m.config.memoryBytes;
      return { wasmHeapBytes: core ? core.HEAPU8.length : 0, heapUsedBytes: core ? core.heapUsed() : 0,
        models: models.size, sessions: sessions.size, modelBytes, loadPeakBytes: lastLoad?.peakBytes ?? 0 };
    },
  };
  return handlers;
}
