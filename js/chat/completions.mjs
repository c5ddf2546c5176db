// OpenAI's chat completions and completions on a loaded model (docs/chat.md):
//   model.chat.completions.create({messages, stream, ...}) -> chat.completion, or an
//     async iterable of chat.completion.chunk when stream is true
//   model.completions.create({prompt, stream, ...})        -> text_completion (the same)
// Requests are checked here, with the names and ranges of the options schema
// (js/options.mjs, each entry's `openai` name), and fail with InvalidRequestError, which
// carries OpenAI's error object. Prompts come from the chat template (template.mjs),
// grammars from response_format (json-schema.mjs), and a prefix-state cache
// (state-cache.mjs) keeps the state after each prompt, so a history that is sent again
// is not fed again.
import { FORMATS, chatPrompt, normalizeText, ThoughtSplitter } from './template.mjs';
import { responseFormatGrammar } from './json-schema.mjs';
import { StateCache, openStateStore, tokenHash } from './state-cache.mjs';
import { GENERATE_OPTIONS, PRESETS, checkValue } from '../options.mjs';
import { AbortError, InvalidArgumentError } from '../errors.mjs';

/**
 * A request OpenAI's API would refuse: `param` names the field, `type` and `openaiCode`
 * are OpenAI's; toJSON() is OpenAI's error object ({message, type, param, code}).
 */
export class InvalidRequestError extends InvalidArgumentError {
  constructor(message, { param = null, code = 'invalid_value' } = {}) {
    super(message);
    this.type = 'invalid_request_error';
    this.param = param;
    this.openaiCode = code;
  }
  toJSON() { return { message: this.message, type: this.type, param: this.param, code: this.openaiCode }; }
}

const fail = (param, message, code) => { throw new InvalidRequestError(message, { param, code }); };

/** finish_reason of the core's stop reasons (docs/sampling.md). */
export function finishReason(stopReason) {
  return stopReason === 'max_tokens' || stopReason === 'max_tokens_incomplete' ? 'length' : 'stop';
}

// The generate options of a request: every schema option under its OpenAI name (or its own
// name where OpenAI has none), null meaning unset. OpenAI's `stop` may be one string.
const REQUEST_OPTIONS = GENERATE_OPTIONS.map((o) => [o.openai ?? o.name, o]);
const ALIASES = { max_completion_tokens: 'max_tokens' };
// Fields OpenAI clients send that change nothing here.
const IGNORED = new Set(['model', 'user', 'store', 'metadata', 'service_tier', 'parallel_tool_calls', 'signal']);

/**
 * Library-named generate options ({maxTokens, topP, ...}, as the CLI and the page hold
 * them) as the fields of a request ({max_tokens, top_p, ...}).
 */
export function requestFields(options) {
  const out = {};
  for (const [key, o] of REQUEST_OPTIONS) if (options[o.name] !== undefined) out[key] = options[o.name];
  return out;
}

/** True when `v` is not even of the kind the option takes (OpenAI's invalid_type). */
function wrongType(o, v) {
  switch (o.type) {
    case 'number': case 'integer': return typeof v !== 'number';
    case 'string[]': case 'integer[]': return !Array.isArray(v);
    case 'map': return v === null || typeof v !== 'object' || Array.isArray(v);
    case 'boolean': return typeof v !== 'boolean';
    default: return typeof v !== 'string';
  }
}

function generateOptions(request) {
  const out = {};
  for (const [key, o] of REQUEST_OPTIONS) {
    let v = request[key];
    for (const [alias, to] of Object.entries(ALIASES)) if (to === key && request[alias] != null) v = request[alias];
    if (v === undefined || v === null) continue;
    if (o.name === 'stop' && typeof v === 'string') v = [v];
    if (o.name === 'logitBias' && v && typeof v === 'object') {
      for (const [id, bias] of Object.entries(v)) if (typeof bias === 'number' && (bias < -100 || bias > 100))
        fail(key, `logit_bias for token ${id} must be between -100 and 100, not ${bias}`);
    }
    const err = checkValue(o, v);
    if (err) fail(key, err, wrongType(o, v) ? 'invalid_type' : 'invalid_value');
    out[o.name] = v;
  }
  return out;
}

