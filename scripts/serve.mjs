#!/usr/bin/env node
// Serves the demo page: the repository root over HTTP on localhost, so that web/, js/ and
// build/wasm/ resolve; / redirects to /web/. Correct MIME types (.wasm, .mjs), COOP/COEP
// headers (the page is cross-origin isolated; --no-isolation turns them off), and
// /web/version.json: a hash of everything the page's service worker caches, so an update
// never serves a stale wasm. Nothing outside the repository is served, except the model
// folders given with --models (at /models/).
//
//   node scripts/serve.mjs [--port N] [--host H] [--no-isolation] [--models DIR]... [--build]
//
// --build first builds the wasm core when build/wasm/rwkv.web.mjs (or its pthread twin
// rwkv-mt.web.mjs, which isolated pages use) is missing or older than src/
// (scripts/setup.sh, then scripts/build.sh wasm): what `npm start` runs.
// As a module: `const srv = await startServer({port: 0, models: [dir]}); srv.url; await srv.close();`
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.pth': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.f32': 'application/octet-stream',
};

// Files of js/ the page never loads: the CLI and the HTTP server.
const NODE_ONLY = new Set(['js/cli.mjs', 'js/chat/server.mjs']);

// What the page's service worker caches (paths relative to the repository root). The
// version served in /web/version.json is a hash of exactly these files.
function appShellFiles(root) {
  const list = (dir, keep) => {
    try {
      return readdirSync(path.join(root, dir)).filter(keep).sort().map((f) => `${dir}/${f}`);
    } catch {
      return [];
    }
  };
  return [
    ...list('web', (f) => /\.(html|css|mjs|js|svg|png|webmanifest)$/.test(f)),
    // The library and its subfolders (js/chat/...), but for the Node-only files.
    ...['js', ...list('js', (f) => !f.includes('.')).filter((d) => statSync(path.join(root, d)).isDirectory())]
      .flatMap((dir) => list(dir, (f) => f.endsWith('.mjs') && !NODE_ONLY.has(`${dir}/${f}`))),
    // The browser builds of the core: rwkv.web.mjs + rwkv.web.wasm, and the pthread one for
    // isolated pages: rwkv-mt.web.mjs + rwkv-mt.web.worker.js + rwkv-mt.web.wasm.
    ...list('build/wasm', (f) => /\bweb\b/.test(f) && /\.(mjs|js|wasm)$/.test(f)),
    // The relaxed-SIMD kernels, when built (rwkv-relaxed.wasm, rwkv-relaxed-mt.wasm).
    ...list('build/wasm', (f) => /^rwkv-relaxed(-mt)?\.wasm$/.test(f)),
  ];
}

/** {version, files} for the service worker; recomputed only when a file changed. */
function versionInfo(root, isolated) {
  let memo = null;
  return async () => {
    const files = appShellFiles(root);
    const stamp = files.map((f) => {
      const s = statSync(path.join(root, f));
      return `${f}:${s.size}:${s.mtimeMs}`;
    }).join('|');
    if (memo?.stamp !== stamp) {
      const h = createHash('sha256');
      for (const f of files) {
        h.update(f);
        h.update(await readFile(path.join(root, f)));
      }
      // The cached page keeps the headers it was served with: isolation is part of the version.
      memo = { stamp, version: `${h.digest('hex').slice(0, 16)}${isolated ? '-coi' : ''}` };
    }
    return { version: memo.version, isolated, files };
  };
}

const inside = (dir, p) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/**
 * Starts the server. Options: {port = 8080 (0: any free port), host = '127.0.0.1',
 * isolation = true, models = [] (folders served at /models/, looked up in order),
 * root = the repository, quiet = false}. Resolves to {server, url, port, close()}.
 */
