// Where model and vocabulary bytes come from: a URL (fetch, streamed, optionally
// cached), a File/Blob, an ArrayBuffer/typed array, (Node) a file path, or a file of the
// model cache (OPFS). Each is opened as {size, chunks} so the caller can write the chunks
// straight to their final place (the wasm heap) without a second copy of the file; files
// (Node's, and OPFS's in a worker) also read straight into the caller's memory (readInto).
import { AbortError, LoadError } from './errors.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';
const CACHE_NAME = 'rwkv-web-files-v1';

/** The forms a source can take after crossing postMessage. */
export function describeSource(source) {
  if (typeof source === 'string' || source instanceof URL) {
    const s = String(source);
    return /^(https?|blob|data):/i.test(s) || !isNode ? { url: new URL(s, globalThis.location?.href).href } : { path: s };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { blob: source, name: source.name };
  if (source instanceof ArrayBuffer) return { bytes: source };
  if (ArrayBuffer.isView(source)) {
    const copy = source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength);
    return { bytes: copy };
  }
  if (source && typeof source === 'object' && ('url' in source || 'path' in source || 'bytes' in source || 'blob' in source)) return source;
  throw new TypeError('source must be a URL, a file path (Node), a File/Blob, an ArrayBuffer or a typed array');
}

