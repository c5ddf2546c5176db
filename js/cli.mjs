#!/usr/bin/env node
// rwkv-web command line: runs the wasm core under Node.
//   node js/cli.mjs logits --model FILE --tokens 1,2,3 --out OUT.f32 [--mode step|prefill] [--state-out STATE.f32]
import { parseArgs } from 'node:util';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { checked, loadCore, modelFromFile, quantCode } from './core.mjs';
import { load, defaultGenerateOptions } from './rwkv.mjs';

const usage = `usage:
  node js/cli.mjs logits --model FILE --tokens 1,2,3 --out OUT.f32 [--mode step|prefill] [--state-out STATE.f32]
      [--quant int8|q4|bf16|f32]
      writes the logits after every token as raw little-endian float32 rows (T x V),
      and optionally the final state (layout: docs/computation.md#the-state)
  node js/cli.mjs tokenize --vocab FILE --text TEXT
      prints the token ids as a JSON array
  node js/cli.mjs generate --model FILE|URL [--vocab FILE|URL] --prompt TEXT [--max-tokens N]
      [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--presence-penalty X]
      [--frequency-penalty X] [--penalty-decay D] [--stop STR]... [--seed S] [--ban ID,ID...]
      [--state-file FILE] [--no-cache] [--quant int8|q4|bf16|f32]
      streams the generated text to stdout
  node js/cli.mjs chat --model FILE|URL --vocab FILE|URL [sampling options as for generate]
      interactive chat (User:/Assistant:), the model state kept between turns;
      /reset starts over, /save FILE and /load FILE keep a conversation's state, /exit ends
  node js/cli.mjs convert IN OUT [--quant int8|q4|bf16|f32] [--vocab FILE]
      writes the model IN (.pth, .safetensors or .rwkv) as a .rwkv file (docs/format.md):
      weights as --quant converts them (default: as they are), the vocabulary embedded
  node js/cli.mjs bench [--model FILE] [--threads 1,2] [--precisions keep,int8,q4] [--json] [--skip-build]
      decode and prefill tokens/s, natively and as wasm, bytes read per token against the
      measured memory bandwidth, peak memory (docs/bench.md); the model defaults to a random
      one of the published 0.1B shape, made when absent`;

class UsageError extends Error {}

/** --quant: how to hold the weight matrices (see quantCode in core.mjs); '' keeps them. */
function quantOption(values) {
  const quant = values.quant ?? '';
  try {
    quantCode(quant);
  } catch (err) {
    throw new UsageError(`--quant: ${err.message}`);
  }
  return quant;
}

function parseTokens(text) {
  if (!text) throw new UsageError('--tokens is required (comma-separated ids)');
  return text.split(',').map((s) => {
    const v = Number(s.trim());
    if (!Number.isInteger(v)) throw new UsageError(`--tokens: '${s}' is not an integer token id`);
    return v;
  });
}

async function logits(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, tokens: { type: 'string' }, out: { type: 'string' },
      mode: { type: 'string', default: 'step' }, 'state-out': { type: 'string' }, quant: { type: 'string' },
    },
  });
  if (!values.model || !values.out) throw new UsageError('--model and --out are required');
  if (values.mode !== 'step' && values.mode !== 'prefill') throw new UsageError(`--mode must be step or prefill, not '${values.mode}'`);
  const tokens = parseTokens(values.tokens);
  const core = await loadCore();
  const model = await modelFromFile(core, values.model, undefined, quantOption(values));
  const state = model.newState();
  try {
    const V = model.config().vocabSize;
    const rows = new Float32Array(tokens.length * V);
    if (values.mode === 'step') {
      tokens.forEach((t, i) => rows.set(model.step(state, t), i * V));
    } else {
      rows.set(checked(model.prefillAll(state, Int32Array.from(tokens))));
    }
    await writeFile(values.out, new Uint8Array(rows.buffer));
    if (values['state-out']) await writeFile(values['state-out'], Uint8Array.from(new Uint8Array(state.data().slice().buffer)));
  } finally {
    state.delete();
    model.delete();
  }
}

const samplingOptions = {
  model: { type: 'string' }, vocab: { type: 'string' }, 'max-tokens': { type: 'string' },
  temperature: { type: 'string' }, 'top-p': { type: 'string' }, 'top-k': { type: 'string' }, 'min-p': { type: 'string' },
  'presence-penalty': { type: 'string' }, 'frequency-penalty': { type: 'string' }, 'penalty-decay': { type: 'string' },
  stop: { type: 'string', multiple: true }, seed: { type: 'string' }, 'no-cache': { type: 'boolean' },
  'state-file': { type: 'string' }, ban: { type: 'string' }, quant: { type: 'string' },
};

function number(values, name, { integer = false } = {}) {
  const text = values[name];
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v))) throw new UsageError(`--${name}: '${text}' is not ${integer ? 'an integer' : 'a number'}`);
  return v;
}

