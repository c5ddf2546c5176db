// The benchmark's peers: llama.cpp natively (node-llama-cpp's prebuilt CPU binaries) and
// llama.cpp compiled to wasm (wllama, run in Chromium). They live in a package folder of
// their own, js/bench/peers (package.json + its lock), installed on demand by the bench
// with `npm ci --prefix js/bench/peers`: never by npm test, never needed by the library.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const peersDir = path.dirname(fileURLToPath(new URL('peers/package.json', import.meta.url)));

/** The peers, with the label the report gives them. */
export const PEERS = {
  'llama-native': { label: 'llama.cpp', package: 'node-llama-cpp' },
  wllama: { label: 'wllama', package: '@wllama/wllama' },
};

/** The file URL of a peer package's entry point (in js/bench/peers/node_modules). */
export function peerModule(name) {
  return pathToFileURL(createRequire(path.join(peersDir, 'package.json')).resolve(name)).href;
}

/**
 * Installs the peers' packages when they are missing or older than the lock (`npm ci`,
 * install scripts off: node-llama-cpp's would try to build llama.cpp from source where
 * its prebuilt binaries do not fit). Returns null, or why they could not be installed.
 * (`npm` and `dir`: another npm program or package folder, for the tests.)
 */
export function installPeers({ log = () => {}, npm = 'npm', dir = peersDir } = {}) {
  const lock = path.join(dir, 'package-lock.json');
  const installed = path.join(dir, 'node_modules/.package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return null;
  log('installing the peers (npm ci --prefix js/bench/peers: node-llama-cpp, @wllama/wllama)...');
  try {
    execFileSync(npm, ['ci', '--prefix', dir, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    return null;
  } catch (err) {
    return `npm ci --prefix js/bench/peers failed: ${(err.stderr || err.message).trim().split('\n').slice(-3).join(' ')}`;
  }
}
