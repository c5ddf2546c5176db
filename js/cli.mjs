#!/usr/bin/env node
// rwkv-web command line: runs the wasm core under Node.
//   node js/cli.mjs logits --model FILE --tokens 1,2,3 --out OUT.f32 [--mode step|prefill] [--state-out STATE.f32]
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { loadCore, modelFromFile } from './core.mjs';

const usage = `usage:
  node js/cli.mjs logits --model FILE --tokens 1,2,3 --out OUT.f32 [--mode step|prefill] [--state-out STATE.f32]
      writes the logits after every token as raw little-endian float32 rows (T x V),
      and optionally the final state (SPEC layout)`;

class UsageError extends Error {}

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
      mode: { type: 'string', default: 'step' }, 'state-out': { type: 'string' },
    },
  });
  if (!values.model || !values.out) throw new UsageError('--model and --out are required');
  if (values.mode !== 'step' && values.mode !== 'prefill') throw new UsageError(`--mode must be step or prefill, not '${values.mode}'`);
  const tokens = parseTokens(values.tokens);
  const core = await loadCore();
  const model = await modelFromFile(core, values.model);
  const state = model.newState();
  try {
    const V = model.config().vocabSize;
    const rows = new Float32Array(tokens.length * V);
    if (values.mode === 'step') {
      tokens.forEach((t, i) => rows.set(model.step(state, t), i * V));
    } else {
      rows.set(model.prefillAll(state, Int32Array.from(tokens)));
    }
    await writeFile(values.out, new Uint8Array(rows.buffer));
    if (values['state-out']) await writeFile(values['state-out'], Uint8Array.from(new Uint8Array(state.data().slice().buffer)));
  } finally {
    state.delete();
    model.delete();
  }
}

const commands = { logits };

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
