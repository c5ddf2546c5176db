// The one options schema: every option of generation and of loading, with its name, type,
// default, valid range, command-line flag and help text. Everything else derives from it:
//   - the library's defaults (defaultGenerateOptions in rwkv.mjs),
//   - the CLI's argument parser and --help (cliFlags / parseFlags / flagHelp),
//   - the page's controls and their limits (web/app.mjs),
//   - the core's defaults and validation, and the bindings' reading of an options object:
//     scripts/options-header.mjs turns this table into a C++ header at build time
//     (build/*/generated/rwkv_options.h), so the core checks the same ranges.
// Pure data and small helpers, no I/O: imported by the library, the worker, the CLI and
// the page alike.
import { InvalidArgumentError } from './errors.mjs';

/**
 * An option:
 *   name     the library's name (camelCase)
 *   type     'number' | 'integer' | 'string[]' | 'integer[]' | 'map' (token id -> number)
 *            | 'string' | 'boolean' | 'enum'
 *   default  undefined: unset (the core's own behaviour, said in `help`)
 *   min, max inclusive range of numbers (Infinity: any finite number above min)
 *   values   the names an 'enum' accepts
 *   core     where the core keeps it, 'struct.field' (generated into rwkv_options.h)
 *   flag     the CLI's flag, without the dashes
 *   openai   the name in OpenAI-style requests (snake_case), where it has one
 *   label    the page's label for it
 *   ui       hints for the page's control: {min, max, step} of a slider (a practical range
 *            inside min..max), slider: false for a plain number field
 *   help     one line for --help and tooltips
 */
const option = (o) => Object.freeze(o);

