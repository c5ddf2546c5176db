// Prepended to the Emscripten glue. Under Node the glue's own fetch-based loader fails
// ("Failed to parse URL"), so hide fetch from it there; the JS library passes the wasm
// bytes itself (wasmBinary) in Node and lets the browser fetch/stream them.
var fetch = (typeof process == 'object' && typeof process.versions == 'object' &&
             typeof process.versions.node == 'string') ? undefined : globalThis.fetch;
