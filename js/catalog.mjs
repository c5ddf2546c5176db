// The published RWKV-7 models, for menus, shortcuts and the benchmark's random models:
// the shapes of the published sizes, and the G1 checkpoints (BlinkDL/rwkv7-g1 on Hugging
// Face) with file name, URL and download size. The file names are the ones published (the
// newest "g1a" of each size when this list was made); see `confirmed`. Memory per
// precision is not listed here: the core plans it from the shape (planShapes in rwkv.mjs).

/**
 * The published RWKV-7 shapes (World / G1 checkpoints): L layers, C embedding (head size
 * 64, F = 4C, vocabulary 65536), Dw/Da/Dv/Dg the ranks of the decay, a, v and gate LoRAs.
 */
export const SHAPES = Object.freeze({
  '0.1B': Object.freeze({ L: 12, C: 768, Dw: 64, Da: 64, Dv: 32, Dg: 128 }),
  '0.4B': Object.freeze({ L: 24, C: 1024, Dw: 64, Da: 64, Dv: 32, Dg: 128 }),
  '1.5B': Object.freeze({ L: 24, C: 2048, Dw: 96, Da: 96, Dv: 64, Dg: 256 }),
  '2.9B': Object.freeze({ L: 32, C: 2560, Dw: 96, Da: 96, Dv: 64, Dg: 320 }),
});

/** A shape of SHAPES as the core's dimensions (planShapes in rwkv.mjs takes these). */
export function shapeDims(shape) {
  const s = SHAPES[shape];
  if (!s) throw new Error(`unknown shape '${shape}': use ${Object.keys(SHAPES).join(', ')}`);
  return { nLayer: s.L, nEmbd: s.C, headSize: 64, ffnSize: 4 * s.C, vocabSize: 65536, loraW: s.Dw, loraA: s.Da, loraV: s.Dv, loraG: s.Dg };
}

const HF = 'https://huggingface.co/BlinkDL/rwkv7-g1/resolve/main/';

/**
 * {id, name, shape (a key of SHAPES), file, url, bytes (the .pth download), confirmed}
 * confirmed: the file name and size were found in more than one independent place;
 * false means the name is known but the size is SPEC's rounded figure.
 */
export const G1_MODELS = Object.freeze([
  { id: 'g1a-0.1b', name: 'RWKV-7 G1a 0.1B', shape: '0.1B', file: 'rwkv7-g1a-0.1b-20250728-ctx4096.pth', bytes: 382_000_000, confirmed: false },
  { id: 'g1a-0.4b', name: 'RWKV-7 G1a 0.4B', shape: '0.4B', file: 'rwkv7-g1a-0.4b-20250905-ctx4096.pth', bytes: 901_776_757, confirmed: true },
  { id: 'g1a-1.5b', name: 'RWKV-7 G1a 1.5B', shape: '1.5B', file: 'rwkv7-g1a-1.5b-20250922-ctx4096.pth', bytes: 3_060_000_000, confirmed: false },
  { id: 'g1a-2.9b', name: 'RWKV-7 G1a 2.9B', shape: '2.9B', file: 'rwkv7-g1a-2.9b-20250924-ctx4096.pth', bytes: 5_896_274_949, confirmed: true },
].map((m) => Object.freeze({ ...m, url: HF + m.file })));

/** The World vocabulary the G1 models use. */
export const WORLD_VOCAB_URL = 'https://raw.githubusercontent.com/BlinkDL/ChatRWKV/main/tokenizer/rwkv_vocab_v20230424.txt';

/** The catalog entry of an id ('g1a-1.5b') or a file name, or undefined. */
export function findModel(idOrFile) {
  return G1_MODELS.find((m) => m.id === idOrFile || m.file === idOrFile);
}
