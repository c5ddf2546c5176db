// Service worker of the demo page: the page, the library (js/*.mjs) and the wasm core
// (build/wasm/rwkv.web.*, and rwkv-mt.web.* with its pthread worker script, which
// cross-origin isolated pages run) are served from a cache named after their content hash, so the
// page works offline and never mixes a new page with an old wasm or the reverse.
//
// Registered as `sw.js?v=VERSION` with the repository root as scope (scripts/serve.mjs
// sends `Service-Worker-Allowed: /`), so that the model's worker (js/worker.mjs) and its
// imports are served from the same cache. VERSION and the file list come from
// version.json (computed by scripts/serve.mjs). Model weights are not handled here: the
// library keeps downloads in its own Cache API store ('rwkv-web-files-v1').

const VERSION = new URL(self.location.href).searchParams.get('v') || 'unversioned';
const PREFIX = 'rwkv-web-app-';
const CACHE = PREFIX + VERSION;
const ROOT = new URL('../', self.location.href);        // the repository root
const PAGE = new URL('./', self.location.href);         // web/
const VERSION_URL = new URL('version.json', self.location.href);
const CACHED_DIRS = ['web/', 'js/', 'build/wasm/'].map((d) => new URL(d, ROOT).pathname);

async function currentVersion() {
  const res = await fetch(VERSION_URL, { cache: 'no-store' });
  if (!res.ok) throw new Error(`version.json: HTTP ${res.status}`);
  return res.json();
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const info = await currentVersion();
    if (info.version !== VERSION) throw new Error(`the files changed (now ${info.version}); the page registers that version`);
    const cache = await caches.open(CACHE);
    const urls = [PAGE.href, ...info.files.map((f) => new URL(f, ROOT).href)];
    await cache.addAll(urls.map((u) => new Request(u, { cache: 'reload' })));
    // The files must all be of this one version: a rebuild during the download aborts the install.
    const after = await currentVersion();
    if (after.version !== VERSION) {
      await caches.delete(CACHE);
      throw new Error('the files changed while they were cached');
    }
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys())
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data === 'skipWaiting') self.skipWaiting();
  else if (event.data === 'version') event.source?.postMessage({ version: VERSION });
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.href === VERSION_URL.href) return;
  const isRoot = url.pathname === ROOT.pathname;
  if (!isRoot && !CACHED_DIRS.some((d) => url.pathname.startsWith(d))) return;  // models etc.: the network
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    if (isRoot && req.mode === 'navigate') {
      const page = await cache.match(PAGE.href);
      if (page) return Response.redirect(PAGE.href, 302);
      return fetch(req);
    }
    const hit = await cache.match(req, { ignoreSearch: true })
      ?? (url.pathname === PAGE.pathname + 'index.html' ? await cache.match(PAGE.href) : undefined);
    if (hit) return hit;
    return fetch(req);
  })());
});
