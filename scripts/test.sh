#!/usr/bin/env bash
# Everything `npm test` runs: setup, build, fixtures, the Catch2 suites natively and as
# wasm under Node (ctest), then the node --test suites of the JS library and CLI, and
# the page in headless Chromium (tests/web).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
bash scripts/build.sh
node scripts/make-fixtures.mjs build/fixtures
node tests/reference/make-gguf-fixtures.mjs build/fixtures
if [ ! -d ../shared/reference ]; then
  echo "NOTE: ../shared/reference is missing: golden-run tests are skipped; the project's own fixtures still run."
fi
(cd build/native && ctest --output-on-failure)
(cd build/wasm && ctest --output-on-failure)
node --test tests/js/ tests/web/
# Robustness: the native suites under ASan + UBSan, and a short run of every fuzzer
# (the long run: bash scripts/fuzz.sh 600).
bash scripts/sanitize.sh
bash scripts/fuzz.sh "${RWKV_FUZZ_SECONDS:-10}"