/** Checks the fields every request has; returns {stream, includeUsage}. */
function commonFields(request, known) {
  if (request === null || typeof request !== 'object' || Array.isArray(request)) fail(null, 'the request must be a JSON object', 'invalid_type');
  for (const key of Object.keys(request)) {
    if (!known.has(key) && !IGNORED.has(key) && !REQUEST_OPTIONS.some(([k]) => k === key) && !(key in ALIASES))
      fail(key, `Unrecognized request argument supplied: ${key}`, 'unknown_parameter');
  }
  if (request.model != null && typeof request.model !== 'string') fail('model', 'model must be a string', 'invalid_type');
  const stream = request.stream ?? false;
  if (typeof stream !== 'boolean') fail('stream', 'stream must be true or false', 'invalid_type');
  const so = request.stream_options;
  if (so != null && (typeof so !== 'object' || (so.include_usage != null && typeof so.include_usage !== 'boolean')))
    fail('stream_options', 'stream_options must be {include_usage: boolean}', 'invalid_type');
  if (request.n != null && request.n !== 1) fail('n', 'only n = 1 is supported', 'unsupported_value');
  if (request.logprobs === true || request.logprobs > 0) fail('logprobs', 'logprobs are not supported', 'unsupported_value');
  if (request.signal != null && !(request.signal instanceof AbortSignal)) fail('signal', 'signal must be an AbortSignal', 'invalid_type');
  return { stream, includeUsage: so?.include_usage ?? true };
}

const CHAT_FIELDS = new Set(['messages', 'stream', 'stream_options', 'n', 'logprobs', 'top_logprobs', 'response_format', 'thinking', 'format']);
const COMPLETION_FIELDS = new Set(['prompt', 'stream', 'stream_options', 'n', 'logprobs']);

function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * The prompt of a chat in pieces that are tokenized one by one: a turn with its separator,
 * and an assistant's turn cut after "Assistant:", where a reply starts. A history sent
 * again then gives the same tokens as before, whatever its next turns are.
 */
export function promptSegments(prompt, format) {
  const { separator } = FORMATS[format];
  const head = `${FORMATS[format].roles.assistant}:`;
  const turns = prompt.split(separator);
  return turns.flatMap((turn, i) => {
    const text = i < turns.length - 1 ? turn + separator : turn;
    return text.startsWith(head) && text.length > head.length ? [head, text.slice(head.length)] : [text];
  }).filter((s) => s !== '');
}

const sameTokens = (a, b) => a.length === b.length && a.every((t, i) => t === b[i]);

/**
 * Runs requests on a model: tokenizes the prompt's segments, starts from the longest cached
 * prefix that ends at a segment boundary, caches the state at the start of the last
 * segment, and generates. After a reply, the state is cached once more where the reply's
 * tokens are exactly those its text will be tokenized to in the next request (docs/chat.md).
 * Options: {stateCacheBytes, persist, cacheDir}.
 */
class Runner {
  #model;
  #cache;
  #options;

  constructor(model, { stateCacheBytes = 0, persist = false, cacheDir } = {}) {
    this.#model = model;
    this.#options = { stateCacheBytes, persist, cacheDir };
  }

  // The cache, made on first use; persistent under a key of the weights: a hash of the
  // logits after token 0 (and the shape), which no other model gives.
  async #stateCache() {
    if (this.#cache) return this.#cache;
    const { stateCacheBytes, persist, cacheDir } = this.#options;
    let store = null;
    if (persist && stateCacheBytes > 0) {
      store = (async () => {
        const s = await this.#model.createSession();
        try {
          const logits = await s.prefill([0]);
          const c = this.#model.config;
          const key = `${c.nLayer}x${c.nEmbd}x${c.vocabSize}-${tokenHash(new Int32Array(logits.buffer, logits.byteOffset, logits.length))}`;
          return await openStateStore(key, stateCacheBytes, { cacheDir });
        } finally {
          await s.dispose();
        }
      })().catch(() => null);
    }
    this.#cache = new StateCache({ budgetBytes: stateCacheBytes, store });
    return this.#cache;
  }

