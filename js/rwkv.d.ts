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
  signal?: AbortSignal;
  /** Keep URL downloads in the Cache API (browser) or a cache folder (Node). Default true. */
  cache?: boolean;
  /** Node: cache folder (default $RWKV_WEB_CACHE or ~/.cache/rwkv-web). */
  cacheDir?: string;
  /**
   * Threads for the matrix products (default min(CPUs, 4), pthread build). Browsers run
   * threads only in cross-origin isolated pages (COOP/COEP), else 1; see Model.runtime.
   */
  threads?: number;
  /** Folder of the built rwkv.js / rwkv.web.mjs and .wasm (default ../build/wasm/ next to js/). */
  wasmBase?: string | URL;
  /**
   * Convert the weight matrices on load: 'int8' (= 'q8_0': blocks of 32 int8 values with a
   * float scale, the large matrices only), 'q4' (= 'q4_0'), 'bf16' or 'f32' (every matrix).
   * Default: as in the file.
   */
  quant?: 'int8' | 'q8_0' | 'q4' | 'q4_0' | 'bf16' | 'f32';
}

export interface ModelConfig {
  nLayer: number; nEmbd: number; nHead: number; headSize: number; ffnSize: number; vocabSize: number;
  loraW: number; loraA: number; loraV: number; loraG: number;
  stateSize: number;              // floats in one session state
  dtype: 'BF16' | 'F32' | 'Q8_0' | 'Q4_0';  // how the head matrix is held (bf16 files stay bf16)
  memoryBytes: number;            // bytes the weights take in the wasm heap
}

export interface SamplingOptions {
  temperature?: number;           // 0 = greedy; default 1.0
  topP?: number;                  // nucleus; 0 = greedy; default 0.3
  topK?: number;                  // 0 = off
  minP?: number;                  // 0 = off
  presencePenalty?: number;       // default 0.5
  frequencyPenalty?: number;      // default 0.5
  penaltyDecay?: number;          // default 0.996
  logitBias?: Record<number, number>;
  bannedTokens?: number[];
  seed?: number;                  // same seed, same text (natively and in wasm)
}

export interface GenerateOptions extends SamplingOptions {
  maxTokens?: number;             // default 200
  stop?: string[];                // stop strings: matched on the text, not emitted
  stopTokens?: number[];
  signal?: AbortSignal;
}

export interface GenerateResult {
  text: string;
  tokens: number;                 // tokens generated
  promptTokens: number;
  stopReason: 'max_tokens' | 'end_of_text' | 'stop_token' | 'stop' | 'aborted';
  prefillMs: number; decodeMs: number; totalMs: number;
  tokensPerSecond: number;
}

export interface Generation extends AsyncIterable<string> {
  /** The summary, once generation ends (stopReason 'aborted' after an abort). */
  readonly result: Promise<GenerateResult>;
  /** All the text. */
  text(): Promise<string>;
}

export declare const defaultGenerateOptions: Readonly<Required<Omit<GenerateOptions, 'signal' | 'seed' | 'logitBias' | 'bannedTokens'>>>;

export declare function load(source: Source, options?: LoadOptions): Promise<Model>;
export declare function clearCache(options?: { cacheDir?: string }): Promise<void>;

export declare class Model {
  readonly config: ModelConfig;
  readonly name: string;
  /** A tokenizer is there: a `vocab` was passed, the .rwkv file embeds one, or the model is byte-level. */
  readonly hasVocab: boolean;
  readonly runtime: { threads: number; simd: string };
  createSession(): Promise<Session>;
  tokenize(text: string): Promise<number[]>;
  detokenize(tokens: ArrayLike<number>): Promise<string>;
  sample(logits: ArrayLike<number>, options?: SamplingOptions): Promise<number>;
  memory(): Promise<{ wasmHeapBytes: number; heapUsedBytes: number; models: number; sessions: number }>;
  dispose(): Promise<void>;
}

export declare class Session {
  readonly model: Model;
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): Generation;
  prefill(tokens: ArrayLike<number>, options?: { signal?: AbortSignal }): Promise<Float32Array>;
  step(token: number): Promise<Float32Array>;
  reset(): Promise<void>;
  fork(): Promise<Session>;
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
export declare class BusyError extends RwkvError {}
export declare class LoadError extends RwkvError {}
export declare class WorkerCrashedError extends RwkvError {}
export declare class AbortError extends RwkvError {}
