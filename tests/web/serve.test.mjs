// scripts/serve.mjs without a browser: MIME types, isolation headers, the / redirect,
// nothing outside the repository, the /models/ folders, version.json following the files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtemp, mkdir, writeFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from '../../scripts/serve.mjs';

/** A raw GET: the path is sent exactly as given (fetch would normalize `..`). */
function get(port, rawPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: rawPath, method: 'GET', headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function fakeRepo() {
  const dir = await mkdtemp(path.join(tmpdir(), 'rwkv-serve-'));
  await mkdir(path.join(dir, 'repo/web'), { recursive: true });
  await mkdir(path.join(dir, 'repo/js'), { recursive: true });
  await mkdir(path.join(dir, 'repo/build/wasm'), { recursive: true });
  await mkdir(path.join(dir, 'repo/.git'), { recursive: true });
  await mkdir(path.join(dir, 'models'), { recursive: true });
  await writeFile(path.join(dir, 'repo/web/index.html'), '<!doctype html><title>t</title>');
  await writeFile(path.join(dir, 'repo/web/sw.js'), '// sw');
  await writeFile(path.join(dir, 'repo/js/rwkv.mjs'), 'export {};');
  await writeFile(path.join(dir, 'repo/js/cli.mjs'), '// not for the page');
  await mkdir(path.join(dir, 'repo/js/chat'), { recursive: true });
  await writeFile(path.join(dir, 'repo/js/chat/template.mjs'), 'export {};');
  await writeFile(path.join(dir, 'repo/js/chat/server.mjs'), '// Node only');
  await writeFile(path.join(dir, 'repo/build/wasm/rwkv.web.mjs'), 'export default 1;');
  await writeFile(path.join(dir, 'repo/build/wasm/rwkv.web.wasm'), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
  // The pthread build for isolated pages, and the Node builds (not for the page).
  await writeFile(path.join(dir, 'repo/build/wasm/rwkv-mt.web.mjs'), 'export default 1;');
  await writeFile(path.join(dir, 'repo/build/wasm/rwkv-mt.web.worker.js'), '// pthread worker');
  await writeFile(path.join(dir, 'repo/build/wasm/rwkv-mt.web.wasm'), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
  for (const f of ['rwkv.js', 'rwkv-mt.js', 'rwkv-mt.worker.js']) await writeFile(path.join(dir, 'repo/build/wasm', f), '// node');
  await writeFile(path.join(dir, 'repo/.git/config'), 'secret');
  await writeFile(path.join(dir, 'secret.txt'), 'outside the repository');
  await writeFile(path.join(dir, 'models/m.pth'), Buffer.alloc(1000, 7));
  await symlink(path.join(dir, 'secret.txt'), path.join(dir, 'repo/web/link.txt'));
  return dir;
}

test('serve.mjs: types, headers, redirect, ranges', async () => {
  const dir = await fakeRepo();
  const srv = await startServer({ root: path.join(dir, 'repo'), port: 0, models: [path.join(dir, 'models')] });
  try {
    const root = await get(srv.port, '/');
    assert.equal(root.status, 302);
    assert.equal(root.headers.location, '/web/');
    const page = await get(srv.port, '/web/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'], /^text\/html/);
    assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await get(srv.port, '/web')).status, 301);
    assert.match((await get(srv.port, '/js/rwkv.mjs')).headers['content-type'], /^text\/javascript/);
    const wasm = await get(srv.port, '/build/wasm/rwkv.web.wasm');
    assert.equal(wasm.headers['content-type'], 'application/wasm');
    assert.equal(wasm.body.length, 8);
    assert.equal((await get(srv.port, '/web/sw.js')).headers['service-worker-allowed'], '/');
    // The pthread build: its pool's workers load under require-corp (same-origin CORP).
    for (const [f, type] of [['rwkv-mt.web.mjs', /^text\/javascript/], ['rwkv-mt.web.worker.js', /^text\/javascript/], ['rwkv-mt.web.wasm', /^application\/wasm$/]]) {
      const r = await get(srv.port, `/build/wasm/${f}`);
      assert.equal(r.status, 200, f);
      assert.match(r.headers['content-type'], type, f);
      assert.equal(r.headers['cross-origin-embedder-policy'], 'require-corp', f);
      assert.equal(r.headers['cross-origin-resource-policy'], 'same-origin', f);
    }
    const model = await get(srv.port, '/models/m.pth');
    assert.equal(model.status, 200);
    assert.equal(model.headers['content-length'], '1000');
    const part = await get(srv.port, '/models/m.pth', { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.body.length, 10);
    assert.equal(part.headers['content-range'], 'bytes 10-19/1000');
    const etag = model.headers.etag;
    assert.equal((await get(srv.port, '/models/m.pth', { 'if-none-match': etag })).status, 304);
    assert.equal((await get(srv.port, '/web/nope.html')).status, 404);
  } finally {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('serve.mjs: nothing outside the repository (or the model folders) is served', async () => {
  const dir = await fakeRepo();
  const srv = await startServer({ root: path.join(dir, 'repo'), port: 0, models: [path.join(dir, 'models')] });
  try {
    for (const p of ['/../secret.txt', '/web/../../secret.txt', '/%2e%2e/secret.txt', '/web/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/models/../secret.txt', '/models/%2e%2e/secret.txt', '/models/..%2fsecret.txt', '/.git/config', '/web/link.txt',
      '/web/%00', '/..%5csecret.txt', '/web/%E0%A4%A']) {
      const r = await get(srv.port, p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
      assert.ok(!r.body.toString().includes('outside the repository') && !r.body.toString().includes('secret'), p);
    }
  } finally {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('serve.mjs: --no-isolation drops COOP/COEP; version.json follows the files', async () => {
  const dir = await fakeRepo();
  const repo = path.join(dir, 'repo');
  const srv = await startServer({ root: repo, port: 0, isolation: false });
  try {
    const page = await get(srv.port, '/web/');
    assert.equal(page.headers['cross-origin-opener-policy'], undefined);
    assert.equal(page.headers['cross-origin-embedder-policy'], undefined);
    const v1 = JSON.parse((await get(srv.port, '/web/version.json')).body);
    assert.equal(v1.isolated, false);
    assert.ok(v1.files.includes('build/wasm/rwkv.web.wasm') && v1.files.includes('js/rwkv.mjs') && v1.files.includes('web/index.html'));
    assert.ok(!v1.files.includes('js/cli.mjs'));
    assert.ok(v1.files.includes('js/chat/template.mjs'), 'the chat layer works offline');
    assert.ok(!v1.files.includes('js/chat/server.mjs'), 'the HTTP server is Node-only');
    assert.deepEqual(v1.files.filter((f) => f.startsWith('build/')),
      ['rwkv-mt.web.mjs', 'rwkv-mt.web.wasm', 'rwkv-mt.web.worker.js', 'rwkv.web.mjs', 'rwkv.web.wasm'].map((f) => `build/wasm/${f}`),
      'both browser builds are cached for offline use; the Node ones are not');
    assert.equal(JSON.parse((await get(srv.port, '/web/version.json')).body).version, v1.version);
    // A rebuilt wasm is a new version.
    await writeFile(path.join(repo, 'build/wasm/rwkv.web.wasm'), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0, 0]));
    const v2 = JSON.parse((await get(srv.port, '/web/version.json')).body);
    assert.notEqual(v2.version, v1.version);
    assert.equal((await get(srv.port, '/models/m.pth')).status, 404, 'no model folder was given');
  } finally {
    await srv.close();
  }
  const iso = await startServer({ root: repo, port: 0 });
  try {
    const v = JSON.parse((await get(iso.port, '/web/version.json')).body);
    assert.match(v.version, /-coi$/, 'isolation is part of the version (cached pages keep their headers)');
  } finally {
    await iso.close();
    await rm(dir, { recursive: true, force: true });
  }
});
