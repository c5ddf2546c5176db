// rwkv-web: the public API. Models live in a worker (Web Worker / worker_threads), so the
// calling thread never blocks; every method here is a message to it.
//
//   const model = await load('model.pth', { vocab: 'rwkv_vocab_v20230424.txt', onProgress });
//   const r = await model.chat.completions.create({ messages: [{ role: 'user', content: 'hi' }] });
//   const session = await model.createSession();     // raw prompts, states, logits
//   for await (const piece of session.generate('Once upon a time', { maxTokens: 50 })) ...
import { Client, inThreadEndpoints, serve, spawnWorker } from './protocol.mjs';
import { clearCache as clearDownloads, describeSource } from './sources.mjs';
import { clearModelCache, isModelKept } from './model-cache.mjs';
import { AbortError, InvalidArgumentError, WorkerCrashedError } from './errors.mjs';
import { LOAD_OPTIONS, checkValue, optionInfo, quantType } from './options.mjs';
import { chatApi } from './chat/completions.mjs';

export * from './errors.mjs';
export { InvalidRequestError } from './chat/completions.mjs';
/** Sampling defaults as RWKV chat users know them (docs/sampling.md), from the options schema. */
export { checkValue, defaultGenerateOptions, GENERATE_OPTIONS, LOAD_OPTIONS, PRESETS } from './options.mjs';
export { TRACE_FIELDS, heatmap, traceReader, traceRecordSize } from './trace.mjs';

const workerUrl = new URL('./worker.mjs', import.meta.url);

// A worker's URL that works from any origin: a module worker must come from the page's
// origin, so one served elsewhere (a CDN) is started through a same-origin Blob that
// imports it. Its own imports then resolve against its real URL (wasm included).
function workerScript(url) {
  if (typeof location === 'undefined' || url.protocol === 'file:' || url.origin === location.origin) return url;
  return URL.createObjectURL(new Blob([`import ${JSON.stringify(url.href)};`], { type: 'text/javascript' }));
}

// The two ends of a new engine: in a worker, or ({worker: false}) in this thread.
async function startEngine(inThread) {
  if (!inThread) return spawnWorker(workerScript(workerUrl));
  const { createEngine } = await import('./engine.mjs');
  const [mine, theirs] = inThreadEndpoints();
  const engine = createEngine();
  serve(theirs, engine);
  return { ...mine, terminate: () => { engine.shutdown(); mine.terminate(); } };
}

// The load options that are schema values, checked: InvalidArgumentError naming the bad one.
function checkLoadOptions(options) {
  for (const o of LOAD_OPTIONS) {
    if (options[o.name] === undefined) continue;
    const err = checkValue(o, options[o.name]);
    if (err) throw new InvalidArgumentError(err);
  }
}

/**
 * Empties what the library keeps on this device: downloads (vocabularies, files) and the
 * converted models (Node: the cache folder; browsers: the Cache API store and the
 * Origin Private File System folder). options: {cacheDir} (Node).
 */
export async function clearCache(options = {}) {
  await clearModelCache(options);
  await clearDownloads(options);
}

/**
 * True when load(url, {quant}) would read the model from this device (it was loaded from
 * that URL with that quant before, and kept): no download, works offline.
 */
export async function isKeptOnDevice(url, { quant, cacheDir } = {}) {
  return isModelKept(new URL(String(url), globalThis.location?.href).href, quantType(quant), { cacheDir });
}

function progressReporter(onProgress, onWarning = (m) => console.warn(`rwkv-web: ${m}`)) {
  return (event, data) => {
    if (event === 'warning') onWarning(data.message);
    if (event !== 'progress' || !onProgress) return;
    const seconds = data.elapsedMs / 1000;
    const rate = seconds > 0 ? data.loaded / seconds : 0;
    onProgress({ ...data, fraction: data.total ? data.loaded / data.total : 0, bytesPerSecond: rate,
      secondsLeft: rate > 0 ? (data.total - data.loaded) / rate : Infinity });
  };
}

/**
 * Loads a model (official .pth or .safetensors, an RWKV-7 GGUF file, or a .rwkv file made by
 * `cli.mjs convert`; the vocabulary a GGUF or .rwkv file embeds is used unless `vocab` is
 * given) into a new worker.
 * @param source URL, file path (Node), File/Blob, ArrayBuffer or typed array. An
 *   ArrayBuffer is handed over to the worker (detached here: no second copy).
 * @param options {vocab, onProgress, signal, wasmBase, worker} and the LOAD_OPTIONS of the
 *   options schema (quant, threads, cache, cacheDir; js/options.mjs says what each does).
 *   worker: false runs the engine in the calling thread (no worker; long calls then share
 *   this thread's time), default true. onWarning(message): what did not stop the load
 *   (the model could not be kept on the device); default console.warn.
 *   A model from a URL is kept on the device as it was loaded (after `quant`, with its
 *   vocabulary) unless cache is false, and read from there next time.
 */
