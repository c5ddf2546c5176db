#!/usr/bin/env bash
# Builds the native Catch2 suite (target rwkv_tests) with AddressSanitizer, LeakSanitizer
# and UndefinedBehaviorSanitizer in build/asan, and runs it:
#
#   bash scripts/sanitize.sh [catch2 arguments...]     e.g. "[loader]" or --list-tests
#
# Any sanitizer report fails the run (-fno-sanitize-recover, halt_on_error); the exit
# code is the test executable's. The fixtures are written first, as npm test does.
# CXX=clang++ picks another compiler (default g++, the project's native compiler).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh  # cmake, g++, catch2 (and the rest of the toolchain) where missing

out=build/asan
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# _GLIBCXX_ASSERTIONS: libstdc++'s bounds checks on operator[], front(), back()...,
# which catch out-of-range accesses that stay inside a vector's capacity.
flags="$san -fno-omit-frame-pointer -O1 -g -D_GLIBCXX_ASSERTIONS"
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

t0=$SECONDS
# Build type "Sanitize" has no per-configuration flags, so nothing overrides -O1 (the
# project defaults to Release, whose -O3 -DNDEBUG would come after ours).
[ -f "$out/CMakeCache.txt" ] || cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=Sanitize \
  -DCMAKE_CXX_COMPILER="${CXX:-g++}" "${launcher[@]}" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null
cmake --build "$out" -j "$(nproc)" --target rwkv_tests
echo "sanitize: built $out/rwkv_tests in $((SECONDS - t0)) s"

node scripts/make-fixtures.mjs build/fixtures >/dev/null
node tests/reference/make-gguf-fixtures.mjs build/fixtures >/dev/null

t0=$SECONDS
set +e
ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
  "$out/rwkv_tests" --use-colour no "$@"
rc=$?
set -e
echo "sanitize: rwkv_tests exited with $rc after $((SECONDS - t0)) s"
exit $rc
