// Typed errors of the library. Each has a stable `code`; they cross the worker boundary
// as {name, message, code} and are rebuilt as the same class on the other side.

export class RwkvError extends Error {
  static code = 'RWKV_ERROR';
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
    this.code = new.target.code;
  }
}
/** The model file is damaged, truncated, of another architecture or shape. */
export class ModelFormatError extends RwkvError { static code = 'BAD_MODEL'; }
/** The vocabulary file is malformed or does not fit the model. */
export class VocabError extends RwkvError { static code = 'BAD_VOCAB'; }
/** The wasm heap cannot hold what was asked (wasm32 addresses at most 4 GB). */
export class OutOfMemoryError extends RwkvError { static code = 'OUT_OF_MEMORY'; }
/** An argument is out of range or of the wrong kind. */
export class InvalidArgumentError extends RwkvError { static code = 'INVALID_ARGUMENT'; }
/** A session was called while it is generating. */
export class BusyError extends RwkvError { static code = 'BUSY'; }
/** The download failed (HTTP status, network, unreadable file). */
export class LoadError extends RwkvError { static code = 'LOAD_FAILED'; }
/** The worker died; the library starts a new one on the next call. */
export class WorkerCrashedError extends RwkvError { static code = 'WORKER_CRASHED'; }
/** The operation was cancelled through its AbortSignal. `name` is 'AbortError', as for fetch. */
export class AbortError extends RwkvError {
  static code = 'ABORTED';
  constructor(message = 'the operation was aborted', options) {
    super(message, options);
    this.name = 'AbortError';
  }
}

const classes = { ModelFormatError, VocabError, OutOfMemoryError, InvalidArgumentError, BusyError, LoadError,
  WorkerCrashedError, AbortError, RwkvError };

/** Plain object for postMessage. */
export function serializeError(err) {
  if (err instanceof RwkvError) return { name: err.name, message: err.message, code: err.code };
  if (err?.name === 'AbortError') return { name: 'AbortError', message: err.message, code: AbortError.code };
  return { name: 'RwkvError', message: String(err?.message ?? err), code: RwkvError.code };
}

/** The typed error a serialized one stands for. */
export function deserializeError(obj) {
  const cls = Object.values(classes).find((c) => c.code === obj?.code) ?? RwkvError;
  return new cls(obj?.message ?? 'unknown error');
}
