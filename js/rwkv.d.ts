// Type declarations for rwkv-web (js/rwkv.mjs).

/** Where model, vocabulary and state files come from. A string is a URL (or, in Node, a file path). */
export type Source = string | URL | Blob | ArrayBuffer | ArrayBufferView;

export interface LoadProgress {
  loaded: number;          // bytes done
  total: number;           // bytes in all
  fraction: number;        // loaded / total
  bytesPerSecond: number;
  secondsLeft: number;
  elapsedMs: number;
  cached: boolean;         // read from the cache rather than the network
}

export interface LoadOptions {
  /**
   * The World vocabulary (rwkv_vocab_v20230424.txt); byte-level models (V = 256) and .rwkv
   * files with an embedded vocabulary need none (this one wins over an embedded one).
   */
  vocab?: Source;
  onProgress?: (p: LoadProgress) => void;
  /** What did not stop the load (the model could not be kept on the device). Default console.warn. */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /**
   * Keep a model from a URL on the device as it was loaded (converted, vocabulary included:
   * the Origin Private File System in browsers, the cache folder in Node) and read it from
   * there next time; vocabularies in the Cache API / the folder. Default true.
   */
  cache?: boolean;
  /** Node: cache folder (default $RWKV_WEB_CACHE or ~/.cache/rwkv-web). */
  cacheDir?: string;
  /**
   * Threads for the matrix products (default min(CPUs, 4), pthread build). Browsers run
   * threads only in cross-origin isolated pages (COOP/COEP), else 1; see Model.runtime.
   */
  threads?: number;
  /**
   * The relaxed-SIMD kernels (the 4-bit prefill, docs/computation.md): unset, used where the
   * host has relaxed SIMD as it is (Chromium 114+, Node 22+); true, also on Node 20 (which
   * needs process-wide V8 flags: --experimental-wasm-relaxed-simd --no-liftoff); false, never.
   */
  relaxedSimd?: boolean;
  /** Folder of the built rwkv.js / rwkv.web.mjs and .wasm (default ../build/wasm/ next to js/). */
  wasmBase?: string | URL;
  /**
   * Run the model in a worker (a Web Worker / worker_threads, default) or, with false, in
   * the calling thread: no worker to start, but long calls then share this thread's time.
   */
  worker?: boolean;
  /**
   * Convert the weight matrices on load: 'int8' (= 'q8_0': blocks of 32 int8 values with a
   * float scale, the large matrices only), 'q4' (= 'q4_0'), 'bf16' or 'f32' (every matrix).
   * 'auto' (the default): as in the file when the model fits `memoryBudget`, else bf16,
   * int8 or q4, the first that fits; when none does, the load fails after the file's header
   * (OutOfMemoryError giving each choice's size).
   */
  quant?: 'auto' | 'int8' | 'q8_0' | 'q4' | 'q4_0' | 'bf16' | 'f32';
  /** Bytes the model may take (default: 4 GB less 16 MB for the runtime and 256 MB for sessions). */
  memoryBudget?: number;
  /**
   * MB of model states the chat layer keeps by prompt prefix (model.chat.completions): in
   * memory, and with `cache` also on the device (IndexedDB / the cache folder), bounded
   * by the same number. 0 turns the cache off. Default 256.
   */
  stateCache?: number;
}

export interface ModelConfig {
  nLayer: number; nEmbd: number; nHead: number; headSize: number; ffnSize: number; vocabSize: number;
  loraW: number; loraA: number; loraV: number; loraG: number;
  stateSize: number;              // floats in one session state
  dtype: 'BF16' | 'F32' | 'Q8_0' | 'Q4_0';  // how the head matrix is held (bf16 files stay bf16)
  memoryBytes: number;            // bytes the weights take in the wasm heap
}