// The chunks of a ReadableStream; a consumer that stops early cancels the stream.
async function* streamChunks(stream, signal) {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      if (signal?.aborted) throw new AbortError('the download was aborted');
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

// A file read in order: readInto(view) fills the start of `view` with the next bytes
// (read(view, at) reads at offset `at`) and resolves to how many; chunks (chunksOf) for the
// readers that take chunks. Closed after its last byte, on a failed read, or by cancel().
// `what` names the file in errors.
function fileReader({ size, name, what, read, closeFile, signal, abortMessage }) {
  let pos = 0, closed = false;
  const close = async () => {
    if (!closed) {
      closed = true;
      await closeFile();
    }
  };
  const readInto = async (view) => {
    if (signal?.aborted) throw new AbortError(abortMessage);
    const want = Math.min(view.length, size - pos);
    if (want === 0) return 0;
    let n;
    try {
      n = await read(want === view.length ? view : view.subarray(0, want), pos);
    } catch (err) {
      await close().catch(() => {});
      throw err;
    }
    if (n === 0) {
      await close();
      throw new LoadError(`${what} shrank while it was read`);
    }
    pos += n;
    if (pos === size) await close();
    return n;
  };
  return { size, chunks: chunksOf(readInto, size, close), readInto, cancel: () => { close().catch(() => {}); }, name };
}

// The chunks of a source read by readInto (into a buffer of their own), for the readers
// that take chunks; close() when they stop.
async function* chunksOf(readInto, size, close) {
  try {
    const buf = new Uint8Array(Math.max(1, Math.min(size, 4 << 20)));
    for (let pos = 0; pos < size;) {
      const n = await readInto(buf);
      pos += n;
      yield buf.subarray(0, n);
    }
  } finally {
    await close();
  }
}

// A Node file, read by readInto straight into the caller's memory (the wasm heap's
// loader window: no copy in JS), or as chunks.
async function openPath(path, signal) {
  const { open } = await import('node:fs/promises');
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new LoadError(`cannot open ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { cause: err });
  }
  const { size } = await fh.stat();
  const read = async (view, at) => {
    try {
      return (await fh.read(view, 0, view.length, at)).bytesRead;
    } catch (err) {
      throw new LoadError(`cannot read ${path}: ${err.message}`, { cause: err });
    }
  };
  return fileReader({ size, name: path.split(/[\\/]/).pop(), what: path, read, closeFile: () => fh.close(), signal,
    abortMessage: 'reading the file was aborted' });
}

// A file of the Origin Private File System (the model cache): in a dedicated worker read
// through a sync access handle, by readInto straight into the caller's memory; elsewhere
// (or when another context holds the file) as its Blob's stream.
async function openOpfs(handle, name, signal) {
  let sync = null;
  if (typeof handle.createSyncAccessHandle === 'function' && typeof WorkerGlobalScope !== 'undefined') {
    try {
      sync = await handle.createSyncAccessHandle();
    } catch {
      sync = null;  // held by another worker: read it as a Blob
    }
  }
  if (!sync) {
    const file = await handle.getFile();
    return { size: file.size, chunks: streamChunks(file.stream(), signal), name };
  }
  return fileReader({ size: sync.getSize(), name, what: `the model kept on this device (${name})`,
    read: (view, at) => sync.read(view, { at }), closeFile: () => sync.close(), signal,
    abortMessage: 'reading the model from this device was aborted' });
}

// ---- caches: a file is stored only once it is complete and of the announced size.

async function nodeCacheDir(options) {
  const os = await import('node:os');
  const path = await import('node:path');
  return options.cacheDir ?? process.env.RWKV_WEB_CACHE ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'rwkv-web');
}

async function nodeCachePath(url, options) {
  const { createHash } = await import('node:crypto');
  const path = await import('node:path');
  const name = url.split('?')[0].split('/').pop().replace(/[^\w.-]/g, '_').slice(-80);
  return path.join(await nodeCacheDir(options), `${createHash('sha256').update(url).digest('hex').slice(0, 16)}-${name}`);
}

/** Node: passes chunks through while writing them to `file.part`, renamed to `file` when complete. */
async function* teeToFile(chunks, file, size) {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  await fs.mkdir(path.dirname(file), { recursive: true });
  const part = `${file}.${process.pid}.part`;
  const fh = await fs.open(part, 'w');
  let done = 0, ok = false;
  try {
    for await (const c of chunks) {
      await fh.write(c);
      done += c.length;
      yield c;
    }
    ok = done === size;
  } finally {
    await fh.close();
    if (ok) await fs.rename(part, file);
    else await fs.rm(part, { force: true });
  }
}

// A download that survives dropped connections: when the body breaks off before its
// announced length, the rest is asked for with an HTTP Range request, validated by the
// first response's ETag or Last-Modified (If-Range) and by the Content-Range of the
// answer, a few times with a growing pause. The chunks run on as if nothing happened; a
// resume that cannot work ends in a LoadError saying what happened: the URL, the bytes
// received of the total, and the server's answer.
const MAX_RESUMES = 5;
const RESUME_PAUSE_MS = 250;

async function* resumableChunks(url, res, body, length, signal, fetchSignal) {
  const validator = res.headers.get('etag') ?? res.headers.get('last-modified');
  const canResume = !!validator && res.headers.get('accept-ranges') !== 'none';
  let got = 0, resumes = 0, why = null;
  for (;;) {
    try {
      if (body) for await (const chunk of streamChunks(body, signal)) {
        got += chunk.length;
        yield chunk;
      }
      if (got >= length) return;
      if (body) why = 'the connection closed early';
    } catch (err) {
      if (signal?.aborted || err instanceof AbortError) throw err instanceof AbortError ? err : new AbortError('the download was aborted');
      why = err.message;
    }
    const lost = `downloading ${url} stopped after ${got} of ${length} bytes (${why})`;
    if (!canResume) throw new LoadError(`${lost}, and the server offers no way to resume (no ETag or Last-Modified)`);
    if (++resumes > MAX_RESUMES) throw new LoadError(`${lost}; ${MAX_RESUMES} attempts to resume failed`);
    await new Promise((r) => setTimeout(r, RESUME_PAUSE_MS * resumes));
    let next;
    try {
      next = await fetch(url, { signal: fetchSignal, headers: { range: `bytes=${got}-`, 'if-range': validator } });
    } catch (err) {
      if (signal?.aborted) throw new AbortError('the download was aborted');
      body = null;
      why = err.message;
      continue;  // counted as an attempt: the network may come back
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(next.headers.get('content-range') ?? '');
    if (next.status !== 206 || !range || Number(range[1]) !== got || (range[3] !== '*' && Number(range[3]) !== length)) {
      next.body?.cancel().catch(() => {});
      const answer = next.status === 200 ? 'HTTP 200 with the whole file: it changed, or the server ignores ranges'
        : next.status === 206 ? `HTTP 206 with Content-Range '${next.headers.get('content-range')}'` : `HTTP ${next.status} ${next.statusText}`;
      throw new LoadError(`${lost}; resuming at byte ${got} failed: the server answered ${answer}`);
    }
    body = next.body;
  }
}

async function openUrl(url, options, signal) {
  const useCache = options.cache !== false;
  if (useCache && isNode && url.startsWith('http')) {
    const file = await nodeCachePath(url, options);
    const { existsSync } = await import('node:fs');
    if (existsSync(file)) return { ...(await openPath(file, signal)), cached: true, name: url.split('/').pop() };
  }
  let cache = null;
  if (useCache && !isNode && typeof caches !== 'undefined' && url.startsWith('http')) {
    cache = await caches.open(CACHE_NAME).catch(() => null);
    const hit = await cache?.match(url);
    const size = Number(hit?.headers.get('content-length'));
    if (hit?.body && size > 0) return { size, chunks: streamChunks(hit.body, signal), cached: true, name: url.split('/').pop() };
  }
  // Our own controller too, so a consumer that gives up (bad file, no memory) can stop the
  // download, the cache's copy included (an aborted Cache.put stores nothing).
  const inner = new AbortController();
  const both = signal ? AbortSignal.any([signal, inner.signal]) : inner.signal;
  let res;
  try {
    res = await fetch(url, { signal: both });
  } catch (err) {
    if (signal?.aborted) throw new AbortError('the download was aborted');
    throw new LoadError(`cannot download ${url}: ${err.message}`, { cause: err });
  }
  if (!res.ok) throw new LoadError(`cannot download ${url}: HTTP ${res.status} ${res.statusText}`);
  const length = Number(res.headers.get('content-length'));
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const name = url.split('?')[0].split('/').pop();
  if (!(length > 0) || encoded) {
    // Size unknown before the end: gather the body (a temporary second copy, the only case).
    const bytes = await res.arrayBuffer();
    return { size: bytes.byteLength, chunks: (async function* () { yield new Uint8Array(bytes); })(), name };
  }
  let body = res.body;
  if (cache) {
    const [mine, forCache] = body.tee();
    body = mine;
    const headers = { 'content-length': String(length), 'content-type': 'application/octet-stream' };
    // Cache.put settles only when the whole body arrived; an aborted download stores nothing.
    cache.put(url, new Response(forCache, { headers })).catch(() => {});
  }
  let chunks = resumableChunks(url, res, body, length, signal, both);
  if (useCache && isNode && url.startsWith('http')) chunks = teeToFile(chunks, await nodeCachePath(url, options), length);
  return { size: length, chunks, name, cancel: () => inner.abort() };
}

/**
 * Opens a described source. Returns {size, chunks: AsyncIterable<Uint8Array>, name, cached,
 * readInto?, cancel?}: call cancel() when giving up before the chunks are all read. A
 * source with readInto(view) (a Node file, a file of the model cache in a worker) can be
 * read without the chunks: each call fills the start of `view` with the next bytes
 * (straight into the wasm heap) and resolves to how many; it is closed after its last
 * byte. Read it one way or the other, not both.
 * options: {cache: boolean (default true), cacheDir (Node)}
 */
export async function openSource(desc, options = {}, signal) {
  if (desc.path) return openPath(desc.path, signal);
  if (desc.url) return openUrl(desc.url, options, signal);
  if (desc.opfs) return openOpfs(desc.opfs, desc.name, signal);
  if (desc.blob) return { size: desc.blob.size, chunks: streamChunks(desc.blob.stream(), signal), name: desc.name ?? desc.blob.name };
  if (desc.bytes) {
    const bytes = desc.bytes instanceof ArrayBuffer ? new Uint8Array(desc.bytes) : desc.bytes;
    return { size: bytes.byteLength, chunks: (async function* () { yield bytes; })(), name: desc.name };
  }
  throw new TypeError('unknown source');
}

/** Reads a whole (small) source, e.g. a vocabulary, into one Uint8Array. */
export async function readSource(desc, options, signal) {
  const { size, chunks } = await openSource(desc, options, signal);
  const out = new Uint8Array(size);
  let n = 0;
  for await (const c of chunks) {
    out.set(c, n);
    n += c.length;
  }
  return out;
}

/** Removes cached downloads (Node cache folder or the browser's Cache API store). */
export async function clearCache(options = {}) {
  if (isNode) {
    const fs = await import('node:fs/promises');
    await fs.rm(await nodeCacheDir(options), { recursive: true, force: true });
  } else if (typeof caches !== 'undefined') {
    await caches.delete(CACHE_NAME);
  }
}
