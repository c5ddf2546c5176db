#include "kernels/relaxed/relaxed.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#endif
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif
#ifdef __EMSCRIPTEN__

// Loads the module on this thread: its bytes from the factory option `relaxedWasm` (the
// JS library passes them in browsers) or, under Node, from the file beside the glue
// (rwkv-relaxed-mt.wasm for a pthread build's shared memory, else rwkv-relaxed.wasm).
// Chosen where the host validates it as it is (Chromium 114+, Node 22+) and its probe
// computes right. Node 20 hides relaxed SIMD behind a flag, its V8 (11.3) lowers the dot
// without VNNI (a smaller gain) and its baseline compiler, Liftoff, gets relaxed_dot_add
// wrong: running it there takes process-wide V8 flags, so it is used only when asked for
// (`relaxedSimd: true`, or RWKV_RELAXED=1): then --experimental-wasm-relaxed-simd is set,
// and the module is compiled again with --no-liftoff (wasm compiled later in the process
// skips the baseline tier), from bytes made different (V8 keeps compiled modules by their
// bytes).
// Off when `relaxedSimd: false` is passed to the factory, or RWKV_RELAXED=0 under Node.
// Returns the bytes copied into the heap behind their length (the pool's threads
// instantiate from there), or 0.
EM_JS(void*, rwkv_relaxed_load, (), {
  var node = typeof process == 'object' && typeof process.versions == 'object' && typeof process.versions.node == 'string';
  var env = node ? process.env['RWKV_RELAXED'] : undefined;
  if (Module['relaxedSimd'] === false || env === '0') return 0;
  var forced = Module['relaxedSimd'] === true || env === '1';
  try {
    var shared = typeof SharedArrayBuffer == 'function' && wasmMemory.buffer instanceof SharedArrayBuffer;
    var bytes = Module['relaxedWasm'];
    if (!bytes && node) bytes = require('fs').readFileSync(scriptDirectory + (shared ? 'rwkv-relaxed-mt.wasm' : 'rwkv-relaxed.wasm'));
    if (!bytes) return 0;
    bytes = new Uint8Array(bytes);
    if (node && forced && !WebAssembly.validate(bytes)) require('v8').setFlagsFromString('--experimental-wasm-relaxed-simd');
    if (!WebAssembly.validate(bytes)) return 0;
    var start = function() {
      var k = new WebAssembly.Instance(new WebAssembly.Module(bytes), {'env': {'memory': wasmMemory}}).exports;
      return k['probe'](-3, 5, 7) === -53 && k['probe'](100, 127, -1) === 50799 ? k : null;
    };
    var k = start();
    if (!k && node && forced) {
      // Other bytes (an empty custom section added): V8 would reuse the code compiled for these.
      var other = new Uint8Array(bytes.length + 5);
      other.set(bytes);
      other.set([0, 3, 2, 110, 108], bytes.length);
      bytes = other;
      require('v8').setFlagsFromString('--no-liftoff');
      k = start();
    }
    if (!k) return 0;
    Module['rwkvRelaxed'] = k;
    var p = _malloc(bytes.length + 4);
    if (!p) return 0;
    new Int32Array(wasmMemory.buffer, p, 1)[0] = bytes.length;
    new Uint8Array(wasmMemory.buffer).set(bytes, p + 4);
    return p;
  } catch (e) {
    return 0;
  }
});

// One product on this thread, the module instantiated here on the thread's first call.
EM_JS(void, rwkv_relaxed_q4, (const void* module, const void* q, const float* d, int nb, int r0, int r1, const void* x,
                              const float* dx, const void* bias, int T, float* Y, int yrows, void* w), {
  var k = Module['rwkvRelaxed'];
  if (!k) {
    var p = module >>> 0, n = new Int32Array(wasmMemory.buffer, p, 1)[0];
    var bytes = new Uint8Array(wasmMemory.buffer).slice(p + 4, p + 4 + n);
    k = Module['rwkvRelaxed'] = new WebAssembly.Instance(new WebAssembly.Module(bytes), {'env': {'memory': wasmMemory}}).exports;
  }
  k['q4_matmul'](q, d, nb, r0, r1, x, dx, bias, T, Y, yrows, w);
});
#endif