export async function load(source, options = {}) {
  checkLoadOptions(options);
  const model = new Model(describeSource(source), options);
  await model.ready;
  return model;
}

/**
 * Converts a model file (official .pth or .safetensors, or a .rwkv file) to a .rwkv file
 * at `path` (Node) as it streams in, without loading the model: memory stays near the
 * largest tensor. options: {vocab (a Source: embedded in the file), metadata (strings),
 * onProgress, signal, worker} and the LOAD_OPTIONS (quant, memoryBudget, cache). Resolves
 * to {bytes, peakBytes, dtype (how the matrices are held), vocabBytes}.
 */
export async function convert(source, path, options = {}) {
  checkLoadOptions(options);
  const { onProgress, signal, vocab, metadata, worker = true, ...rest } = options;
  const client = new Client(await startEngine(worker === false));
  try {
    return await client.call('convertModel', {
      source: describeSource(source), path: String(path), vocab: vocab ? describeSource(vocab) : undefined, metadata, options: rest,
    }, { signal, onEvent: progressReporter(onProgress) });
  } finally {
    client.terminate();
  }
}

/**
 * What models of these shapes take in memory, without loading one: for each shape
 * ({nLayer, nEmbd, headSize, ffnSize, vocabSize, loraW, loraA, loraV, loraG}, stored as
 * bf16 as the published checkpoints are; shapeDims() of js/catalog.mjs gives them for the
 * published sizes) {bytes: {stored, F32, BF16, Q8_0, Q4_0}, auto}, where auto is the weight
 * type quant 'auto' would load it as within options.memoryBudget ('BF16', 'Q8_0', 'Q4_0'),
 * or null when none fits. options: {memoryBudget, worker, wasmBase}.
 */
export async function planShapes(shapes, options = {}) {
  checkLoadOptions(options);
  const { worker = true, ...rest } = options;
  const client = new Client(await startEngine(worker === false));
  try {
    return await client.call('planShapes', { shapes, options: { threads: 1, ...rest } });
  } finally {
    client.terminate();
  }
}

export class Model {
  #client = null;
  #source;
  #options;
  #info = null;
  #sessions = new Set();
  ready;
  /** OpenAI's chat completions on this model: chat.completions.create(request) (docs/chat.md). */
  chat;
  /** OpenAI's completions (a raw prompt): completions.create(request). */
  completions;

  constructor(source, options) {
    this.#source = source;
    this.#options = options;
    this.ready = this.#start(options.signal, options.onProgress);
    Object.assign(this, chatApi(this, {
      stateCacheBytes: (options.stateCache ?? optionInfo('stateCache').default) * 2 ** 20,
      persist: options.cache !== false, cacheDir: options.cacheDir,
    }));
  }

