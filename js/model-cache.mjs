// Converted models kept on this device: what was loaded, not what was downloaded. After a
// model from a URL is loaded (converted as `quant` asked, its vocabulary included), its
// .rwkv image (docs/format.md) is stored under a key made of the URL and the quant; the
// next load of the same URL with the same quant reads those bytes instead of downloading
// and converting again (a 2.9B .pth read as int8: 3.1 GB from storage instead of 5.9 GB
// from the network).
//
// Storage: the Origin Private File System in browsers (a folder of the origin's own,
// written through sync access handles in workers), a folder in Node (the download cache
// folder, `models/` in it). An entry is written as NAME.part and renamed when complete,
// so a cut-off write is never taken for a model. A full disk or quota is reported to the
// caller, who goes on with the model uncached.
import { isNode } from './host.mjs';

const OPFS_DIR = 'rwkv-web-models';

async function keyName(url, quant) {
  const data = new TextEncoder().encode(`${url}\n${quant || 'as-in-file'}`);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  const hex = Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
  const base = url.split('?')[0].split('/').pop().replace(/[^\w.-]/g, '_').slice(-60);
  return `${hex}-${base}.${quant || 'as-in-file'}.rwkv`;
}

// ---- Node: a folder

/** Node: the library's cache folder (options.cacheDir, $RWKV_WEB_CACHE or ~/.cache/rwkv-web). */
export async function cacheFolder(options = {}) {
  const os = await import('node:os');
  const path = await import('node:path');
  return options.cacheDir ?? process.env.RWKV_WEB_CACHE ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'rwkv-web');
}

async function nodeFolder(options) {
  const path = await import('node:path');
  return path.join(await cacheFolder(options), 'models');
}

const nodeStore = {
  async lookup(dir, name) {
    const path = await import('node:path');
    const { stat } = await import('node:fs/promises');
    const file = path.join(dir, name);
    try {
      await stat(file);
      return { path: file };
    } catch {
      return null;
    }
  },
  async writer(dir, name) {
    const fs = await import('node:fs/promises');
    const path = await import('node:path');
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, name), part = `${file}.${process.pid}.part`;
    const fh = await fs.open(part, 'w');
    return {
      write: async (bytes) => {
        for (let done = 0; done < bytes.length;) done += (await fh.write(bytes, done)).bytesWritten;
      },
      commit: async () => { await fh.close(); await fs.rename(part, file); },
      abort: async () => { await fh.close().catch(() => {}); await fs.rm(part, { force: true }); },
    };
  },
  async clear(dir) {
    const fs = await import('node:fs/promises');
    await fs.rm(dir, { recursive: true, force: true });
  },
};

// ---- browsers: the Origin Private File System

async function opfsDir(create = true) {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(OPFS_DIR, { create });
}

const opfsStore = {
  async lookup(dir, name) {
    try {
      return { opfs: await dir.getFileHandle(name), name };
    } catch {
      return null;
    }
  },
  async writer(dir, name) {
    const part = await dir.getFileHandle(`${name}.part`, { create: true });
    // Sync access handles (dedicated workers) write straight from the wasm heap; pages
    // use a writable stream.
    let sync = null, stream = null, at = 0;
    if (typeof part.createSyncAccessHandle === 'function' && typeof WorkerGlobalScope !== 'undefined') sync = await part.createSyncAccessHandle();
    else stream = await part.createWritable();
    const close = async () => {
      if (sync) sync.close();
      else await stream.close();
    };
    return {
      write: async (bytes) => {
        if (sync) {
          for (let done = 0; done < bytes.length;) done += sync.write(bytes.subarray(done), { at: at + done });
          at += bytes.length;
        } else {
          await stream.write(bytes.slice());  // a copy: the stream may read it later, and heap views move
        }
      },
      commit: async () => {
        if (sync) sync.flush();
        await close();
        if (typeof part.move === 'function') {
          await part.move(dir, name);
        } else {  // no rename in this browser: copy
          const out = await (await dir.getFileHandle(name, { create: true })).createWritable();
          await (await part.getFile()).stream().pipeTo(out);
          await dir.removeEntry(`${name}.part`);
        }
      },
      abort: async () => {
        await close().catch(() => {});
        await dir.removeEntry(`${name}.part`).catch(() => {});
      },
    };
  },
  async clear() {
    const root = await navigator.storage.getDirectory();
    await root.removeEntry(OPFS_DIR, { recursive: true }).catch(() => {});
  },
};

/**
 * The model cache for `options` ({cache, cacheDir}), or null when caching is off or this
 * host has no storage for it. {lookup(url, quant) -> a source description ({path}, or
 * {opfs: FileSystemFileHandle}: sources.mjs) or null; writer(url, quant) -> {write(bytes), commit(), abort()}}.
 */
export async function openModelCache(options = {}) {
  if (options.cache === false) return null;
  let dir, store;
  if (isNode) {
    dir = await nodeFolder(options);
    store = nodeStore;
  } else {
    if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return null;
    try {
      dir = await opfsDir();
    } catch {
      return null;  // storage not available to this context (a private window, a sandbox)
    }
    store = opfsStore;
  }
  return {
    lookup: async (url, quant) => store.lookup(dir, await keyName(url, quant)),
    writer: async (url, quant) => store.writer(dir, await keyName(url, quant)),
  };
}

/** Empties the model cache (the converted models kept on this device). */
export async function clearModelCache(options = {}) {
  if (isNode) await nodeStore.clear(await nodeFolder(options));
  else if (typeof navigator !== 'undefined' && navigator.storage?.getDirectory) await opfsStore.clear();
}

/** True when an error means the storage is full (quota), for a clear message. */
export function isQuotaError(err) {
  return err?.name === 'QuotaExceededError' || err?.code === 'ENOSPC' || /quota|no space/i.test(err?.message ?? '');
}

/** True when a model from `url` loaded with `quant` is kept on this device (options: {cacheDir}). */
export async function isModelKept(url, quant, options = {}) {
  const cache = await openModelCache(options);
  return !!(cache && await cache.lookup(url, quant));
}