// Defaults, ranges and help of every option: GENERATE_OPTIONS / LOAD_OPTIONS (js/options.mjs),
// the one options schema (a test checks these declarations against it).
export interface SamplingOptions {
  temperature?: number;           // >= 0; 0 = greedy; default 1
  topP?: number;                  // [0, 1]; nucleus; 0 = greedy; default 0.3
  topK?: number;                  // >= 0; 0 = off
  minP?: number;                  // [0, 1]; 0 = off
  presencePenalty?: number;       // default 0.5
  frequencyPenalty?: number;      // default 0.5
  penaltyDecay?: number;          // [0, 1]; default 0.996
  logitBias?: Record<number, number>;
  bannedTokens?: number[];
  seed?: number;                  // same seed, same text (natively and in wasm)
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;             // [0, 1e9]; default 200
  stop?: string[];                // stop strings: matched on the text, not emitted
  stopTokens?: number[];
  /** The text must match this grammar (docs/grammar.md); generation ends where it ends. */
  grammar?: string;
  /**
   * Yield a TracedPiece for every step, with the trace of what the state did at each
   * token fed, prompt included (docs/inspect.md); default false.
   */
  trace?: boolean;
  signal?: AbortSignal;
}

/** One entry of the options schema. */
export interface OptionInfo {
  name: string;
  label?: string;
  type: 'number' | 'integer' | 'string[]' | 'integer[]' | 'map' | 'string' | 'boolean' | 'enum';
  default?: unknown;
  min?: number; max?: number;     // inclusive; Infinity: any finite number
  values?: string[];              // what an 'enum' accepts
  core?: string;                  // 'struct.field' in the C++ core
  flag?: string;                  // the CLI flag, without dashes
  openai?: string;                // the name in OpenAI-style requests
  ui?: { min: number; max: number; step: number; slider?: boolean };
  help: string;
}
export declare const GENERATE_OPTIONS: readonly OptionInfo[];
export declare const LOAD_OPTIONS: readonly OptionInfo[];
/** Settings over the defaults for a purpose: chat (a reply ends at a blank line) and completion. */
export declare const PRESETS: Readonly<{ chat: GenerateOptions; completion: GenerateOptions }>;
/** An error message for a value outside its option's type or range, or null. */
export declare function checkValue(option: OptionInfo, value: unknown): string | null;

export interface GenerateResult {
  text: string;
  tokens: number;                 // tokens generated
  tokenIds: number[];             // the tokens sampled (all fed to the state but where an end-of-text or stop token ended it)
  promptTokens: number;
  stopReason: 'max_tokens' | 'end_of_text' | 'stop_token' | 'stop' | 'grammar' | 'max_tokens_incomplete' | 'aborted';
  prefillMs: number; decodeMs: number; totalMs: number;
  tokensPerSecond: number;
}

export interface Generation extends AsyncIterable<string> {
  /** The summary, once generation ends (stopReason 'aborted' after an abort). */
  readonly result: Promise<GenerateResult>;
  /** All the text. */
  text(): Promise<string>;
}

/**
 * One step of a traced generation: the text it released (may be empty), the tokens it
 * fed to the state (a slice of the prompt, the generated token, or none), each token's
 * own text, and their trace records: tokens.length records of traceRecordSize(config)
 * floats, per layer and head the TRACE_FIELDS in order, then per layer the residual norm.
 */
export interface TracedPiece {
  text: string;
  tokens: Int32Array;
  tokenTexts: string[];
  trace: Float32Array;
}
export interface TracedGeneration extends AsyncIterable<TracedPiece> {
  readonly result: Promise<GenerateResult>;
  text(): Promise<string>;
}
/** The per-head fields of a trace record, in order (docs/inspect.md). */
export declare const TRACE_FIELDS: readonly ['stateNorm', 'decayMean', 'decayStd', 'halfLife', 'rate', 'update', 'valueMix'];
export type TraceField = (typeof TRACE_FIELDS)[number];
/** Floats in one token's trace record: nLayer · nHead · TRACE_FIELDS.length + nLayer. */
export declare function traceRecordSize(config: { nLayer: number; nHead: number }): number;
/** Reads trace records: a field of token t, layer, head; the residual norm after a layer. */
export declare function traceReader(records: Float32Array, config: { nLayer: number; nHead: number }): {
  tokens: number;
  field(t: number, layer: number, head: number, name: TraceField): number;
  residual(t: number, layer: number): number;
};

