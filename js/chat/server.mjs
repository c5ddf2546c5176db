// A local OpenAI-compatible HTTP server on a loaded model (Node; `cli.mjs serve`):
//   POST /v1/chat/completions, POST /v1/completions   (stream: true -> server-sent events,
//                                                        ending with `data: [DONE]`)
//   GET  /v1/models, GET /v1/models/ID
// Requests run one at a time per model, in the order they came; a request whose client
// disconnects is aborted (or dropped from the queue). Every failure is OpenAI's error
// object ({error: {message, type, param, code}}) with its HTTP status: malformed JSON and
// invalid fields 400, unknown routes 404, wrong methods 405, oversized bodies 413, more
// clients than allowed 429, anything else 500. Binds to 127.0.0.1 unless told otherwise.
import http from 'node:http';
import { InvalidRequestError } from './completions.mjs';
import { InvalidArgumentError, VocabError } from '../errors.mjs';

const errorBody = (message, type, code = null, param = null) => ({ error: { message, type, param, code } });

/** The HTTP status and OpenAI error object of a failure. */
function errorReply(err) {
  if (err instanceof InvalidRequestError) return [400, { error: err.toJSON() }];
  if (err instanceof InvalidArgumentError || err instanceof VocabError) return [400, errorBody(err.message, 'invalid_request_error', 'invalid_value')];
  return [500, errorBody(`the server failed: ${err?.message ?? err}`, 'server_error', 'internal_error')];
}

/** Reads a body of at most `limit` bytes; null when it is longer. */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const parts = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
      } else {
        parts.push(chunk);
      }
    });
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Serves `model` (a loaded Model) over HTTP. Options: port (default 8000; 0 picks a free
 * one), host (default '127.0.0.1'), maxClients (requests running or waiting at once,
 * default 16), maxBodyBytes (default 4 MB), modelId (the id /v1/models gives, default the
 * model's name). Resolves to {url (the base, ending in /v1), close()}.
 */
export async function startServer(model, { port = 8000, host = '127.0.0.1', maxClients = 16, maxBodyBytes = 4 << 20, modelId = model.name } = {}) {
  let clients = 0;
  let queue = Promise.resolve();  // the requests of the model, one after the other
  const created = Math.floor(Date.now() / 1000);
  const modelObject = { id: modelId, object: 'model', created, owned_by: 'rwkv-web' };

  const send = (res, status, body) => {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  // Waits for the model's turn; resolves to a function that ends the turn.
  function turn() {
    let release;
    const mine = new Promise((r) => { release = r; });
    const ready = queue.then(() => release);
    queue = queue.then(() => mine);
    return ready;
  }

  async function complete(req, res, api) {
    const text = await readBody(req, maxBodyBytes);
    if (text === null) return send(res, 413, errorBody(`the request body is larger than ${maxBodyBytes} bytes`, 'invalid_request_error', 'request_too_large'));
    let request;
    try {
      request = JSON.parse(text);
    } catch (err) {
      return send(res, 400, errorBody(`the body of the request is not valid JSON: ${err.message}`, 'invalid_request_error', 'invalid_json'));
    }
    if (request === null || typeof request !== 'object' || Array.isArray(request))
      return send(res, 400, errorBody('the request must be a JSON object', 'invalid_request_error', 'invalid_type'));
    const ac = new AbortController();
    res.on('close', () => { if (!res.writableFinished) ac.abort(); });
    const done = await turn();
    try {
      if (ac.signal.aborted) return;  // the client left while it waited
      const { signal: _ignored, ...fields } = request;
      // As OpenAI's: a usage chunk only when the client asks for it.
      const streamOptions = request.stream === true ? { stream_options: { include_usage: false, ...request.stream_options } } : {};
      const result = await api.create({ ...fields, ...streamOptions, model: modelId, signal: ac.signal });
      if (request.stream !== true) return send(res, 200, result);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      try {
        for await (const chunk of result) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        res.end('data: [DONE]\n\n');
      } catch (err) {
        if (ac.signal.aborted) return;
        res.end(`data: ${JSON.stringify(errorReply(err)[1])}\n\n`);
      }
    } catch (err) {
      if (!ac.signal.aborted) send(res, ...errorReply(err));
    } finally {
      done();
    }
  }

  const routes = {
    'POST /v1/chat/completions': (req, res) => complete(req, res, model.chat.completions),
    'POST /v1/completions': (req, res) => complete(req, res, model.completions),
    'GET /v1/models': (req, res) => send(res, 200, { object: 'list', data: [modelObject] }),
    [`GET /v1/models/${encodeURIComponent(modelId)}`]: (req, res) => send(res, 200, modelObject),
  };

  const server = http.createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname.replace(/\/+$/, '');
    const route = routes[`${req.method} ${path}`];
    if (!route) {
      const known = Object.keys(routes).some((r) => r.endsWith(` ${path}`));
      req.resume();
      return known
        ? send(res, 405, errorBody(`${req.method} is not allowed on ${path}`, 'invalid_request_error', 'method_not_allowed'))
        : send(res, 404, errorBody(`no route ${req.method} ${path} (POST /v1/chat/completions, POST /v1/completions, GET /v1/models)`, 'invalid_request_error', 'unknown_url'));
    }
    if (clients >= maxClients) {
      req.resume();
      return send(res, 429, errorBody(`more than ${maxClients} requests at once: try again later`, 'rate_limit_error', 'rate_limit_exceeded'));
    }
    clients++;
    res.on('close', () => { clients--; });
    try {
      await route(req, res);
    } catch (err) {
      send(res, ...errorReply(err));
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: bound } = server.address();
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${bound}/v1`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}
