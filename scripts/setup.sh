#!/usr/bin/env bash
# Installs what the build and the tests need, where it is missing (Debian bookworm):
# cmake, g++, ccache, Catch2, Emscripten, clang-19 and lld-19 (the relaxed-SIMD kernels);
# with --browser also Chromium for the page tests; and the npm packages of package.json.
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
need() { command -v "$1" >/dev/null 2>&1 || want+=("$2"); }
need cmake cmake
need g++ g++
need ccache ccache
need em++ emscripten
need clang++ clang
# The relaxed-SIMD kernel module (optional: without them the build skips it).
need clang-19 clang-19
need wasm-ld-19 lld-19
[ -f /usr/include/catch2/catch.hpp ] || want+=(catch2)
if [ "${1:-}" = "--browser" ]; then need chromium chromium; fi

if [ ${#want[@]} -gt 0 ]; then
  echo "setup: installing ${want[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
fi

# npm packages: installed when missing, and again when package-lock.json changed since.
if [ -f package-lock.json ] && grep -q '"dependencies"\|"devDependencies"' package.json; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