export declare const defaultGenerateOptions: Readonly<Required<Omit<GenerateOptions, 'signal' | 'seed'>>>;

export declare function load(source: Source, options?: LoadOptions): Promise<Model>;
/** Empties what is kept on the device: downloads and converted models. */
/**
 * Converts a model file to a .rwkv file at `path` (Node) as it streams in, without loading
 * the model (memory near its largest tensor); written to path.tmp, then renamed.
 */
export declare function convert(source: Source, path: string, options?: LoadOptions & {
  vocab?: Source; metadata?: Record<string, string>; onProgress?: (p: LoadProgress) => void; signal?: AbortSignal; worker?: boolean;
}): Promise<{ bytes: number; peakBytes: number; dtype: string; vocabBytes: number }>;
export declare function clearCache(options?: { cacheDir?: string }): Promise<void>;
/** True when load(url, {quant}) would read the model from this device (no download). */
export declare function isKeptOnDevice(url: string | URL, options?: { quant?: LoadOptions['quant']; cacheDir?: string }): Promise<boolean>;
/** A vocabulary on its own (tokenizing without a model), in a worker of its own. */
export declare function loadVocab(source: Source, options?: { signal?: AbortSignal; worker?: boolean; cache?: boolean; cacheDir?: string }): Promise<Vocabulary>;

export declare class Vocabulary {
  /** Tokens in the vocabulary (the highest id + 1). */
  readonly size: number;
  tokenize(text: string): Promise<number[]>;
  detokenize(tokens: ArrayLike<number>): Promise<string>;
  dispose(): Promise<void>;
}

// ---- the chat layer: OpenAI's request and response shapes (docs/chat.md)

export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string | { type: 'text'; text: string }[] | null;
}

/**
 * The sampling options under OpenAI's names; RWKV's own (stopTokens, bannedTokens, grammar)
 * under theirs. Names, defaults and ranges: the options schema (GENERATE_OPTIONS, each
 * entry's `openai` name).
 */
export interface CompletionOptions {
  model?: string;                 // echoed; the loaded model answers
  stream?: boolean;
  /** With stream: a last chunk with `usage` and no choices (default true; the server: false). */
  stream_options?: { include_usage?: boolean };
  max_tokens?: number;
  max_completion_tokens?: number; // the same as max_tokens
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  penalty_decay?: number;
  seed?: number;
  stop?: string | string[];
  logit_bias?: Record<string, number>;  // token id -> bias in [-100, 100]
  stopTokens?: number[];
  bannedTokens?: number[];
  grammar?: string;
  n?: 1;
  signal?: AbortSignal;
}

export interface ChatCompletionRequest extends CompletionOptions {
  messages: ChatMessage[];
  /** Structured output: the text is a JSON document (of the schema), docs/grammar.md. */
  response_format?: { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; json_schema: { name?: string; schema: object; strict?: boolean } };
  /** Thinking mode of the format: false (default), true, 'short', 'long', 'suffix', 'skip'. */
  thinking?: boolean | 'on' | 'off' | 'suffix' | 'short' | 'long' | 'skip';
  /** The chat format: 'g1' (default) or 'world'. */
  format?: 'g1' | 'world';
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** cached_tokens: prompt tokens not fed again, their state taken from the prefix-state cache. */
  prompt_tokens_details: { cached_tokens: number };
}

export type FinishReason = 'stop' | 'length';

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  system_fingerprint: null;
  choices: [{
    index: 0;
    /** The answer; the thoughts of a thinking mode apart in reasoning_content. */
    message: { role: 'assistant'; content: string; refusal: null; reasoning_content?: string };
    logprobs: null;
    finish_reason: FinishReason;
  }];
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  system_fingerprint: null;
  /** One choice; none in the last chunk, which has the usage. */
  choices: { index: 0; delta: { role?: 'assistant'; content?: string; reasoning_content?: string }; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: CompletionUsage;
}

