#!/usr/bin/env node
// rwkv-web command line. Every command is a user of the public library (rwkv.mjs): the
// model runs in its worker as in any Node script, and the options, their flags, ranges
// and help come from the options schema (options.mjs).
import { parseArgs } from 'node:util';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { load, loadVocab } from './rwkv.mjs';
import { GENERATE_OPTIONS, LOAD_OPTIONS, PRESETS, cliFlags, flagHelp, parseFlags } from './options.mjs';
import { STATE_HEADER_BYTES } from './state-format.mjs';

const LOAD_FLAGS = LOAD_OPTIONS.filter((o) => o.name !== 'cacheDir');

const usage = `usage:
  node js/cli.mjs generate --model FILE|URL [--vocab FILE|URL] --prompt TEXT [options]
      streams the generated text to stdout
  node js/cli.mjs chat --model FILE|URL [--vocab FILE|URL] [options]
      interactive chat (User:/Assistant:), the model state kept between turns;
      /reset starts over, /save FILE and /load FILE keep a conversation's state, /exit ends
  node js/cli.mjs logits --model FILE --tokens 1,2,3 --out OUT.f32 [--mode step|prefill] [--state-out STATE.f32]
      writes the logits after every token as raw little-endian float32 rows (T x V), and
      optionally the final state as raw floats (docs/state-format.md, without the header)
  node js/cli.mjs tokenize --vocab FILE --text TEXT
      prints the token ids as a JSON array
  node js/cli.mjs convert IN OUT [--quant int8|q4|bf16|f32] [--vocab FILE]
      writes the model IN (.pth, .safetensors or .rwkv) as a .rwkv file (docs/format.md):
      weights as --quant converts them (default: as they are), the vocabulary embedded
  node js/cli.mjs bench [--shape 0.1B|0.4B|1.5B|2.9B] [--quick] [--rounds N] [--threads 1,2] [--json] ...
      our runtime natively, under Node and in Chromium against llama.cpp (native, and wasm
      through wllama) on the same random weights, measured in the same run (docs/bench.md;
      bench --help for every option)

  generation options (generate, chat):
${flagHelp(GENERATE_OPTIONS)}
      --state-file FILE         start from a state-tuning file (blocks.N.att.time_state)
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
  const { values } = parseArgs({ args: argv, options: generationFlags });
  const opts = { ...PRESETS.chat, ...await generationValues(values) };
  const model = await openModel(values);
  if (!model.hasVocab) throw new UsageError('chat needs --vocab (unless the model is byte-level)');
  const session = await model.createSession();
  if (values['state-file']) await session.loadStateFile(values['state-file']);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: !!process.stdin.isTTY });
  const lines = rl[Symbol.asyncIterator]();  // buffers lines typed (or piped) ahead
  let current = null;  // AbortController of the reply being generated
  let separator = '';
  const interrupt = () => (current ? current.abort() : rl.close());
  rl.on('SIGINT', interrupt);
  process.on('SIGINT', interrupt);
  for (;;) {
    process.stdout.write('User: ');
    const { value: line, done } = await lines.next();
    if (done) { process.stdout.write('\n'); break; }
    if (!process.stdin.isTTY) process.stdout.write(`${line}\n`);
    if (line.trim() === '/exit') break;
    const [cmd, arg] = line.trim().split(/\s+/, 2);
    if (cmd === '/reset') { await session.reset(); separator = ''; console.log('(conversation reset)'); continue; }
    if (cmd === '/save' && arg) { await writeFile(arg, await session.saveState()); console.log(`(state saved to ${arg})`); continue; }
    if (cmd === '/load' && arg) { await session.restoreState(await readFile(arg)); console.log(`(state loaded from ${arg})`); continue; }
    if (!line.trim()) continue;
    // Chat text never holds blank lines: they would end the turn.
    const text = line.replace(/\r/g, '').replace(/\n+/g, '\n').trim();
    current = new AbortController();
    process.stdout.write('Assistant:');
    // A reply that did not end in the blank line (max tokens, abort) gets one first.
    const gen = session.generate(`${separator}User: ${text}\n\nAssistant:`, { ...opts, signal: current.signal });
    try {
      for await (const piece of gen) process.stdout.write(piece);
    } catch (err) {
      if (err.name !== 'AbortError') throw err;
      process.stdout.write(' (stopped)');
    }
    current = null;
    separator = (await gen.result).stopReason === 'stop' ? '' : '\n\n';
    process.stdout.write('\n\n');
  }
  rl.close();
  await model.dispose();
}

/** Bytes as MB with one decimal. */
const mbText = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;

async function convert(argv) {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...cliFlags(LOAD_FLAGS), vocab: { type: 'string' } } });
  if (positionals.length !== 2) throw new UsageError('convert needs IN and OUT: node js/cli.mjs convert IN OUT [--quant int8|q4|bf16|f32] [--vocab FILE]');
  const [input, output] = positionals;
  const loadOptions = schemaValues(values, LOAD_FLAGS);
  const { quant } = loadOptions;
  const started = performance.now();
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
  const metadata = { source: path.basename(input), converter: `rwkv-web ${version} convert${quant ? ` --quant ${quant}` : ''}` };
  if (values.vocab) metadata.vocabulary = path.basename(values.vocab);
  const inSize = (await stat(input)).size;
  const model = await load(input, { ...loadOptions, onProgress: progressBar() });
  try {
    const { bytes, vocabBytes, dtype } = await model.save(output, { vocab: values.vocab, metadata });
    console.log(`${input} (${mbText(inSize)}) -> ${output} (${mbText(bytes)}, ${dtype} weights` +
      `${vocabBytes ? ', vocabulary embedded' : ''}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await model.dispose();
  }
}

async function bench(argv) {
  // The bench builds and runs programs of a checkout: the package does not ship it.
  const script = new URL('./bench/bench.mjs', import.meta.url);
  if (!(await stat(script).catch(() => null))) throw new Error('the bench runs in a checkout of the repository (npm run bench), not from the installed package');
  const { main } = await import(script);
  await main(argv);
}

const commands = { logits, tokenize, generate, chat, convert, bench };

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
