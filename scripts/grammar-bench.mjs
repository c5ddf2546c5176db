#!/usr/bin/env node
// Constrained decoding against free decoding (docs/grammar.md, "Speed"): the random model
// of the published 0.1B shape with the World vocabulary, generating with the grammars of
// response_format json_object and of a JSON Schema (js/chat/json-schema.mjs), natively
// and in wasm (one thread), each grammar's runs alternating with free ones in the same
// process (tools/grammar_bench.cpp). Reports tokens/s and the ratio to free decoding.
//   node scripts/grammar-bench.mjs [--skip-build] [--model FILE] [--vocab FILE] [--tokens 48]
//                                  [--rounds 5] [--builds native,wasm] [--json]
// Never part of `npm test`.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { defaultBenchModel, root } from '../js/bench/bench.mjs';
import { shapeConfig, writeRandomModel } from '../js/bench/random-model.mjs';
import { jsonObjectGrammar, schemaToGrammar } from '../js/chat/json-schema.mjs';

const usage = 'usage: node scripts/grammar-bench.mjs [--skip-build] [--model FILE] [--vocab FILE] [--tokens N] [--rounds R] [--builds native,wasm] [--json]';

const PEOPLE = {
  type: 'array', maxItems: 10,
  items: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 24 }, age: { type: 'integer', minimum: 0, maximum: 120 },
      email: { type: 'string', format: 'email' }, tags: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 4 },
    },
    required: ['name', 'age'],
  },
};

const { values } = parseArgs({
  options: {
    'skip-build': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    model: { type: 'string', default: defaultBenchModel },
    vocab: { type: 'string', default: path.join(root, '../shared/reference/vocab/rwkv_vocab_v20230424.txt') },
    tokens: { type: 'string', default: '48' }, rounds: { type: 'string', default: '5' },
    builds: { type: 'string', default: 'native,wasm' },
  },
});
if (values.help) {
  console.log(usage);
  process.exit(0);
}
const o = { build: !values['skip-build'], json: !!values.json, model: path.resolve(values.model), vocab: path.resolve(values.vocab),
  tokens: Number(values.tokens), rounds: Number(values.rounds), builds: values.builds.split(',') };
if (!existsSync(o.vocab)) throw new Error(`${o.vocab} is missing: pass --vocab (the World vocabulary, rwkv_vocab_v20230424.txt)`);
if (!existsSync(o.model)) {
  process.stderr.write(`creating ${path.relative(root, o.model)} (random weights, published 0.1B shape)...\n`);
  writeRandomModel(o.model, shapeConfig('0.1B'));
}
const dir = path.join(root, 'build/bench');
mkdirSync(dir, { recursive: true });
const grammars = { json_object: jsonObjectGrammar(), json_schema: schemaToGrammar(PEOPLE) };
const grammarArgs = Object.entries(grammars).flatMap(([name, text]) => {
  const file = path.join(dir, `${name}.gbnf`);
  writeFileSync(file, text);
  return ['--grammar', `${name}=${file}`];
});
if (o.build) {
  const env = { ...process.env, NODE_PATH: ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':') };
  const run = (args) => execFileSync(args[0], args.slice(1), { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  run(['bash', 'scripts/build.sh']);
  const jobs = String(os.cpus().length);
  if (o.builds.includes('native')) run(['cmake', '--build', 'build/native', '-j', jobs, '--target', 'rwkv_grammar_bench']);
  if (o.builds.includes('wasm')) run(['cmake', '--build', 'build/wasm', '-j', jobs, '--target', 'rwkv_grammar_bench']);
}
const programs = {
  native: [path.join(root, 'build/native/rwkv_grammar_bench')],
  wasm: [process.execPath, '--no-experimental-fetch', path.join(root, 'build/wasm/rwkv-grammar-bench.js')],
};
const results = { machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`,
  date: new Date().toISOString(), loadavg: os.loadavg()[0], model: path.basename(o.model) };
for (const build of o.builds) {
  const [cmd, ...pre] = programs[build];
  if (!existsSync(programs[build].at(-1))) throw new Error(`${programs[build].at(-1)} is missing: run without --skip-build`);
  const args = [...pre, o.model, o.vocab, ...grammarArgs, '--tokens', String(o.tokens), '--rounds', String(o.rounds), '--json'];
  process.stderr.write(`$ ${build}: ${path.basename(programs[build].at(-1))} ... (${o.rounds} rounds)\n`);
  const out = execFileSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] });
  results[build] = JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop());
}
writeFileSync(path.join(dir, 'grammar-results.json'), `${JSON.stringify(results, null, 2)}\n`);
if (o.json) {
  console.log(JSON.stringify(results, null, 2));
} else {
  console.log(`\n${results.machine}; load average ${results.loadavg.toFixed(1)}; ${o.tokens} tokens x ${o.rounds} rounds per mode`);
  console.log(`${'build'.padEnd(8)} ${'grammar'.padEnd(12)} ${'tokens/s'.padStart(9)} ${'ratio'.padStart(7)} ${'setup ms'.padStart(9)}`);
  for (const build of o.builds)
    for (const m of results[build].modes)
      console.log(`${build.padEnd(8)} ${m.name.padEnd(12)} ${m.tokens_per_s.toFixed(2).padStart(9)} ${m.ratio.toFixed(3).padStart(7)} ${m.setup_ms.toFixed(1).padStart(9)}`);
}