export interface CompletionRequest extends CompletionOptions {
  prompt: string;
}

export interface TextCompletion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  system_fingerprint: null;
  choices: { index: 0; text: string; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: CompletionUsage;
}

export interface ChatCompletions {
  create(request: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
  create(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
}

export interface Completions {
  create(request: CompletionRequest & { stream?: false }): Promise<TextCompletion>;
  create(request: CompletionRequest & { stream: true }): Promise<AsyncIterable<TextCompletion>>;
}

export interface ScoredCandidate {
  logprob: number;                // natural log of the candidate's probability, summed over its tokens
  tokens: number[];
  tokenLogprobs: number[];
}

export declare class Model {
  /** OpenAI's chat completions: model.chat.completions.create({messages, ...}). */
  readonly chat: { completions: ChatCompletions };
  /** OpenAI's completions of a raw prompt. */
  readonly completions: Completions;
  readonly config: ModelConfig;
  readonly name: string;
  /** A tokenizer is there: a `vocab` was passed, the .rwkv file embeds one, or the model is byte-level. */
  readonly hasVocab: boolean;
  readonly runtime: { threads: number; simd: string };
  createSession(): Promise<Session>;
  tokenize(text: string): Promise<number[]>;
  detokenize(tokens: ArrayLike<number>): Promise<string>;
  sample(logits: ArrayLike<number>, options?: SamplingOptions): Promise<number>;
  memory(): Promise<{ wasmHeapBytes: number; heapUsedBytes: number; models: number; sessions: number; modelBytes: number; loadPeakBytes: number }>;
  /**
   * Node: writes the model as a .rwkv file (docs/format.md), weights as held (after
   * `quant`), with a vocabulary (default: the one embedded in its file) and metadata.
   */
  save(path: string, options?: { vocab?: Source; metadata?: Record<string, string> }): Promise<{ bytes: number; vocabBytes: number; dtype: string }>;
  dispose(): Promise<void>;
}

export declare class Session {
  readonly model: Model;
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions & { trace: true }): TracedGeneration;
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Generation;
  /**
   * A copy of one head's wkv state, N × N values (N the head size) row by row: row p the
   * value channel, column q the key channel. Works while the session generates.
   */
  inspect(where: { layer: number; head: number }): Promise<Float32Array>;
  /** The last token's logits (V), or with `all` the logits after every token (T * V). */
  prefill(tokens: ArrayLike<number>, options?: { signal?: AbortSignal; all?: boolean }): Promise<Float32Array>;
  step(token: number): Promise<Float32Array>;
  reset(): Promise<void>;
  fork(): Promise<Session>;
  /**
   * The log-probability of each candidate continuation of `prompt` (strings are tokenized on
   * their own) after this session's state, which is left unchanged.
   */
  score(prompt: string | ArrayLike<number>, candidates: (string | ArrayLike<number>)[], options?: { signal?: AbortSignal }): Promise<ScoredCandidate[]>;
  saveState(): Promise<Uint8Array>;
  restoreState(bytes: ArrayBuffer | Uint8Array): Promise<void>;
  loadStateFile(source: Source, options?: { signal?: AbortSignal }): Promise<void>;
  dispose(): Promise<void>;
}

export declare class RwkvError extends Error { readonly code: string; }
export declare class ModelFormatError extends RwkvError {}
export declare class VocabError extends RwkvError {}
export declare class OutOfMemoryError extends RwkvError {}
export declare class InvalidArgumentError extends RwkvError {}
/** A request OpenAI's API would refuse; toJSON() is OpenAI's error object. */
export declare class InvalidRequestError extends InvalidArgumentError {
  readonly type: 'invalid_request_error';
  readonly param: string | null;
  readonly openaiCode: string;
  toJSON(): { message: string; type: string; param: string | null; code: string };
}
export declare class BusyError extends RwkvError {}
export declare class LoadError extends RwkvError {}
export declare class WorkerCrashedError extends RwkvError {}
export declare class AbortError extends RwkvError {}
