#!/usr/bin/env bash
# Fuzzes the checkpoint parsers with libFuzzer (clang, ASan + UBSan):
#
#   bash scripts/fuzz.sh [SECONDS_PER_HARNESS=30] [harness...]
#
# Installs what is missing (clang, the libFuzzer runtime, libc++), builds build/fuzz
# (fuzz/CMakeLists.txt, ccache when present), writes the fixtures and the seed corpora
# (fuzz/prepare.mjs), replays the reproducers saved by earlier runs, then runs each
# harness (default: every fuzz/fuzz_<name>.cpp) for SECONDS_PER_HARNESS, one at a time.
# Ends with one line per harness (executions, crashes) and a total line; exits 1 if any
# harness crashed, leaving the reproducer in build/fuzz/crashes/<name>/ and the log in
# build/fuzz/logs/<name>.log. Replay one with: build/fuzz/fuzz_<name> FILE
#
# Environment: FUZZ_FORK=1 keeps fuzzing after a crash (libFuzzer -fork=1 with
# -ignore_crashes/-ignore_ooms/-ignore_timeouts), for long bug hunts; FUZZ_RSS_MB
# (default 2048), FUZZ_TIMEOUT (seconds per input, default 10) and FUZZ_CORPUS_MB (a
# corpus larger than this is minimised before the run, default 200) tune the limits.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: bash scripts/fuzz.sh [SECONDS_PER_HARNESS=30] [harness...]" >&2; exit 2; }
secs="${1:-30}"
[[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || usage
shift || true
all=()
for f in fuzz/fuzz_*.cpp; do n="${f#fuzz/fuzz_}"; all+=("${n%.cpp}"); done
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
for h in "${harnesses[@]}"; do
  [ -f "fuzz/fuzz_$h.cpp" ] || { echo "fuzz: no harness fuzz/fuzz_$h.cpp (have: ${all[*]})" >&2; exit 2; }
done
rss_mb="${FUZZ_RSS_MB:-2048}"
input_timeout="${FUZZ_TIMEOUT:-10}"
corpus_mb="${FUZZ_CORPUS_MB:-200}"
out=build/fuzz
start_all=$SECONDS

# ---------------------------------------------------------------- tools
install() {
  echo "fuzz: installing $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
want=()
command -v cmake >/dev/null 2>&1 || want+=(cmake)
command -v clang++ >/dev/null 2>&1 || want+=(clang)
command -v node >/dev/null 2>&1 || want+=(nodejs)
[ ${#want[@]} -eq 0 ] || install "${want[@]}"

# The libFuzzer runtime (libclang-rt-N-dev) and libc++ (src/formats/checkpoint.cpp needs it with
# clang 14, see fuzz/CMakeLists.txt), for the installed clang's major version N.
clang_major="$(clang++ -dumpversion | cut -d. -f1)"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' >"$probe/p.cpp"
want=()
clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1 || want+=("libclang-rt-$clang_major-dev")
echo '#include <vector>
int main() { return int(std::vector<int>{0}.at(0)); }' >"$probe/c.cpp"
clang++ -stdlib=libc++ "$probe/c.cpp" -o "$probe/c" >/dev/null 2>&1 || want+=("libc++-$clang_major-dev" "libc++abi-$clang_major-dev")
if [ ${#want[@]} -gt 0 ]; then
  install "${want[@]}"
  rm -f "$out/CMakeCache.txt"  # let the fuzz project look for libc++ again
fi

# ---------------------------------------------------------------- build
t0=$SECONDS
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Configured on every call, so that a new fuzz/fuzz_<name>.cpp becomes a target.
if [ -f "$out/CMakeCache.txt" ]; then
  cmake -S fuzz -B "$out" >/dev/null
else
  cmake -S fuzz -B "$out" -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$out" -j "$(nproc)" --target "${targets[@]}" >"$out/build.log" 2>&1 || {
  tail -40 "$out/build.log"; echo "fuzz: build failed (full log: $out/build.log)" >&2; exit 1; }
echo "fuzz: build ${targets[*]} in $((SECONDS - t0)) s"

# ---------------------------------------------------------------- corpora
node scripts/make-fixtures.mjs build/fixtures >/dev/null
node tests/reference/make-gguf-fixtures.mjs build/fixtures >/dev/null
node fuzz/prepare.mjs "$out" "${harnesses[@]}"

# ---------------------------------------------------------------- run
mkdir -p "$out/logs"
artifacts() { find "$out/crashes/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | sort; }
summary=()
total_execs=0
total_crashes=0
for h in "${harnesses[@]}"; do
  bin="$out/fuzz_$h"
  crashdir="$out/crashes/$h"
  log="$out/logs/$h.log"
  mkdir -p "$crashdir"
  mapfile -t opts <"$out/options/$h"
  common=("${opts[@]}" "-rss_limit_mb=$rss_mb" "-timeout=$input_timeout")

  # Reproducers kept from earlier runs: still failing means the bug is still there.
  known=0
  mapfile -t old < <(artifacts "$h")
  for f in "${old[@]}"; do
    if ! "$bin" "${common[@]}" "$f" >"$log.replay" 2>&1; then
      known=$((known + 1))
      echo "fuzz: $h: saved reproducer still fails: $f"
    fi
  done
  rm -f "$log.replay"

  # A corpus grown past FUZZ_CORPUS_MB is minimised first (-merge=1 keeps one input per
  # coverage feature); the seeds are rewritten by prepare.mjs anyway.
  corpus="$out/corpus/$h"
  if [ "$(du -sm "$corpus" | cut -f1)" -gt "$corpus_mb" ]; then
    rm -rf "$corpus.min" && mkdir -p "$corpus.min"
    if "$bin" "${common[@]}" -merge=1 "$corpus.min" "$corpus" >"$log.merge" 2>&1; then
      rm -rf "$corpus" && mv "$corpus.min" "$corpus"
      node fuzz/prepare.mjs "$out" "$h" >/dev/null
      echo "fuzz: $h: corpus minimised to $(du -sm "$corpus" | cut -f1) MB"
    else
      rm -rf "$corpus.min"
    fi
    rm -f "$log.merge"
  fi

  mode=()
  [ "${FUZZ_FORK:-0}" = 1 ] && mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  echo "fuzz: $h for $secs s (log: $log)"
  set +e
  UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}" \
    timeout -s INT -k 30 $((secs + 120)) \
    "$bin" "${common[@]}" "${mode[@]}" -max_total_time="$secs" -print_final_stats=1 \
    -artifact_prefix="$crashdir/" "$corpus" >"$log" 2>&1
  rc=$?
  set -e

  mapfile -t now < <(artifacts "$h")
  new=$(comm -13 <(printf '%s\n' "${old[@]}") <(printf '%s\n' "${now[@]}") | grep -c . || true)
  # Executions: the final stats, or in fork mode the last status line "#N: cov: ...".
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  execs=${execs:-0}
  if [ "$rc" -ne 0 ] && [ "$new" -eq 0 ] && [ "${FUZZ_FORK:-0}" != 1 ]; then
    new=1  # died without leaving a reproducer (e.g. killed): still a failure
    echo "fuzz: $h exited with status $rc and no reproducer; see $log"
  fi
  crashes=$((new + known))
  if [ "$new" -gt 0 ]; then
    # The distinct reports (fork mode may find the same bug many times).
    grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|FUZZ_CHECK failed|terminating' "$log" |
      sed -E 's/==[0-9]+==//; s/0x[0-9a-f]+/0x.../g' | sort | uniq -c | sort -rn | head -20 | sed "s/^/fuzz: $h: /" || true
    comm -13 <(printf '%s\n' "${old[@]}") <(printf '%s\n' "${now[@]}") | sed "s/^/fuzz: $h: reproducer /"
  fi
  total_execs=$((total_execs + execs))
  total_crashes=$((total_crashes + crashes))
  summary+=("$(printf 'fuzz: %-12s %12s executions  %3d crashes (%d new, %d saved still failing)' "$h" "$execs" "$crashes" "$new" "$known")")
done

echo
printf '%s\n' "${summary[@]}"
printf 'fuzz: %-12s %12s executions  %3d crashes  (%d s in all)\n' total "$total_execs" "$total_crashes" $((SECONDS - start_all))
[ "$total_crashes" -eq 0 ] || { echo "fuzz: reproducers in $out/crashes/<name>/; replay with $out/fuzz_<name> FILE"; exit 1; }