  /**
   * Generation after `segments` (text pieces) with generate options; returns
   * {gen, promptTokens, cachedTokens, end(segment)}. The caller ends it with end(), which
   * disposes the session; end(segment) with the text the reply will be in the next prompt
   * (a segment of promptSegments) caches the state after the reply when the tokens
   * sampled are the ones that text is tokenized to.
   */
  async start(segments, options, signal) {
    const model = this.#model;
    const parts = await Promise.all(segments.map((s) => model.tokenize(s)));
    const tokens = parts.flat();
    if (tokens.length === 0) fail('messages', 'the prompt is empty', 'invalid_value');
    const bounds = [];
    for (let at = 0, i = 0; i < parts.length; ++i) bounds.push(at += parts[i].length);
    const cache = await this.#stateCache();
    const session = await model.createSession();
    try {
      // The longest cached prefix that leaves at least one token to feed.
      let cached = 0;
      if (cache.enabled) {
        for (let i = bounds.length - 1; i >= 0 && !cached; --i) {
          if (bounds[i] >= tokens.length) continue;
          const state = await cache.get(tokens.slice(0, bounds[i]));
          if (state) {
            await session.restoreState(state);
            cached = bounds[i];
          }
        }
      }
      // The state at the start of the last segment is cached for the requests after this one.
      const keep = bounds.length > 1 ? bounds.at(-2) : 0;
      if (cache.enabled && keep > cached) {
        await session.prefill(tokens.slice(cached, keep), { signal });
        await cache.put(tokens.slice(0, keep), await session.saveState());
      }
      const fed = Math.max(cached, cache.enabled ? keep : 0);
      const gen = session.generate(tokens.slice(fed), { ...options, signal });
      const end = async (segment) => {
        try {
          const result = segment && cache.enabled ? await gen.result.catch(() => null) : null;
          if (result?.stopReason === 'stop') {
            const expected = await model.tokenize(segment);
            if (sameTokens(expected, result.tokenIds)) await cache.put([...tokens, ...expected], await session.saveState());
          }
        } finally {
          await session.dispose();
        }
      };
      return { gen, end, promptTokens: tokens.length, cachedTokens: cached };
    } catch (err) {
      await session.dispose();
      throw err;
    }
  }
}

const usageOf = (promptTokens, completionTokens, cachedTokens) => ({
  prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens,
  prompt_tokens_details: { cached_tokens: cachedTokens },
});

/**
 * Pieces of a generation as chunks: makeChunks(piece) -> chunks; finish(result) -> the
 * chunks after the text. Runs the generation in `run` to its end, then ends the run with
 * nextSegment() (see Runner.start). An abort ends the iteration with AbortError.
 */
async function* chunks(run, { makeChunks, finish, usageChunk, includeUsage, nextSegment = () => null }) {
  try {
    for await (const piece of run.gen) {
      yield* makeChunks(piece);
    }
    const result = await run.gen.result;
    yield* finish(result);
    if (includeUsage) yield usageChunk(usageOf(run.promptTokens, result.tokens, run.cachedTokens));
  } finally {
    await run.end(nextSegment());
  }
}

/** Everything of a generation at once: {text, result}; the run ended with nextSegment(text). */
async function collect(run, nextSegment = () => null) {
  let text = '';
  try {
    for await (const piece of run.gen) text += piece;
    return { text, result: await run.gen.result };
  } catch (err) {
    if (err instanceof AbortError || err?.name === 'AbortError') throw new AbortError('the request was aborted');
    throw err;
  } finally {
    await run.end(nextSegment(text));
  }
}

/** model.chat.completions */
export class ChatCompletions {
  #model;
  #runner;
  constructor(model, runner) {
    this.#model = model;
    this.#runner = runner;
  }