export async function startServer(options = {}) {
  const { port = 8080, host = '127.0.0.1', isolation = true, quiet = true } = options;
  const root = await realpath(options.root ?? repoRoot);
  const modelDirs = await Promise.all([options.models ?? []].flat().filter(Boolean).map((d) => realpath(path.resolve(d))));
  const version = versionInfo(root, isolation);

  function baseHeaders(extra = {}) {
    const h = { 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff', ...extra };
    if (isolation) {
      h['Cross-Origin-Opener-Policy'] = 'same-origin';
      h['Cross-Origin-Embedder-Policy'] = 'require-corp';
      h['Cross-Origin-Resource-Policy'] = 'same-origin';
    }
    return h;
  }

  function send(res, status, body, headers = {}) {
    const data = Buffer.from(body);
    res.writeHead(status, baseHeaders({ 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': data.length, ...headers }));
    res.end(res.req.method === 'HEAD' ? undefined : data);
  }

  // The file a URL path names, or null: no dot-segments, no dotfiles, nothing outside
  // the root (symbolic links included), no node_modules.
  async function resolveFile(urlPath) {
    let rel;
    try {
      rel = decodeURIComponent(urlPath);
    } catch {
      return null;
    }
    if (rel.includes('\0') || rel.includes('\\')) return null;
    const parts = rel.split('/').filter(Boolean);
    if (parts.some((p) => p.startsWith('.'))) return null;  // .., .git, .env, ...
    let bases = [root];
    if (parts[0] === 'models' && modelDirs.length) {
      bases = modelDirs;
      parts.shift();
    } else if (parts[0] === 'node_modules') {
      return null;
    }
    for (const base of bases) {
      const candidate = path.resolve(base, ...parts);
      if (!inside(base, candidate)) continue;
      let real;
      try {
        real = await realpath(candidate);
      } catch {
        continue;
      }
      if (!inside(base, real)) continue;
      const st = await stat(real);
      if (st.isDirectory()) return { dir: true, path: real };
      if (st.isFile()) return { path: real, stat: st };
    }
    return null;
  }

  const server = createServer(async (req, res) => {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
      const url = new URL(req.url, 'http://localhost');
      if (url.pathname === '/' || url.pathname === '/index.html') {
        res.writeHead(302, baseHeaders({ Location: `/web/${url.search}`, 'Content-Length': 0 }));
        return res.end();
      }
      if (url.pathname === '/web/version.json') {
        return send(res, 200, JSON.stringify(await version()), { 'Content-Type': MIME['.json'], 'Cache-Control': 'no-store' });
      }
      const found = await resolveFile(url.pathname);
      if (!found) return send(res, 404, 'not found\n');
      if (found.dir) {
        if (!url.pathname.endsWith('/')) {
          res.writeHead(301, baseHeaders({ Location: `${url.pathname}/${url.search}`, 'Content-Length': 0 }));
          return res.end();
        }
        const index = path.join(found.path, 'index.html');
        if (!existsSync(index)) return send(res, 404, 'not found\n');
        found.path = index;
        found.stat = await stat(index);
      }
      const st = found.stat;
      const etag = `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      const headers = {
        'Content-Type': MIME[path.extname(found.path).toLowerCase()] ?? 'application/octet-stream',
        'Last-Modified': st.mtime.toUTCString(),
        ETag: etag,
        'Accept-Ranges': 'bytes',
      };
      // The service worker lives in web/ but controls the whole origin (js/ and build/ too).
      if (url.pathname === '/web/sw.js') headers['Service-Worker-Allowed'] = '/';
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, baseHeaders(headers));
        return res.end();
      }
      let start = 0, end = st.size - 1, status = 200;
      const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
      if (range && (range[1] || range[2])) {
        if (range[1]) {
          start = Number(range[1]);
          if (range[2]) end = Math.min(end, Number(range[2]));
        } else {
          start = Math.max(0, st.size - Number(range[2]));
        }
        if (start > end || start >= st.size) return send(res, 416, 'range not satisfiable\n', { 'Content-Range': `bytes */${st.size}` });
        status = 206;
        headers['Content-Range'] = `bytes ${start}-${end}/${st.size}`;
      }
      res.writeHead(status, baseHeaders({ ...headers, 'Content-Length': st.size === 0 ? 0 : end - start + 1 }));
      if (req.method === 'HEAD' || st.size === 0) return res.end();
      // Reads of 4 MB, not the default 64 KB: Chromium takes a local model file about 1.5x
      // faster so (scripts/load-check.mjs --browser).
      const stream = createReadStream(found.path, { start, end, highWaterMark: 4 << 20 });
      stream.on('error', () => res.destroy());
      res.on('close', () => stream.destroy());
      stream.pipe(res);
    } catch (err) {
      if (!res.headersSent) send(res, 500, `internal error: ${err.message}\n`);
      else res.destroy();
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = server.address().port;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost === '127.0.0.1' ? 'localhost' : shownHost}:${actual}/`;
  if (!quiet) {
    console.log(`rwkv-web demo: ${url}web/`);
    console.log(isolation ? '  cross-origin isolated (COOP/COEP sent); --no-isolation turns it off'
      : '  not cross-origin isolated (--no-isolation): the page runs single-threaded');
    for (const d of modelDirs) console.log(`  ${d} served at ${url}models/`);
  }
  return {
    server,
    url,
    port: actual,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

// ---- `npm start`: build what is missing, then serve.

function newestMtime(p) {
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(p).map((f) => newestMtime(path.join(p, f))));
}

function buildIfNeeded() {
  const outs = ['rwkv.web.mjs', 'rwkv.web.wasm', 'rwkv-mt.web.mjs', 'rwkv-mt.web.worker.js', 'rwkv-mt.web.wasm']
    .map((f) => path.join(repoRoot, 'build/wasm', f));
  const inputs = ['src', 'CMakeLists.txt'].map((p) => path.join(repoRoot, p)).filter(existsSync);
  const fresh = outs.every(existsSync)
    && Math.min(...outs.filter((f) => f.endsWith('.mjs')).map((f) => statSync(f).mtimeMs)) >= Math.max(...inputs.map(newestMtime));
  if (fresh) return;
  console.log('building the wasm core (scripts/setup.sh, scripts/build.sh wasm)...');
  for (const args of [['scripts/setup.sh'], ['scripts/build.sh', 'wasm']]) {
    const r = spawnSync('bash', args, { cwd: repoRoot, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`${args.join(' ')} failed (exit ${r.status})`);
      process.exit(r.status || 1);
    }
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'no-isolation': { type: 'boolean', default: false },
      models: { type: 'string', multiple: true, default: [] },
      build: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node scripts/serve.mjs [--port N] [--host H] [--no-isolation] [--models DIR]... [--build]\n'
      + '  port: --port, else $PORT, else 8080 (0: any free port)');
    return;
  }
  if (values.build) buildIfNeeded();
  const port = Number(values.port ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port '${values.port ?? process.env.PORT}'`);
  const srv = await startServer({ port, host: values.host, isolation: !values['no-isolation'], models: values.models, quiet: false });
  const stop = () => srv.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(await realpath(process.argv[1]).catch(() => process.argv[1])).href) {
  main().catch((err) => {
    console.error(`serve: ${err.message}`);
    process.exit(1);
  });
}
