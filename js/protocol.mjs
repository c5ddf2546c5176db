// The one message protocol between the library and its worker, used by the browser and
// by Node alike:
//   request  {id, verb, args}
//   reply    {id, result} | {id, error: {name, message, code}}
//   event    {id, event, data}            (progress, text pieces: before the reply)
//   cancel   {id: 0, verb: 'abort', args: {target}}   aborts request `target`
import { AbortError, WorkerCrashedError, deserializeError, serializeError } from './errors.mjs';

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

/** The two ends of a worker as {post(msg, transfer), onMessage(fn), onFail(fn), terminate()}. */
export async function spawnWorker(url) {
  if (isNode) {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(url);
    return {
      post: (m, t) => w.postMessage(m, t),
      onMessage: (fn) => w.on('message', fn),
      onFail: (fn) => {
        w.on('error', fn);
        w.on('exit', (code) => fn(new Error(`worker exited with code ${code}`)));
      },
      terminate: () => w.terminate(),
      unref: () => w.unref(),
      ref: () => w.ref(),
    };
  }
  const w = new Worker(url, { type: 'module' });
  return {
    post: (m, t) => w.postMessage(m, t),
    onMessage: (fn) => { w.onmessage = (e) => fn(e.data); },
    onFail: (fn) => {
      w.onerror = (e) => { e.preventDefault?.(); fn(new Error(e.message || 'worker failed')); };
      w.onmessageerror = () => fn(new Error('a message could not be read'));
    },
    terminate: () => w.terminate(),
    unref: () => {},
    ref: () => {},
  };
}

/** The worker's own end. */
export async function selfEndpoint() {
  if (isNode) {
    const { parentPort } = await import('node:worker_threads');
    return { post: (m, t) => parentPort.postMessage(m, t), onMessage: (fn) => parentPort.on('message', fn) };
  }
  return { post: (m, t) => self.postMessage(m, t), onMessage: (fn) => { self.onmessage = (e) => fn(e.data); } };
}

/**
 * Both ends of a worker that runs in this thread: [caller's end, worker's end]. Messages
 * are delivered as they are (no copies, transfer lists ignored), never synchronously.
 */
export function inThreadEndpoints() {
  const ends = [{ listeners: [] }, { listeners: [] }];
  const make = (self, other) => ({
    post: (m) => queueMicrotask(() => other.listeners.forEach((fn) => fn(m))),
    onMessage: (fn) => self.listeners.push(fn),
    onFail: () => {},
    terminate: () => { ends[0].listeners.length = 0; ends[1].listeners.length = 0; },
    unref: () => {},
    ref: () => {},
  });
  return [make(ends[0], ends[1]), make(ends[1], ends[0])];
}

/** Caller side: call(verb, args, {transfer, onEvent, signal}) -> Promise of the result. */
export class Client {
  #endpoint;
  #next = 1;
  #pending = new Map();  // id -> {resolve, reject, onEvent}
  #dead = null;

  constructor(endpoint) {
    this.#endpoint = endpoint;
    endpoint.onMessage((m) => this.#receive(m));
    endpoint.onFail((err) => this.#fail(err));
    endpoint.unref();  // an idle worker does not keep Node alive
  }

  get dead() { return this.#dead !== null; }

  call(verb, args = {}, { transfer = [], onEvent, signal } = {}) {
    if (this.#dead) return Promise.reject(new WorkerCrashedError(`the worker is gone: ${this.#dead.message}`));
    if (signal?.aborted) return Promise.reject(new AbortError());
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.#endpoint.post({ id: 0, verb: 'abort', args: { target: id } });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
        if (this.#pending.size === 0) this.#endpoint.unref();
      };
      this.#pending.set(id, {
        resolve: (v) => { done(); resolve(v); },
        reject: (e) => { done(); reject(e); },
        onEvent,
      });
      this.#endpoint.ref();
      this.#endpoint.post({ id, verb, args }, transfer);
    });
  }

  terminate() {
    this.#fail(new Error('terminated'));
    this.#endpoint.terminate();
  }

  #receive(m) {
    const p = this.#pending.get(m.id);
    if (!p) return;
    if ('event' in m) p.onEvent?.(m.event, m.data);
    else if ('error' in m) p.reject(deserializeError(m.error));
    else p.resolve(m.result);
  }

  #fail(err) {
    if (this.#dead) return;
    this.#dead = err;
    for (const p of [...this.#pending.values()]) p.reject(new WorkerCrashedError(`the worker crashed: ${err.message}`));
  }
}

/**
 * Worker side: runs handlers[verb](args, ctx) for each request. ctx.emit(event, data,
 * transfer) sends an event; ctx.signal is an AbortSignal fired by a cancel message.
 * A handler returns its result, or {result, transfer} through ctx.reply.
 */
export function serve(endpoint, handlers) {
  const running = new Map();  // id -> AbortController
  endpoint.onMessage(async ({ id, verb, args }) => {
    if (verb === 'abort') {
      running.get(args.target)?.abort();
      return;
    }
    const ac = new AbortController();
    running.set(id, ac);
    let transfer = [];
    const ctx = {
      signal: ac.signal,
      emit: (event, data, t = []) => endpoint.post({ id, event, data }, t),
      transfer: (t) => { transfer = t; },
    };
    try {
      const handler = handlers[verb];
      if (!handler) throw new Error(`unknown verb '${verb}'`);
      const result = await handler(args ?? {}, ctx);
      endpoint.post({ id, result }, transfer);
    } catch (err) {
      endpoint.post({ id, error: serializeError(err) });
    } finally {
      running.delete(id);
    }
  });
}