/** Options of session.generate() (sampling and when to stop). Order: as --help lists them. */
export const GENERATE_OPTIONS = Object.freeze([
  option({ name: 'maxTokens', label: 'Max tokens', type: 'integer', default: 200, min: 0, max: 1e9, core: 'generate.max_tokens',
    flag: 'max-tokens', openai: 'max_tokens', ui: { min: 1, max: 4096, step: 1, slider: false }, help: 'tokens to generate at most' }),
  option({ name: 'temperature', label: 'Temperature', type: 'number', default: 1, min: 0, max: Infinity, core: 'sampler.temperature',
    flag: 'temperature', openai: 'temperature', ui: { min: 0, max: 5, step: 0.05 }, help: 'sampling temperature (0 = greedy)' }),
  option({ name: 'topP', label: 'Top-p', type: 'number', default: 0.3, min: 0, max: 1, core: 'sampler.top_p',
    flag: 'top-p', openai: 'top_p', ui: { min: 0, max: 1, step: 0.01 }, help: 'nucleus sampling: keep the most probable tokens up to this probability (0 = greedy)' }),
  option({ name: 'topK', label: 'Top-k', type: 'integer', default: 0, min: 0, max: 2147483647, core: 'sampler.top_k',
    flag: 'top-k', openai: 'top_k', ui: { min: 0, max: 200, step: 1 }, help: 'keep only the k most probable tokens (0 = off)' }),
  option({ name: 'minP', label: 'Min-p', type: 'number', default: 0, min: 0, max: 1, core: 'sampler.min_p',
    flag: 'min-p', openai: 'min_p', ui: { min: 0, max: 1, step: 0.01 }, help: 'drop tokens less probable than this fraction of the most probable one (0 = off)' }),
  option({ name: 'presencePenalty', label: 'Presence penalty', type: 'number', default: 0.5, min: -Infinity, max: Infinity, core: 'sampler.presence_penalty',
    flag: 'presence-penalty', openai: 'presence_penalty', ui: { min: -2, max: 2, step: 0.05 }, help: 'subtracted from the logit of every token already generated' }),
  option({ name: 'frequencyPenalty', label: 'Frequency penalty', type: 'number', default: 0.5, min: -Infinity, max: Infinity, core: 'sampler.frequency_penalty',
    flag: 'frequency-penalty', openai: 'frequency_penalty', ui: { min: -2, max: 2, step: 0.05 }, help: 'subtracted once more per (decayed) occurrence of a generated token' }),
  option({ name: 'penaltyDecay', label: 'Penalty decay', type: 'number', default: 0.996, min: 0, max: 1, core: 'sampler.penalty_decay',
    flag: 'penalty-decay', openai: 'penalty_decay', ui: { min: 0.9, max: 1, step: 0.001 }, help: 'the occurrence counts of the penalties are multiplied by this after every token' }),
  option({ name: 'seed', label: 'Seed', type: 'integer', default: undefined, min: -(2 ** 53 - 1), max: 2 ** 53 - 1, core: 'sampler.seed',
    flag: 'seed', openai: 'seed', ui: { min: 0, max: 2 ** 32 - 1, step: 1, slider: false }, help: 'the same seed gives the same text, natively and in wasm (unset: seed 0)' }),
  option({ name: 'stop', label: 'Stop strings', type: 'string[]', default: [], core: 'generate.stop_strings',
    flag: 'stop', openai: 'stop', help: 'stop when the text contains this string (not emitted; repeatable)' }),
  option({ name: 'stopTokens', type: 'integer[]', default: [], core: 'generate.stop_tokens',
    flag: 'stop-tokens', help: 'token ids that end generation (not emitted; comma-separated)' }),
  option({ name: 'bannedTokens', type: 'integer[]', default: [], core: 'sampler.banned',
    flag: 'ban', help: 'token ids never sampled (comma-separated; 0 = never end the text)' }),
  option({ name: 'logitBias', type: 'map', default: {}, core: 'sampler.logit_bias',
    flag: 'logit-bias', openai: 'logit_bias', help: 'added to the logits of tokens: ID:BIAS,ID:BIAS...' }),
  option({ name: 'grammar', type: 'string', default: undefined, core: 'generate.grammar',
    flag: 'grammar', help: 'the generated text must match this grammar (docs/grammar.md; the CLI takes a file)' }),
  option({ name: 'trace', type: 'boolean', default: false, core: 'generate.trace',
    help: 'with each piece of text, the trace of what the state did at each token fed (docs/inspect.md)' }),
]);

/** The quantization names `quant` takes and the weight types they give the matrices. */
export const QUANT_TYPES = Object.freeze({ int8: 'Q8_0', q8_0: 'Q8_0', q4: 'Q4_0', q4_0: 'Q4_0', bf16: 'BF16', f32: 'F32' });

/**
 * The weight type a `quant` option names ('' keeps the file's types, 'auto' lets the
 * model's size decide: see LOAD_OPTIONS); InvalidArgumentError for others.
 */
export function quantType(quant) {
  if (quant === undefined || quant === null || quant === '') return '';
  if (String(quant).toLowerCase() === 'auto') return 'auto';
  const dtype = QUANT_TYPES[String(quant).toLowerCase()];
  if (!dtype) throw new InvalidArgumentError(`unknown quant '${quant}': use one of ${Object.keys(QUANT_TYPES).join(', ')}`);
  return dtype;
}

/**
 * The memory budget when none is given: what a wasm32 heap can hold (4 GB, less 16 MB for
 * the runtime) less room for sessions, logits and the loader's buffers.
 */
export const DEFAULT_MEMORY_BUDGET = 2 ** 32 - 2 ** 24 - 2 ** 28;

/** Threads when none are asked for: the cores there are, at most this many. */
export const MAX_DEFAULT_THREADS = 4;

