#!/usr/bin/env bash
# Builds the native tree (build/native: tests, rwkv_generate) and the wasm tree
# (build/wasm: rwkv.js + rwkv.wasm for Node, rwkv-mt.js + .wasm its pthread build,
# rwkv.web.mjs + .wasm for browsers, rwkv-mt.web.mjs + .worker.js + .wasm for
# cross-origin isolated pages, rwkv-relaxed.wasm + rwkv-relaxed-mt.wasm the relaxed-SIMD
# kernels where clang-19 is installed, and the tests as wasm): only what the library and the
# tests need. Pass "native" or "wasm" to build one tree; the benchmark builds its own
# targets (scripts/bench.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
jobs="$(nproc)"
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Debian's emscripten runs Debian's acorn during -O3 links; Node must find it.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}

if [ "$what" = all ] || [ "$what" = native ]; then
  [ -f build/native/CMakeCache.txt ] || cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >/dev/null
  cmake --build build/native -j "$jobs" --target ${RWKV_NATIVE_TARGETS:-rwkv_tests rwkv_generate}
fi
if [ "$what" = all ] || [ "$what" = wasm ]; then
  # Node 20 rejects the --experimental-wasm-threads flag emcmake puts in the test emulator.
  [ -f build/wasm/CMakeCache.txt ] || emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
    "-DCMAKE_CROSSCOMPILING_EMULATOR=$(command -v node);--no-experimental-fetch" >/dev/null
  cmake --build build/wasm -j "$jobs" --target ${RWKV_WASM_TARGETS:-rwkv_tests rwkv_wasm rwkv_wasm_mt rwkv_wasm_web rwkv_wasm_web_mt}
fi