namespace rwkv::kernels::relaxed {

namespace {
std::atomic<bool> g_enabled{true};
constexpr int kGroup = 4, kBlock = 32;
}  // namespace

void set_enabled(bool on) { g_enabled = on; }

const void* module() {
#ifdef __EMSCRIPTEN__
  static const void* const loaded = rwkv_relaxed_load();
  return g_enabled ? loaded : nullptr;
#else
  return nullptr;
#endif
}

namespace {

// One block of 32 finite values into 8 chunks of 4 int8 (chunk m at q + m * 16): returns
// sum(q), writes dx. q = round(x * (127 / max|x|)), the factor in float32 (in double
// for a tiny max|x|, where 127 / max|x| overflows float).
int quantize_block(const float* x, int8_t* q, float& dx) {
  float amax = 0;
  for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  dx = amax / 127.0f;
  if (amax < 1e-30f) {
    const double inv = amax > 0 ? 127.0 / double(amax) : 0.0;
    int sum = 0;
    for (int i = 0; i < kBlock; ++i) {
      const int v = int(std::nearbyint(double(x[i]) * inv));
      q[(i / 4) * 16 + i % 4] = int8_t(v);
      sum += v;
    }
    return sum;
  }
  const float inv = 127.0f / amax;
#ifdef __wasm_simd128__
  const v128_t f = wasm_f32x4_splat(inv);
  v128_t r[8];
  for (int k = 0; k < 8; ++k) r[k] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 4 * k), f)));
  v128_t s = r[0];
  for (int k = 1; k < 8; ++k) s = wasm_i32x4_add(s, r[k]);
  const v128_t lo = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(r[0], r[1]), wasm_i16x8_narrow_i32x4(r[2], r[3]));
  const v128_t hi = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(r[4], r[5]), wasm_i16x8_narrow_i32x4(r[6], r[7]));
  wasm_v128_store32_lane(q + 0 * 16, lo, 0);
  wasm_v128_store32_lane(q + 1 * 16, lo, 1);
  wasm_v128_store32_lane(q + 2 * 16, lo, 2);
  wasm_v128_store32_lane(q + 3 * 16, lo, 3);
  wasm_v128_store32_lane(q + 4 * 16, hi, 0);
  wasm_v128_store32_lane(q + 5 * 16, hi, 1);
  wasm_v128_store32_lane(q + 6 * 16, hi, 2);
  wasm_v128_store32_lane(q + 7 * 16, hi, 3);
  return wasm_i32x4_extract_lane(s, 0) + wasm_i32x4_extract_lane(s, 1) + wasm_i32x4_extract_lane(s, 2) +
         wasm_i32x4_extract_lane(s, 3);
#else
  int sum = 0;
  for (int i = 0; i < kBlock; ++i) {
    const int v = int(std::nearbyint(x[i] * inv));
    q[(i / 4) * 16 + i % 4] = int8_t(v);
    sum += v;
  }
  return sum;
#endif
}

}  // namespace

void quantize_x8(const float* X, int T, int n, X8& out) {
  const int nb = n / kBlock, groups = (T + kGroup - 1) / kGroup;
  out.q.assign(size_t(groups) * kGroup * n, 0);  // the last group padded with zeros
  out.d.assign(size_t(groups) * kGroup * nb, 0.0f);
  out.bias.assign(size_t(groups) * kGroup * nb, 0);
  for (int t = 0; t < T; ++t) {
    const float* x = X + size_t(t) * n;
    const int G = t / kGroup, j = t % kGroup;
    bool finite = true;
    for (int i = 0; i < n; ++i) finite &= std::isfinite(x[i]);
    for (int b = 0; b < nb; ++b) {
      const size_t at = (size_t(G) * nb + b) * kGroup + j;
      if (!finite) {  // q and bias stay 0
        out.d[at] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      int8_t* q = out.q.data() + (size_t(G) * nb + b) * kGroup * kBlock + j * 4;
      out.bias[at] = -8 * quantize_block(x + b * kBlock, q, out.d[at]);
    }
  }
}

void q4_matmul(const void* module, const Matrix& W, const X8& x, int T, float* Y, int r0, int r1) {
#ifdef __EMSCRIPTEN__
  const int nb = W.cols / kBlock;
  std::vector<uint8_t> w(size_t(2) * nb * kBlock * 4);  // the kernel's scratch: two rows expanded
  rwkv_relaxed_q4(module, W.q(), W.scale, nb, r0, r1, x.q.data(), x.d.data(), x.bias.data(), T, Y, W.rows, w.data());
#else
  (void)module, (void)W, (void)x, (void)T, (void)Y, (void)r0, (void)r1;
#endif
}

}  // namespace rwkv::kernels::relaxed