  /**
   * OpenAI's chat completion request: messages and the sampling options under their OpenAI
   * names (temperature, top_p, top_k, min_p, presence_penalty, frequency_penalty,
   * penalty_decay, seed, stop, max_tokens, logit_bias), response_format ({type: 'text' |
   * 'json_object' | 'json_schema', json_schema: {schema}}), RWKV's own options under
   * their names (stopTokens, bannedTokens, grammar), thinking (false, true or a mode of
   * the format), format ('g1' default, 'world'), stream, stream_options, signal.
   * Resolves to a chat.completion, or with stream: true, to an async iterable of
   * chat.completion.chunk (the last one with usage, unless stream_options.include_usage
   * is false).
   */
  async create(request) {
    const { stream, includeUsage } = commonFields(request, CHAT_FIELDS);
    const options = { ...PRESETS.chat, ...generateOptions(request) };
    const format = request.format ?? 'g1';
    if (typeof format !== 'string' || !FORMATS[format]) fail('format', `format must be one of ${Object.keys(FORMATS).join(', ')}`);
    if (!Array.isArray(request.messages) || request.messages.length === 0) fail('messages', 'messages must be a non-empty array', 'invalid_type');
    let grammar = null;
    try {
      grammar = responseFormatGrammar(request.response_format ?? null);
    } catch (err) {
      fail('response_format', err.message);
    }
    if (grammar !== null && options.grammar !== undefined) fail('grammar', 'give either response_format or grammar, not both');
    grammar ??= options.grammar ?? null;
    const thinking = request.thinking ?? false;
    if (grammar !== null && thinking !== false && thinking !== 'off' && thinking !== 'skip')
      fail('thinking', 'under a grammar (response_format) the thoughts would be constrained too: use thinking false or \'skip\'');
    let built;
    try {
      built = chatPrompt(request.messages, { format, thinking, completeTag: grammar !== null });
    } catch (err) {
      const m = /^messages\[\d+\]/.exec(err.message);
      fail(m ? m[0] : /^thinking/.test(err.message) ? 'thinking' : 'messages', err.message);
    }
    const stop = [...new Set([...built.stop, ...(options.stop ?? [])])];
    const genOptions = { ...options, stop, ...(grammar === null ? {} : { grammar }) };
    const segments = promptSegments(built.prompt, format);
    const run = await this.#runner.start(segments, genOptions, request.signal);
    const id = randomId('chatcmpl'), created = Math.floor(Date.now() / 1000), model = request.model ?? this.#model.name;
    const splitter = new ThoughtSplitter(built.thoughts);
    // The reply as the next request's prompt will have it: after "Assistant:", a space, the
    // answer and the separator (when the prompt ends with the bare "Assistant:").
    const { separator, roles } = FORMATS[format];
    const nextSegment = (answer) => (segments.at(-1) === `${roles.assistant}:` && normalizeText(answer)
      ? ` ${normalizeText(answer)}${separator}` : null);
    const split = (text) => {
      const a = splitter.push(text), b = splitter.finish();
      return { thought: a.thought + b.thought, content: a.answer + b.answer };
    };
    if (!stream) {
      let reply;
      const { result } = await collect(run, (text) => nextSegment((reply = split(text)).content));
      const { thought, content } = reply;
      return {
        id, object: 'chat.completion', created, model, system_fingerprint: null,
        choices: [{
          index: 0, logprobs: null, finish_reason: finishReason(result.stopReason),
          message: { role: 'assistant', content, refusal: null, ...(thought ? { reasoning_content: thought } : {}) },
        }],
        usage: usageOf(run.promptTokens, result.tokens, run.cachedTokens),
      };
    }
    const chunk = (delta, finish = null) => ({
      id, object: 'chat.completion.chunk', created, model, system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    const deltas = ({ thought, answer }) => [
      ...(thought ? [chunk({ reasoning_content: thought })] : []), ...(answer ? [chunk({ content: answer })] : [])];
    let answer = '';
    const answerOf = (parts) => { answer += parts.answer; return parts; };
    return (async function* () {
      yield chunk({ role: 'assistant', content: '' });
      yield* chunks(run, {
        includeUsage,
        nextSegment: () => nextSegment(answer),
        makeChunks: (piece) => deltas(answerOf(splitter.push(piece))),
        *finish(result) {
          yield* deltas(answerOf(splitter.finish()));
          yield chunk({}, finishReason(result.stopReason));
        },
        usageChunk: (usage) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: null, choices: [], usage }),
      });
    })();
  }
}

/** model.completions */
export class Completions {
  #model;
  #runner;
  constructor(model, runner) {
    this.#model = model;
    this.#runner = runner;
  }

  /**
   * OpenAI's (legacy) completion request: prompt (a string), the sampling options as in
   * chat completions (stop strings only from the request), stream, stream_options,
   * signal. Resolves to a text_completion, or with stream: true, to an async iterable of
   * them (one piece of text each, then one with usage).
   */
  async create(request) {
    const { stream, includeUsage } = commonFields(request, COMPLETION_FIELDS);
    if (typeof request.prompt !== 'string') fail('prompt', 'prompt must be a string', 'invalid_type');
    const options = { ...PRESETS.completion, ...generateOptions(request) };
    const run = await this.#runner.start([request.prompt], options, request.signal);
    const id = randomId('cmpl'), created = Math.floor(Date.now() / 1000), model = request.model ?? this.#model.name;
    const object = (text, finish, usage) => ({
      id, object: 'text_completion', created, model, system_fingerprint: null,
      choices: usage && text === null ? [] : [{ index: 0, text, logprobs: null, finish_reason: finish }],
      ...(usage ? { usage } : {}),
    });
    if (!stream) {
      const { text, result } = await collect(run);
      return object(text, finishReason(result.stopReason), usageOf(run.promptTokens, result.tokens, run.cachedTokens));
    }
    return chunks(run, {
      includeUsage,
      makeChunks: (piece) => [object(piece, null)],
      *finish(result) { yield object('', finishReason(result.stopReason)); },
      usageChunk: (usage) => object(null, null, usage),
    });
  }
}

/**
 * The chat layer of a model: {chat: {completions}, completions}. options:
 * {stateCacheBytes (0: no cache), persist (keep states on the device), cacheDir}.
 */
export function chatApi(model, options) {
  const runner = new Runner(model, options);
  return { chat: { completions: new ChatCompletions(model, runner) }, completions: new Completions(model, runner) };
}
