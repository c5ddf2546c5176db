#!/usr/bin/env node
// rwkv-web command line. Every command is a user of the public library (rwkv.mjs): the
// model runs in its worker as in any Node script, and the options, their flags, ranges
// and help come from the options schema (options.mjs).
import { parseArgs } from 'node:util';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { convert as convertModel, load, loadVocab } from './rwkv.mjs';
import { GENERATE_OPTIONS, LOAD_OPTIONS, cliFlags, flagHelp, parseFlags } from './options.mjs';
import { requestFields } from './chat/completions.mjs';
import { STATE_HEADER_BYTES } from './state-format.mjs';
import { heatmap, traceReader } from './trace.mjs';

const LOAD_FLAGS = LOAD_OPTIONS.filter((o) => o.name !== 'cacheDir');

const usage = `usage:
  node js/cli.mjs generate --model FILE|URL [--vocab FILE|URL] --prompt TEXT [options]
      streams the generated text to stdout
  node js/cli.mjs chat --model FILE|URL [--vocab FILE|URL] [--system TEXT] [--think] [--think-mode MODE] [options]
      interactive chat through the chat layer (docs/chat.md: the G1 format, --format world
      for older models), the history's state kept by the prefix-state cache; --think shows
      the thoughts (--think-mode short|long|suffix|skip); /reset starts over, /save FILE
      and /load FILE keep a conversation (its messages as JSON), /exit ends
  node js/cli.mjs serve --model FILE|URL [--vocab FILE|URL] [--port 8000] [--host 127.0.0.1] [--max-clients 16]
      an OpenAI-compatible server: POST /v1/chat/completions, POST /v1/completions (stream:
      true for server-sent events), GET /v1/models; binds to 127.0.0.1 unless --host says
  node js/cli.mjs logits --model FILE --tokens 1,2,3 --out OUT.f32 [--mode step|prefill] [--state-out STATE.f32]
      writes the logits after every token as raw little-endian float32 rows (T x V), and
      optionally the final state as raw floats (docs/state-format.md, without the header)
  node js/cli.mjs tokenize --vocab FILE --text TEXT
      prints the token ids as a JSON array
  node js/cli.mjs convert IN OUT [--quant auto|int8|q4|bf16|f32] [--vocab FILE]
      writes the model IN (a file or URL: .pth, .safetensors, .gguf or .rwkv) as a .rwkv file
      (docs/format.md) as it streams in, never whole in memory: weights as --quant converts
      them (default auto: as they are when they fit --memory-budget), the vocabulary embedded
  node js/cli.mjs inspect --model FILE|URL [--vocab FILE|URL] --text TEXT [--png FILE] [--json]
      feeds the text and prints each layer's and head's half-life (tokens for its mean decay
      to halve the state) at the last token; --png writes the heatmap of the state norms (a
      column per token, a row per layer and head), --json every number (docs/inspect.md)
  node js/cli.mjs bench [--shape 0.1B|0.4B|1.5B|2.9B] [--quick] [--rounds N] [--threads 1,2] [--json] ...
      our runtime natively, under Node and in Chromium against llama.cpp (native, and wasm
      through wllama) on the same random weights, measured in the same run (docs/bench.md;
      bench --help for every option)

  generation options (generate, chat):
${flagHelp(GENERATE_OPTIONS)}
      --state-file FILE         generate: start from a state-tuning file (blocks.N.att.time_state)
  loading options (generate, chat, logits, convert):
${flagHelp(LOAD_FLAGS)}`;

class UsageError extends Error {}