/** Options of load() that are plain values (vocab, onProgress, signal are the API's own). */
export const LOAD_OPTIONS = Object.freeze([
  option({ name: 'quant', type: 'enum', values: ['auto', ...Object.keys(QUANT_TYPES)], default: 'auto', flag: 'quant',
    help: 'convert the weight matrices on load: int8 (Q8_0), q4 (Q4_0), bf16 or f32; auto: as in the file when the model fits memoryBudget, else bf16, int8 or q4, the first that fits' }),
  option({ name: 'memoryBudget', type: 'integer', default: undefined, min: 2 ** 20, max: 2 ** 53, flag: 'memory-budget',
    help: `bytes the model may take (quant auto chooses by it; default ${DEFAULT_MEMORY_BUDGET}: a wasm32 heap less room for sessions)` }),
  option({ name: 'threads', type: 'integer', default: undefined, min: 1, max: 64, flag: 'threads',
    help: `threads for the matrix products (unset: the CPU's cores, at most ${MAX_DEFAULT_THREADS}; browsers: 1 unless cross-origin isolated)` }),
  option({ name: 'relaxedSimd', type: 'boolean', default: undefined, flag: 'relaxed-simd',
    help: 'the relaxed-SIMD kernels (4-bit prefill): unset, where the host has relaxed SIMD as it is (browsers, Node 22+); true also on Node 20 (sets process-wide V8 flags); false never' }),
  option({ name: 'cache', type: 'boolean', default: true, flag: 'cache',
    help: 'keep URL downloads in the cache (Cache API in browsers, a folder in Node); --no-cache turns it off' }),
  option({ name: 'stateCache', type: 'integer', default: 256, min: 0, max: 65536, flag: 'state-cache',
    help: 'MB of model states the chat layer keeps by prompt prefix, in memory and (with cache) on the device (0 = off)' }),
  option({ name: 'cacheDir', type: 'string', default: undefined, flag: 'cache-dir',
    help: 'Node: the cache folder (default $RWKV_WEB_CACHE or ~/.cache/rwkv-web)' }),
]);

/**
 * Settings for a purpose, over the defaults: `chat` as ChatRWKV's chat (a reply ends at a
 * blank line, never at token 0), `completion` for free text.
 */
export const PRESETS = Object.freeze({
  chat: Object.freeze({ maxTokens: 500, stop: ['\n\n'], bannedTokens: [0] }),
  completion: Object.freeze({ topP: 0.85, presencePenalty: 0.25, frequencyPenalty: 0.25 }),
});

const byName = new Map([...GENERATE_OPTIONS, ...LOAD_OPTIONS].map((o) => [o.name, o]));

/** The schema entry of an option, or undefined. */
export function optionInfo(name) {
  return byName.get(name);
}

/** Every generate option's default, as a frozen object (unset ones left out). */
export const defaultGenerateOptions = Object.freeze(Object.fromEntries(
  GENERATE_OPTIONS.filter((o) => o.default !== undefined).map((o) => [o.name, Object.freeze(structuredClone(o.default))])));

/** A number's range in words, for messages: "between 0 and 1", "0 or more", "a finite number". */
export function rangeText(o) {
  const n = (v) => (Math.abs(v) >= 1e6 && Number.isInteger(Math.log10(Math.abs(v))) ? `${Math.sign(v) < 0 ? '-' : ''}1e${Math.log10(Math.abs(v))}` : String(v));
  const lo = Number.isFinite(o.min), hi = Number.isFinite(o.max);
  if (lo && hi) return `between ${n(o.min)} and ${n(o.max)}`;
  if (lo) return `${n(o.min)} or more`;
  if (hi) return `${n(o.max)} or less`;
  return 'a finite number';
}

/**
 * Checks one value against its schema entry; returns an error message naming the option
 * (and its OpenAI name), or null when it is valid. Used where values are typed in (CLI,
 * page): the library leaves the checks to the core, which derives them from this table.
 */
