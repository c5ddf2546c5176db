// A local HTTP server for the tests: serves files from a folder, counts requests, and
// can fail (?status=404). Range
// requests are answered (206, If-Range against the ETag); ?drop=N cuts the connection
// after N bytes of the first response of a path, ?dropEvery=N of every response,
// ?noEtag sends no validator, ?changed answers every If-Range as a changed file,
// ?stall=N sends N bytes and then nothing more until the client goes away. Pages,
// scripts and wasm get their content types; {cors: true} lets any origin read the files
// (as a CDN does).
import http from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

export async function startServer(dir, { cors = false } = {}) {
  const counts = new Map();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    counts.set(url.pathname, (counts.get(url.pathname) ?? 0) + 1);
    const file = path.join(dir, decodeURIComponent(url.pathname));
    const status = Number(url.searchParams.get('status') ?? 200);
    if (status !== 200 || !file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(status === 200 ? 404 : status).end('not here');
      return;
    }
    const whole = readFileSync(file);
    const etag = `"${whole.length}-${path.basename(file)}"`;
    const q = (k) => url.searchParams.get(k);
    const headers = {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'accept-ranges': 'bytes',
      ...(q('noEtag') === null ? { etag } : {}),
      ...(cors ? { 'access-control-allow-origin': '*', 'cross-origin-resource-policy': 'cross-origin' } : {}),
    };
    let body = whole, code = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && (req.headers['if-range'] === etag && q('changed') === null)) {
      const from = Number(range[1]);
      body = whole.subarray(from);
      code = 206;
      headers['content-range'] = `bytes ${from}-${whole.length - 1}/${whole.length}`;
    }
    headers['content-length'] = body.length;
    res.writeHead(code, headers);
    const cut = q('dropEvery') ?? (counts.get(url.pathname) === 1 ? q('drop') : null);
    if (cut !== null) {
      res.write(body.subarray(0, Number(cut)));
      await new Promise((r) => setTimeout(r, 20));
      res.socket.destroy();
      return;
    }
    if (q('stall') !== null) {
      res.write(body.subarray(0, Number(q('stall'))));
      return;
    }
    res.end(body);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return { base, counts, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}
