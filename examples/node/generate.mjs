// Node: load a model and stream a reply.   node generate.mjs MODEL [VOCAB] [PROMPT]
import { load } from 'rwkv-web';

const [modelPath, vocab, prompt = 'User: What is RWKV?\n\nAssistant:'] = process.argv.slice(2);
const model = await load(modelPath, { vocab });
const session = await model.createSession();
for await (const piece of session.generate(prompt, { stop: ['\n\n'], maxTokens: 64, seed: 1 }))
  process.stdout.write(piece);
process.stdout.write('\n');
await model.dispose();