  async #start(signal, onProgress) {
    const { onProgress: _p, onWarning, signal: _s, vocab, worker = true, ...rest } = this.#options;
    const client = new Client(await startEngine(worker === false));
    try {
      this.#info = await client.call('loadModel', {
        source: this.#source, vocab: vocab ? describeSource(vocab) : undefined, options: rest,
      }, { signal, onEvent: progressReporter(onProgress, onWarning), transfer: this.#source.bytes ? [this.#source.bytes] : [] });
    } catch (err) {
      client.terminate();
      throw err;
    }
    this.#client = client;
  }

  /** Dimensions read from the file: {nLayer, nEmbd, nHead, headSize, ffnSize, vocabSize, lora*, stateSize, dtype, memoryBytes}. */
  get config() { return this.#info.config; }
  get name() { return this.#info.name; }
  /** How it runs: {threads, simd} (e.g. {threads: 2, simd: 'wasm-simd128'}, or 'wasm-simd128+relaxed' with the relaxed-SIMD kernels). */
  get runtime() { return this.#info.runtime; }
  get hasVocab() { return this.#info.hasVocab; }

  /**
   * Sends one request; after a worker crash, the worker and the model are brought back
   * first, and calls for sessions of the dead worker (`session`) are refused.
   */
  async call(verb, args, opts, session) {
    if (!this.#client) throw new InvalidArgumentError('the model is disposed');
    if (this.#client.dead) {
      this.#sessions.clear();
      this.ready = this.#start();
      await this.ready;
    }
    if (session && !this.#sessions.has(session))
      throw new WorkerCrashedError('the worker crashed and was restarted; this session\'s state is gone: create a new session');
    return this.#client.call(verb, { modelId: this.#info.modelId, ...args }, opts);
  }

  async createSession() {
    const { sessionId } = await this.call('createSession');
    return this._adopt(new Session(this, sessionId));
  }
  _adopt(session) {
    this.#sessions.add(session);
    return session;
  }
  _forget(session) { this.#sessions.delete(session); }

  /** Text to token ids with the model's vocabulary. */
  tokenize(text) { return this.call('tokenize', { text }); }
  /** Token ids to text (invalid UTF-8 shown as U+FFFD). */
  detokenize(tokens) { return this.call('detokenize', { tokens: Array.from(tokens) }); }
  /** One draw from logits with the given sampling options (seeded when options.seed is set). */
  sample(logits, options = {}) { return this.call('sample', { logits: Float32Array.from(logits), options }); }
  /** Worker memory: {wasmHeapBytes (the heap's size), heapUsedBytes (allocated in it), models, sessions}. */
  memory() { return this.call('memory'); }
  /**
   * Node: writes the model as a .rwkv file (docs/format.md) at `path`, its weights as held
   * (after `quant`), with a vocabulary (`vocab`: a Source; default: the one embedded in
   * the model's file, if any) and `metadata` (string values). Resolves to {bytes,
   * vocabBytes, dtype}.
   */
  async save(path, { vocab, metadata } = {}) {
    const { readSource } = await import('./sources.mjs');
    const bytes = vocab === undefined ? undefined : await readSource(describeSource(vocab), {});
    return this.call('saveModel', { path: String(path), vocab: bytes, metadata });
  }

  /** Ends the worker; the model and its sessions can no longer be used. */
  async dispose() {
    const c = this.#client;
    this.#client = null;
    c?.terminate();
  }
}

export class Session {
  #model;
  #id;

  constructor(model, id) {
    this.#model = model;
    this.#id = id;
  }

  #call(verb, args = {}, opts) {
    if (this.#id === null) return Promise.reject(new InvalidArgumentError('the session is disposed'));
    return this.#model.call(verb, { sessionId: this.#id, ...args }, opts, this);
  }

  get model() { return this.#model; }

  /**
   * Feeds tokens in parallel mode; resolves to the last token's logits (Float32Array), or
   * with `all: true` to the logits after every token (T * V values, row after row).
   * With `signal`, an abort between slices of tokens rejects with AbortError and leaves
   * the state as it was before the call.
   */
  prefill(tokens, { signal, all = false } = {}) { return this.#call('prefill', { tokens: Array.from(tokens), all }, { signal }); }
  /** Feeds one token; resolves to its logits. */
  step(token) { return this.#call('step', { token }); }
  /** Back to the initial state: zero, or the state file loaded with loadStateFile(). */
  reset() { return this.#call('resetSession'); }
  /**
   * Starts from a state-tuned initial state: a .pth/.safetensors file holding
   * `blocks.N.att.time_state` (H, N, N) for every layer (URL, path, Blob or bytes).
   */
  loadStateFile(source, options = {}) {
    const { signal, ...rest } = options;
    return this.#call('loadStateFile', { source: describeSource(source), options: rest }, { signal });
  }
  /**
   * The log-probability of each candidate continuation of `prompt` (a string or token ids,
   * at least one token) after this session's state, which is left as it was: the prompt
   * is fed once into a fork, each candidate into a fork of that. A string candidate is
   * tokenized on its own (write the space a word starts with: ' Paris'). Resolves to
   * [{logprob (natural log, the sum over its tokens), tokens (ids), tokenLogprobs}].
   */
  async score(prompt, candidates, { signal } = {}) {
    const ids = async (x) => (typeof x === 'string' ? this.#model.tokenize(x) : Array.from(x));
    const promptIds = await ids(prompt);
    if (promptIds.length === 0) throw new InvalidArgumentError('score needs a prompt of at least one token');
    if (!Array.isArray(candidates)) throw new InvalidArgumentError('candidates must be an array of strings or token id arrays');
    const base = await this.fork();
    try {
      const first = logSoftmax(await base.prefill(promptIds, { signal }));
      const out = [];
      for (const c of candidates) {
        const tokens = await ids(c);
        if (tokens.length === 0) throw new InvalidArgumentError('a candidate has no tokens');
        const tokenLogprobs = [first[tokens[0]]];
        if (tokens.length > 1) {
          const fork = await base.fork();
          try {
            const rows = await fork.prefill(tokens.slice(0, -1), { signal, all: true });
            const V = rows.length / (tokens.length - 1);
            for (let i = 1; i < tokens.length; ++i) tokenLogprobs.push(logSoftmax(rows.subarray((i - 1) * V, i * V))[tokens[i]]);
          } finally {
            await fork.dispose();
          }
        }
        out.push({ logprob: tokenLogprobs.reduce((a, b) => a + b, 0), tokens, tokenLogprobs });
      }
      return out;
    } finally {
      await base.dispose();
    }
  }
  /** A new session with a copy of this one's state. */
  async fork() {
    const { sessionId } = await this.#call('forkSession');
    return this.#model._adopt(new Session(this.#model, sessionId));
  }
  /**
   * A copy of one head's wkv state: a Float32Array of N × N (N the head size), row p the
   * value channel, column q the key channel (docs/inspect.md). Works while generating.
   */
  inspect({ layer, head }) { return this.#call('inspect', { layer, head }); }
  /** The state as bytes with a header naming the model's shape (see docs/state-format.md). */
  async saveState() { return new Uint8Array(await this.#call('saveState')); }
  /** Replaces the state with saved bytes; refuses a state of another model shape. */
  restoreState(bytes) { return this.#call('restoreState', { bytes: bytes instanceof ArrayBuffer ? bytes : new Uint8Array(bytes) }); }
  async dispose() {
    if (this.#id === null) return;
    const id = this.#id;
    this.#id = null;
    await this.#model.call('deleteSession', { sessionId: id }, {}, this).catch(() => {});
    this.#model._forget(this);
  }

  /**
   * Generates text after `prompt` (a string, or token ids), continuing this session's
   * state. Returns an async iterable of text pieces; `.result` resolves to the summary
   * {text, tokens, tokenIds (the tokens sampled), promptTokens, stopReason, prefillMs, decodeMs,
   * totalMs, tokensPerSecond}
   * and `.text()` to the whole text. Options: GENERATE_OPTIONS of the options schema
   * (defaults: defaultGenerateOptions), plus `signal`.
   * Aborting stops within one token: the iterator then throws an AbortError after the
   * last piece, `.result` resolves with stopReason 'aborted', and the session's state
   * holds exactly the tokens whose text was delivered.
   * With `trace: true` the iterable yields {text, tokens, tokenTexts, trace} for every
   * step instead of strings: the tokens fed in that step (a slice of the prompt, or the
   * generated token), each one's text, and their trace records (docs/inspect.md).
   */
  generate(prompt, options = {}) {
    const { signal, ...opts } = options;  // unset options: the core's defaults, which are the schema's
    const queue = [];
    let wake = null, finished = false, failure = null;
    const push = () => { wake?.(); wake = null; };
    const result = this.#call('generate', { prompt: typeof prompt === 'string' ? prompt : Array.from(prompt), options: opts }, {
      signal,
      onEvent: (event, data) => {
        if (event === 'text') {
          queue.push(opts.trace === true ? data : data.text);
          push();
        }
      },
    }).then((summary) => {
      finished = true;
      push();
      return summary;
    }, (err) => {
      finished = true;
      failure = err;
      push();
      throw err;
    });
    result.catch(() => {});  // reported through the iterator or .result
    return {
      result,
      async text() {
        return (await result).text;
      },
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (queue.length) yield queue.shift();
          if (finished) {
            if (failure) throw failure;
            if ((await result).stopReason === 'aborted') throw new AbortError('generation was aborted');
            return;
          }
          await new Promise((r) => { wake = r; });
        }
      },
    };
  }
}

/** log(softmax(logits)) in float64. */
function logSoftmax(logits) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - lse);
}

/**
 * A vocabulary on its own, for tokenizing without a model: the World vocabulary file
 * (URL, path, Blob or bytes). Runs in a worker of its own ({worker: false}: this thread).
 */
export async function loadVocab(source, options = {}) {
  const { signal, worker = true, ...rest } = options;
  const client = new Client(await startEngine(worker === false));
  try {
    const { vocabId, vocabSize } = await client.call('loadVocab', { source: describeSource(source), options: rest }, { signal });
    return new Vocabulary(client, vocabId, vocabSize);
  } catch (err) {
    client.terminate();
    throw err;
  }
}

export class Vocabulary {
  #client;
  #id;
  constructor(client, id, size) {
    this.#client = client;
    this.#id = id;
    this.size = size;
  }
  #call(verb, args) {
    if (!this.#client) return Promise.reject(new InvalidArgumentError('the vocabulary is disposed'));
    return this.#client.call(verb, { vocabId: this.#id, ...args });
  }
  /** Text to token ids. */
  tokenize(text) { return this.#call('tokenize', { text }); }
  /** Token ids to text (invalid UTF-8 shown as U+FFFD). */
  detokenize(tokens) { return this.#call('detokenize', { tokens: Array.from(tokens) }); }
  async dispose() {
    const c = this.#client;
    this.#client = null;
    c?.terminate();
  }
}
