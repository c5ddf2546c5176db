// The prefix-state cache of the chat layer: the model state after a prompt's token prefix,
// so that a request that repeats a history prefills only what is new (docs/chat.md).
//
// In memory: an LRU of saveState() bytes within a byte budget, keyed by the token prefix.
// On the device (optional): the same entries in the cache folder (Node: <cache>/states/
// MODEL/) or in IndexedDB (browsers), bounded by the same budget, oldest dropped first,
// under a key of the model's weights (a fingerprint of its logits), so a state is never
// read into another model. A store that fails (full, unavailable) only loses its entries.
import { isNode } from '../host.mjs';

/** Two 32-bit hashes of int32 values as 16 hex digits (keys of entries, not security). */
export function tokenHash(values) {
  let a = 0x811c9dc5, b = 0x9e3779b9;
  for (const v of values) {
    a = Math.imul(a ^ v, 0x01000193) >>> 0;
    b = Math.imul(b ^ (v + 0x7f4a7c15), 0x85ebca6b) >>> 0;
    b ^= b >>> 13;
  }
  a = Math.imul(a ^ (a >>> 16), 0x7feb352d) >>> 0;
  b = Math.imul(b ^ (b >>> 15), 0x846ca68b) >>> 0;
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

const sameTokens = (a, b) => a.length === b.length && a.every((t, i) => t === b[i]);

// An entry as stored: [u32 token count][i32 tokens][state bytes].
function packEntry(tokens, state) {
  const out = new Uint8Array(4 + 4 * tokens.length + state.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, tokens.length, true);
  tokens.forEach((t, i) => view.setInt32(4 + 4 * i, t, true));
  out.set(state, 4 + 4 * tokens.length);
  return out;
}
function unpackEntry(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getUint32(0, true);
  if (4 + 4 * n > bytes.length) return null;
  const tokens = Array.from({ length: n }, (_, i) => view.getInt32(4 + 4 * i, true));
  return { tokens, state: bytes.slice(4 + 4 * n) };
}

// ---- Node: files in a folder, the oldest (by modification time) removed past the budget

async function folderStore(dir, budgetBytes) {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  await fs.mkdir(dir, { recursive: true });
  const file = (hash) => path.join(dir, `${hash}.state`);
  return {
    async get(hash) {
      try {
        const bytes = new Uint8Array(await fs.readFile(file(hash)));
        const now = new Date();
        await fs.utimes(file(hash), now, now);
        return bytes;
      } catch {
        return null;
      }
    },
    async put(hash, bytes) {
      const part = `${file(hash)}.${process.pid}.part`;
      await fs.writeFile(part, bytes);
      await fs.rename(part, file(hash));
      const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.state'));
      const files = await Promise.all(names.map(async (n) => ({ n, ...(await fs.stat(path.join(dir, n)).catch(() => ({ size: 0, mtimeMs: 0 }))) })));
      files.sort((x, y) => y.mtimeMs - x.mtimeMs);
      let total = 0;
      for (const f of files) {
        total += f.size;
        if (total > budgetBytes) await fs.rm(path.join(dir, f.n), { force: true });
      }
    },
  };
}

// ---- browsers: IndexedDB; `entries` holds {key, model, at, size} (read to find the least
// recently used without reading states), `bytes` the entries' bytes under the same key

const DB_NAME = 'rwkv-web-states';

function idbRequest(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function indexedDbStore(modelKey, budgetBytes) {
  const open = indexedDB.open(DB_NAME, 1);
  open.onupgradeneeded = () => {
    open.result.createObjectStore('entries', { keyPath: 'key' }).createIndex('model', 'model');
    open.result.createObjectStore('bytes');
  };
  const db = await idbRequest(open);
  const stores = (mode) => {
    const tx = db.transaction(['entries', 'bytes'], mode);
    return [tx.objectStore('entries'), tx.objectStore('bytes')];
  };
  return {
    async get(hash) {
      const key = `${modelKey}/${hash}`;
      const [entries, bytes] = stores('readwrite');
      const [entry, data] = await Promise.all([idbRequest(entries.get(key)), idbRequest(bytes.get(key))]);
      if (!entry || !data) return null;
      entries.put({ ...entry, at: Date.now() });
      return data;
    },
    async put(hash, data) {
      const key = `${modelKey}/${hash}`;
      const [entries, bytes] = stores('readwrite');
      entries.put({ key, model: modelKey, at: Date.now(), size: data.length });
      bytes.put(data, key);
      const all = await idbRequest(entries.index('model').getAll(modelKey));
      all.sort((x, y) => y.at - x.at);
      let total = 0;
      for (const e of all) {
        total += e.size;
        if (total > budgetBytes) {
          entries.delete(e.key);
          bytes.delete(e.key);
        }
      }
    },
  };
}

/**
 * The store of this host for a model (`modelKey`), bounded by `budgetBytes`; null where
 * there is none. options: {cacheDir} (Node; default: the library's cache folder).
 */
export async function openStateStore(modelKey, budgetBytes, options = {}) {
  try {
    if (isNode) {
      const { cacheFolder } = await import('../model-cache.mjs');
      const path = await import('node:path');
      return await folderStore(path.join(await cacheFolder(options), 'states', modelKey), budgetBytes);
    }
    if (typeof indexedDB === 'undefined') return null;
    return await indexedDbStore(modelKey, budgetBytes);
  } catch {
    return null;  // no storage here (a read-only folder, a private window)
  }
}

/**
 * States by token prefix. get(tokens) -> state bytes or null; put(tokens, bytes). `store`:
 * a promise of a store from openStateStore, or null (memory only).
 */
export class StateCache {
  #entries = new Map();  // hash -> {tokens, state}; in use order, the least recent first
  #used = 0;
  #budget;
  #store;

  constructor({ budgetBytes, store = null }) {
    this.#budget = budgetBytes;
    this.#store = store;
  }

  get enabled() { return this.#budget > 0; }
  /** Bytes held in memory. */
  get bytes() { return this.#used; }

  async get(tokens) {
    const hash = tokenHash(tokens);
    const hit = this.#entries.get(hash);
    if (hit && sameTokens(hit.tokens, tokens)) {
      this.#entries.delete(hash);
      this.#entries.set(hash, hit);
      return hit.state;
    }
    const store = await this.#store;
    const bytes = store && await store.get(hash).catch(() => null);
    const entry = bytes && unpackEntry(bytes);
    if (!entry || !sameTokens(entry.tokens, tokens)) return null;
    this.#remember(hash, entry);
    return entry.state;
  }

  async put(tokens, state) {
    if (state.length > this.#budget) return;
    const hash = tokenHash(tokens);
    this.#remember(hash, { tokens: Array.from(tokens), state });
    const store = await this.#store;
    await store?.put(hash, packEntry(tokens, state)).catch(() => {});
  }

  #remember(hash, entry) {
    const old = this.#entries.get(hash);
    if (old) {
      this.#used -= old.state.length;
      this.#entries.delete(hash);
    }
    this.#entries.set(hash, entry);
    this.#used += entry.state.length;
    for (const [h, e] of this.#entries) {
      if (this.#used <= this.#budget) break;
      this.#entries.delete(h);
      this.#used -= e.state.length;
    }
  }
}