/** The schema options given on the command line (`--stop '\n\n'` takes \n and \t escapes). */
function schemaValues(values, schema) {
  let out;
  try {
    out = parseFlags(values, schema);
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (out.stop) out.stop = out.stop.map((s) => s.replace(/\\n/g, '\n').replace(/\\t/g, '\t'));
  return out;
}

/** The generation options of the command line; --grammar names a file. */
async function generationValues(values) {
  const out = schemaValues(values, GENERATE_OPTIONS);
  if (out.grammar !== undefined) out.grammar = await readFile(out.grammar, 'utf8');
  return out;
}

function parseTokens(text) {
  if (!text) throw new UsageError('--tokens is required (comma-separated ids)');
  return text.split(',').map((s) => {
    const v = Number(s.trim());
    if (!Number.isInteger(v)) throw new UsageError(`--tokens: '${s}' is not an integer token id`);
    return v;
  });
}

/** A progress bar on stderr for downloads and big files (only on a terminal). */
function progressBar() {
  if (!process.stderr.isTTY) return undefined;
  let shown = false;
  return (p) => {
    if (p.total < 32 << 20 && !shown) return;
    shown = true;
    const width = 30, filled = Math.round(p.fraction * width);
    const mb = (n) => (n / 2 ** 20).toFixed(0);
    const eta = Number.isFinite(p.secondsLeft) ? `${Math.ceil(p.secondsLeft)}s left` : '';
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${mb(p.loaded)}/${mb(p.total)} MB ` +
      `${mb(p.bytesPerSecond)} MB/s ${eta}   ${p.loaded === p.total ? '\n' : ''}`);
  };
}

const modelFlags = { model: { type: 'string' }, vocab: { type: 'string' }, ...cliFlags(LOAD_FLAGS) };

async function openModel(values) {
  if (!values.model) throw new UsageError('--model is required');
  return load(values.model, { vocab: values.vocab, onProgress: progressBar(), ...schemaValues(values, LOAD_FLAGS) });
}

async function logits(argv) {
  const { values } = parseArgs({
    args: argv, options: {
    ...modelFlags, tokens: { type: 'string' }, out: { type: 'string' },
    mode: { type: 'string', default: 'step' }, 'state-out': { type: 'string' },
    },
  });
  if (!values.model || !values.out) throw new UsageError('--model and --out are required');
  if (values.mode !== 'step' && values.mode !== 'prefill') throw new UsageError(`--mode must be step or prefill, not '${values.mode}'`);
  const tokens = parseTokens(values.tokens);
  const model = await openModel(values);
  try {
    const session = await model.createSession();
    const V = model.config.vocabSize;
    let rows;
    if (values.mode === 'step') {
      rows = new Float32Array(tokens.length * V);
      for (let i = 0; i < tokens.length; ++i) rows.set(await session.step(tokens[i]), i * V);
    } else {
      rows = await session.prefill(tokens, { all: true });
    }
    await writeFile(values.out, new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
    if (values['state-out']) await writeFile(values['state-out'], (await session.saveState()).subarray(STATE_HEADER_BYTES));
  } finally {
    await model.dispose();
  }
}

async function tokenize(argv) {
  const { values } = parseArgs({ args: argv, options: { vocab: { type: 'string' }, text: { type: 'string' } } });
  if (!values.vocab || values.text === undefined) throw new UsageError('--vocab and --text are required');
  const vocab = await loadVocab(values.vocab);
  try {
    console.log(JSON.stringify(await vocab.tokenize(values.text)));
  } finally {
    await vocab.dispose();
  }
}

const generationFlags = { ...modelFlags, ...cliFlags(GENERATE_OPTIONS), 'state-file': { type: 'string' } };

async function generate(argv) {
  const { values } = parseArgs({ args: argv, options: { ...generationFlags, prompt: { type: 'string' } } });
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  const opts = await generationValues(values);
  const model = await openModel(values);
  const session = await model.createSession();
  if (values['state-file']) await session.loadStateFile(values['state-file']);
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const gen = session.generate(values.prompt, { ...opts, signal: ac.signal });
  try {
    for await (const piece of gen) process.stdout.write(piece);
  } catch (err) {
    if (err.name !== 'AbortError') throw err;
  }
  process.stdout.write('\n');
  const r = await gen.result.catch(() => null);
  if (r && process.stderr.isTTY)
    process.stderr.write(`[${r.tokens} tokens, ${r.tokensPerSecond.toFixed(1)} tokens/s, stop: ${r.stopReason}]\n`);
  await model.dispose();
}

async function chat(argv) {
  const { values } = parseArgs({
    args: argv, options: { ...generationFlags, system: { type: 'string' }, think: { type: 'boolean' }, 'think-mode': { type: 'string' }, format: { type: 'string' } },
  });
  if (values['state-file']) throw new UsageError('chat takes no --state-file: the chat layer starts every conversation from the zero state');
  const fields = requestFields(await generationValues(values));
  const thinking = values['think-mode'] ?? (values.think ? true : false);
  const model = await openModel(values);
  if (!model.hasVocab) throw new UsageError('chat needs --vocab (unless the model is byte-level)');
  const start = () => (values.system ? [{ role: 'system', content: values.system }] : []);
  let messages = start();
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: !!process.stdin.isTTY });
  const lines = rl[Symbol.asyncIterator]();  // buffers lines typed (or piped) ahead
  let current = null;  // AbortController of the reply being generated
  const interrupt = () => (current ? current.abort() : rl.close());
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);
  const dim = (text) => (process.stdout.isTTY ? `\x1b[2m${text}\x1b[0m` : text);
  for (;;) {
    process.stdout.write('User: ');
    const { value: line, done } = await lines.next();
    if (done) { process.stdout.write('\n'); break; }
    if (!process.stdin.isTTY) process.stdout.write(`${line}\n`);
    if (line.trim() === '/exit') break;
    const [cmd, arg] = line.trim().split(/\s+/, 2);
    if (cmd === '/reset') { messages = start(); console.log('(conversation reset)'); continue; }
    if (cmd === '/save' && arg) { await writeFile(arg, JSON.stringify(messages, null, 1)); console.log(`(conversation saved to ${arg})`); continue; }
    if (cmd === '/load' && arg) { messages = JSON.parse(await readFile(arg, 'utf8')); console.log(`(conversation loaded from ${arg})`); continue; }
    if (!line.trim()) continue;
    current = new AbortController();
    process.stdout.write('Assistant: ');
    let answer = '', thinkingOpen = false;
    try {
      const stream = await model.chat.completions.create({
        ...fields, messages: [...messages, { role: 'user', content: line }], thinking, format: values.format, stream: true, signal: current.signal,
      });
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta ?? {};
        if (delta.reasoning_content) {
          if (!thinkingOpen) process.stdout.write(dim('<think>'));
          thinkingOpen = true;
          process.stdout.write(dim(delta.reasoning_content));
        }
        if (delta.content) {
          if (thinkingOpen) process.stdout.write(dim('</think>\n'));
          thinkingOpen = false;
          process.stdout.write(delta.content);
          answer += delta.content;
        }
      }
    } catch (err) {
      if (err.name !== 'AbortError') throw err;
      process.stdout.write(' (stopped)');
    }
    if (thinkingOpen) process.stdout.write(dim('</think>'));
    current = null;
    messages.push({ role: 'user', content: line }, { role: 'assistant', content: answer });
    process.stdout.write('\n\n');
  }
  rl.close();
  await model.dispose();
}

async function serve(argv) {
  const { values } = parseArgs({
    args: argv, options: { ...modelFlags, port: { type: 'string', default: '8000' }, host: { type: 'string', default: '127.0.0.1' }, 'max-clients': { type: 'string', default: '16' } },
  });
  const port = Number(values.port), maxClients = Number(values['max-clients']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: '${values.port}' is not a port number`);
  if (!Number.isInteger(maxClients) || maxClients < 1) throw new UsageError(`--max-clients: '${values['max-clients']}' is not a positive integer`);
  const model = await openModel(values);
  if (!model.hasVocab) throw new UsageError('serve needs --vocab (unless the model is byte-level)');
  const { startServer } = await import('./chat/server.mjs');
  const server = await startServer(model, { port, host: values.host, maxClients });
  console.log(`serving ${model.name} at ${server.url}`);
  await new Promise((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
  await server.close();
  await model.dispose();
}

/** Bytes as MB with one decimal. */
const mbText = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;

async function convert(argv) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...cliFlags(LOAD_FLAGS), vocab: { type: 'string' } } });
  if (positionals.length !== 2) throw new UsageError('convert needs IN and OUT: node js/cli.mjs convert IN OUT [--quant auto|int8|q4|bf16|f32] [--vocab FILE]');
  const [input, output] = positionals;
  const loadOptions = schemaValues(values, LOAD_FLAGS);
  const { quant } = loadOptions;
  const started = performance.now();
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
  const metadata = { source: path.basename(input), converter: `rwkv-web ${version} convert${quant ? ` --quant ${quant}` : ''}` };
  if (values.vocab) metadata.vocabulary = path.basename(values.vocab);
  const inSize = /^https?:/.test(input) ? 0 : (await stat(input)).size;
  const { bytes, vocabBytes, dtype, peakBytes } = await convertModel(input, output, {
    ...loadOptions, vocab: values.vocab, metadata, onProgress: progressBar(),
  });
  console.log(`${input}${inSize ? ` (${mbText(inSize)})` : ''} -> ${output} (${mbText(bytes)}, ${dtype} weights` +
    `${vocabBytes ? ', vocabulary embedded' : ''}) in ${((performance.now() - started) / 1000).toFixed(1)} s, peak ${mbText(peakBytes)}`);
}

async function bench(argv) {
  // The bench builds and runs programs of a checkout: the package does not ship it.
  const script = new URL('./bench/bench.mjs', import.meta.url);
  if (!(await stat(script).catch(() => null))) throw new Error('the bench runs in a checkout of the repository (npm run bench), not from the installed package');
  const { main } = await import(script);
  await main(argv);
}

/** A half-life as the table prints it: 3 significant digits or so, "inf" for none. */
const halfLifeText = (v) => (!Number.isFinite(v) ? 'inf' : v < 10 ? v.toFixed(2) : v < 1000 ? v.toFixed(1) : v.toFixed(0));

async function inspect(argv) {
  const { values } = parseArgs({ args: argv, options: { ...modelFlags, text: { type: 'string' }, png: { type: 'string' }, json: { type: 'boolean' } } });
  if (values.text === undefined || values.text === '') throw new UsageError('--text is required');
  const model = await openModel(values);
  try {
    if (!model.hasVocab) throw new UsageError('inspect needs --vocab (unless the model is byte-level)');
    const { nLayer: L, nHead: H, headSize } = model.config;
    const session = await model.createSession();
    const tokens = [], tokenTexts = [], parts = [];
    for await (const piece of session.generate(values.text, { trace: true, maxTokens: 0 })) {
      tokens.push(...piece.tokens);
      tokenTexts.push(...piece.tokenTexts);
      parts.push(piece.trace);
    }
    const records = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (records.set(p, at), at + p.length), 0);
    const r = traceReader(records, model.config);
    const perHead = (f) => Array.from({ length: L }, (_, i) => Array.from({ length: H }, (_, h) => f(i, h)));
    const over = (i, h, pick) => pick(...Array.from({ length: r.tokens }, (_, t) => r.field(t, i, h, 'halfLife')));
    const last = r.tokens - 1;
    const halfLife = perHead((i, h) => r.field(last, i, h, 'halfLife'));
    if (values.png) {
      const { encodePng, scaleImage } = await import('./png.mjs');
      const cell = Math.max(1, Math.min(8, Math.floor(2048 / r.tokens)));
      const img = scaleImage(heatmap(records, model.config, 'stateNorm'), cell, Math.max(2, Math.min(8, Math.floor(1024 / (L * H)))));
      await writeFile(values.png, encodePng(img.width, img.height, img.rgba));
    }
    if (values.json) {
      const json = { tokens, tokenTexts, halfLife, halfLifeMin: perHead((i, h) => over(i, h, Math.min)), halfLifeMax: perHead((i, h) => over(i, h, Math.max)),
        stateNorm: perHead((i, h) => r.field(last, i, h, 'stateNorm')), rate: perHead((i, h) => r.field(last, i, h, 'rate')) };
      console.log(JSON.stringify(json, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)));
      return;
    }
    console.log(`${tokens.length} token${tokens.length === 1 ? '' : 's'}, ${L} layers x ${H} head${H === 1 ? '' : 's'} of ${headSize} x ${headSize}`);
    console.log('half-life in tokens of each head\'s mean decay at the last token (docs/inspect.md):');
    console.log(['layer', ...Array.from({ length: H }, (_, h) => `head ${h}`)].map((c) => c.padStart(8)).join(''));
    halfLife.forEach((row, i) => console.log([String(i), ...row.map(halfLifeText)].map((c) => c.padStart(8)).join('')));
    const all = halfLife.flat().filter(Number.isFinite);
    console.log(`shortest ${halfLifeText(Math.min(...all))}, longest ${halfLifeText(Math.max(...all))} tokens`);
    if (values.png) console.log(`heatmap of the state norms: ${values.png} (a column per token, a row per layer and head, each row scaled to its largest)`);
  } finally {
    await model.dispose();
  }
}

const commands = { logits, tokenize, generate, chat, serve, convert, inspect, bench };

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const run = commands[cmd];
  if (!run) {
    const help = !cmd || cmd === '--help' || cmd === '-h';
    if (help) console.log(usage);
    else console.error(`unknown command '${cmd}'\n${usage}`);
    process.exit(help ? 0 : 2);
  }
  try {
    await run(rest);
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(err instanceof UsageError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1);
  }
}

main();