export function checkValue(o, v) {
  const called = o.openai && o.openai !== o.name ? `${o.name} (${o.openai})` : o.name;
  switch (o.type) {
    case 'number':
    case 'integer':
      if (typeof v !== 'number' || !Number.isFinite(v)) return `${called} must be a number, not ${JSON.stringify(v)}`;
      if (o.type === 'integer' && !Number.isInteger(v)) return `${called} must be an integer, not ${v}`;
      if (v < o.min || v > o.max) return `${called} must be ${rangeText(o)}, not ${v}`;
      return null;
    case 'string[]':
      if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) return `${called} must be a list of strings`;
      return v.some((s) => s === '') ? `${called}: a stop string is empty` : null;
    case 'integer[]':
      return Array.isArray(v) && v.every((t) => Number.isInteger(t) && t >= 0) ? null : `${called} must be a list of token ids`;
    case 'map':
      return v && typeof v === 'object' && Object.entries(v).every(([k, b]) => /^\d+$/.test(k) && Number.isFinite(b))
        ? null : `${called} must map token ids to finite numbers`;
    case 'enum':
      return o.values.includes(String(v).toLowerCase()) ? null : `unknown ${o.name} '${v}': use one of ${o.values.join(', ')}`;
    case 'boolean':
      return typeof v === 'boolean' ? null : `${called} must be true or false`;
    default:
      return typeof v === 'string' ? null : `${called} must be a string`;
  }
}

// ---- the command line

/** parseArgs options for the given schema entries (all strings, parsed by parseFlags). */
export function cliFlags(options) {
  const out = {};
  for (const o of options) {
    if (!o.flag) continue;
    if (o.type === 'boolean') {
      out[o.flag] = { type: 'boolean' };
      out[`no-${o.flag}`] = { type: 'boolean' };
    } else {
      out[o.flag] = { type: 'string', multiple: o.name === 'stop' };
    }
  }
  return out;
}

/**
 * The values parseArgs returned for these schema entries, as library options (only the
 * ones given). Throws an Error with a message naming the flag when one does not parse or
 * is out of range.
 */
export function parseFlags(values, options) {
  const out = {};
  for (const o of options) {
    if (!o.flag) continue;
    if (o.type === 'boolean') {
      if (values[`no-${o.flag}`]) out[o.name] = false;
      else if (values[o.flag]) out[o.name] = true;
      continue;
    }
    const text = values[o.flag];
    if (text === undefined) continue;
    const fail = (why) => { throw new Error(`--${o.flag}: ${why}`); };
    let v;
    switch (o.type) {
      case 'number': case 'integer': v = text.trim() === '' ? NaN : Number(text); break;
      case 'string[]': v = text; break;
      case 'integer[]': v = text.split(',').filter((s) => s.trim() !== '').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : fail(`'${s}' is not a token id`))); break;
      case 'map': v = Object.fromEntries(text.split(',').map((kv) => {
        const m = /^\s*(\d+)\s*:\s*(-?[\d.eE+-]+)\s*$/.exec(kv);
        return m ? [m[1], Number(m[2])] : fail(`'${kv}' is not ID:BIAS`);
      })); break;
      case 'enum': v = text.toLowerCase(); break;
      default: v = text;
    }
    const err = checkValue(o, v);
    if (err) fail(o.type === 'number' || o.type === 'integer' ? `'${text}' ${err.replace(/^.*? must/, 'must')}` : err);
    out[o.name] = v;
  }
  return out;
}

/** --help lines for these schema entries. */
export function flagHelp(options) {
  const lines = [];
  for (const o of options) {
    if (!o.flag) continue;
    const arg = o.type === 'boolean' ? '' : o.type === 'enum' ? ` ${o.values.filter((v) => !v.includes('_')).join('|')}` : ' X';
    const def = o.default === undefined || (Array.isArray(o.default) && !o.default.length) || (typeof o.default === 'object' && !Array.isArray(o.default))
      ? '' : ` [${o.default}]`;
    lines.push(`      --${o.flag}${arg}`.padEnd(32) + `${o.help}${def}`);
  }
  return lines.join('\n');
}
