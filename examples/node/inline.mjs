// No worker: the engine runs in this thread (`worker: false`). Also a vocabulary on its
// own, and the logits of every token of a prompt.   node inline.mjs MODEL [VOCAB]
import { load, loadVocab } from 'rwkv-web';

const [modelPath, vocabPath] = process.argv.slice(2);
const model = await load(modelPath, { vocab: vocabPath, worker: false, threads: 1 });
let ids = [72, 105];  // "Hi" for a byte-level model
if (vocabPath) {
  const vocab = await loadVocab(vocabPath, { worker: false });
  ids = await vocab.tokenize('Hello there');
  await vocab.dispose();
}
const session = await model.createSession();
const logits = await session.prefill(ids, { all: true });  // (T, V), row after row
const V = model.config.vocabSize;
const best = ids.map((_, t) => {
  const row = logits.subarray(t * V, (t + 1) * V);
  return row.indexOf(Math.max(...row));
});
console.log(JSON.stringify({ tokens: ids, argmax: best, threads: model.runtime.threads }));
await model.dispose();