function generateOptions(values, defaults = {}) {
  const opts = { ...defaults };
  const set = (key, v) => { if (v !== undefined) opts[key] = v; };
  set('maxTokens', number(values, 'max-tokens', { integer: true }));
  set('temperature', number(values, 'temperature'));
  set('topP', number(values, 'top-p'));
  set('topK', number(values, 'top-k', { integer: true }));
  set('minP', number(values, 'min-p'));
  set('presencePenalty', number(values, 'presence-penalty'));
  set('frequencyPenalty', number(values, 'frequency-penalty'));
  set('penaltyDecay', number(values, 'penalty-decay'));
  set('seed', number(values, 'seed', { integer: true }));
  if (values.ban) opts.bannedTokens = parseTokens(values.ban);
  if (values.stop) opts.stop = [...(opts.stop ?? []), ...values.stop.map((s) => s.replace(/\\n/g, '\n'))];
  return opts;
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

async function openModel(values) {
  if (!values.model) throw new UsageError('--model is required');
  return load(values.model, { vocab: values.vocab, cache: !values['no-cache'], onProgress: progressBar(), quant: quantOption(values) });
}

async function tokenize(argv) {
  const { values } = parseArgs({ args: argv, options: { vocab: { type: 'string' }, text: { type: 'string' } } });
  if (!values.vocab || values.text === undefined) throw new UsageError('--vocab and --text are required');
  const core = await loadCore();
  const tok = new core.Tokenizer();
  try {
    checked(tok.loadVocab(await readFile(values.vocab)));
    console.log(JSON.stringify(Array.from(checked(tok.encode(values.text)))));
  } finally {
    tok.delete();
  }
}

async function generate(argv) {
  const { values } = parseArgs({ args: argv, options: { ...samplingOptions, prompt: { type: 'string' } } });
  if (values.prompt === undefined) throw new UsageError('--prompt is required');
  const opts = generateOptions(values);
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
  const { values } = parseArgs({ args: argv, options: samplingOptions });
  const opts = generateOptions(values, { stop: ['\n\n'], maxTokens: 500 });
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
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, options: { quant: { type: 'string' }, vocab: { type: 'string' } },
  });
  if (positionals.length !== 2) throw new UsageError('convert needs IN and OUT: node js/cli.mjs convert IN OUT [--quant int8|q4|bf16|f32] [--vocab FILE]');
  const [input, output] = positionals;
  const quant = quantOption(values);
  const started = performance.now();
  const vocab = values.vocab ? await readFile(values.vocab) : new Uint8Array(0);
  const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
  const metadata = { source: path.basename(input), converter: `rwkv-web ${version} convert${quant ? ` --quant ${quant}` : ''}` };
  if (values.vocab) metadata.vocabulary = path.basename(values.vocab);
  const inSize = (await stat(input)).size;
  const core = await loadCore();
  const model = await modelFromFile(core, input, progressBar(), quant);
  const tmp = `${output}.tmp`;
  try {
    // The parts lie in the wasm heap (header, then the weights where the model holds them):
    // streamed to the file without another copy.
    const { size, parts, vocabBytes } = checked(model.fileParts(vocab, JSON.stringify(metadata)));
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
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    await rename(tmp, output);
    const c = model.config();
    console.log(`${input} (${mbText(inSize)}) -> ${output} (${mbText(size)}, ${c.dtype} weights` +
      `${vocabBytes ? ', vocabulary embedded' : ''}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    model.delete();
  }
}

async function bench(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, threads: { type: 'string', default: '1,2' }, precisions: { type: 'string', default: 'keep,int8,q4' },
      json: { type: 'boolean' }, 'skip-build': { type: 'boolean' }, 'decode-runs': { type: 'string' }, 'prefill-runs': { type: 'string' },
    },
  });
  const { buildBench, defaultBenchModel, formatReport, runBench } = await import('./bench.mjs');
  const threads = values.threads.split(',').map(Number);
  if (!threads.every((n) => Number.isInteger(n) && n >= 1)) throw new UsageError(`--threads: '${values.threads}' is not a list of thread counts`);
  const model = values.model ?? defaultBenchModel;
  if (!values.model) {
    const { makeBenchModel } = await import('../scripts/make-bench-model.mjs');
    makeBenchModel(model);
  }
  if (!values['skip-build']) buildBench();
  const results = runBench({
    model, threads, precisions: values.precisions.split(','),
    decodeRuns: number(values, 'decode-runs', { integer: true }), prefillRuns: number(values, 'prefill-runs', { integer: true }),
  });
  console.log(values.json ? JSON.stringify(results, null, 2) : formatReport(results));
}

const commands = { logits, tokenize, generate, chat, convert, bench };

async function main() {
  const [cmd, ...rest] = process.argv.slice(2);
  const run = commands[cmd];
  if (!run) {
    console.error(cmd && cmd !== '--help' ? `unknown command '${cmd}'\n${usage}` : usage);
    process.exit(cmd && cmd !== '--help' ? 2 : 0);
  }
  try {
    await run(rest);
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(err instanceof UsageError || err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 2 : 1);
  }
}

main();
