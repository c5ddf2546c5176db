#!/usr/bin/env node
// The prefill the prefix-state cache saves over a ten-turn chat (docs/chat.md): each turn
// sends the whole history to model.chat.completions.create, as an OpenAI client does, and
// the table gives the prompt's tokens against the tokens fed (prompt less
// usage.prompt_tokens_details.cached_tokens). A model without the cache (stateCache: 0)
// answers the same turns as a check: its replies must be the same.
//   node scripts/chat-cache-check.mjs [--model FILE] [--vocab FILE] [--turns 10] [--max-tokens 40] [--json]
// Default model: the fixture with a vocabulary (build/fixtures/fix-L3-C64-H2.rwkv).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { load } from '../js/rwkv.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: path.join(root, 'build/fixtures/fix-L3-C64-H2.rwkv') }, vocab: { type: 'string' },
    turns: { type: 'string', default: '10' }, 'max-tokens': { type: 'string', default: '40' }, json: { type: 'boolean' },
  },
});
const QUESTIONS = [
  'Hello! Who are you?', 'What is an RNN?', 'How is RWKV different from a transformer?', 'Why is its state of a fixed size?',
  'What does that mean for long chats?', 'Can it run in a browser?', 'How fast is it there?', 'What is WebAssembly SIMD?',
  'Which model should I start with?', 'Thanks, that is all.',
];
const turns = Number(values.turns), maxTokens = Number(values['max-tokens']);
const opts = { vocab: values.vocab };
const cached = await load(values.model, { ...opts, cache: false });  // states in memory only: a fresh run
const plain = await load(values.model, { ...opts, stateCache: 0 });
const rows = [];
try {
  const messages = [{ role: 'system', content: 'You are a helpful assistant. Answer briefly.' }];
  for (let t = 0; t < turns; ++t) {
    messages.push({ role: 'user', content: QUESTIONS[t % QUESTIONS.length] });
    const req = { messages, max_tokens: maxTokens, seed: t };
    const r = await cached.chat.completions.create(req);
    const check = await plain.chat.completions.create(req);
    if (check.choices[0].message.content !== r.choices[0].message.content) throw new Error(`turn ${t + 1}: the cached state gave another reply`);
    const { prompt_tokens: prompt, completion_tokens: completion, prompt_tokens_details: { cached_tokens: saved } } = r.usage;
    rows.push({ turn: t + 1, promptTokens: prompt, cachedTokens: saved, prefilledTokens: prompt - saved, completionTokens: completion });
    messages.push({ role: 'assistant', content: r.choices[0].message.content });
  }
} finally {
  await cached.dispose();
  await plain.dispose();
}
const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
const total = { promptTokens: sum('promptTokens'), prefilledTokens: sum('prefilledTokens'), cachedTokens: sum('cachedTokens') };
if (values.json) {
  console.log(JSON.stringify({ model: path.basename(values.model), turns: rows, total }, null, 2));
} else {
  console.log(`${path.basename(values.model)}: ${turns} turns, replies of at most ${maxTokens} tokens (the same with and without the cache)`);
  console.log(`${'turn'.padStart(4)} ${'prompt'.padStart(7)} ${'cached'.padStart(7)} ${'fed'.padStart(5)} ${'reply'.padStart(6)}`);
  for (const r of rows)
    console.log(`${String(r.turn).padStart(4)} ${String(r.promptTokens).padStart(7)} ${String(r.cachedTokens).padStart(7)} ${String(r.prefilledTokens).padStart(5)} ${String(r.completionTokens).padStart(6)}`);
  console.log(`total: ${total.promptTokens} prompt tokens, ${total.prefilledTokens} fed (${(100 * total.cachedTokens / total.promptTokens).toFixed(1)} % from the cache; `
    + `${(total.promptTokens / total.prefilledTokens).toFixed(2)}x less prefill)`);
}
