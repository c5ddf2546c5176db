// rwkv7.mjs — plain-JavaScript reference of one RWKV-7 (x070) RNN step, written
// straight from docs/computation.md#one-token for clarity, not speed. All arithmetic
// is in JS doubles; results are rounded to float32 only when exported.
//
// Tensors come in as Map name -> {shape: number[], data: Float32Array} (row-major),
// e.g. from buildFixtureModel() / readSafetensors() / readPth() in scripts/make-fixtures.mjs.

// ---------------------------------------------------------------------------
// Small vector helpers (all return new Float64Arrays)
// ---------------------------------------------------------------------------

/** y = W x for W of shape [out, in] (nn.Linear layout). */
function linear(W, x) {
  const [out, inn] = W.shape;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = 0;
    for (let i = 0; i < inn; i++) s += W.data[o * inn + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** y = x @ M for M of shape [in, out] (the low-rank w1/w2, a1/a2, ... layout). */
function matmulRight(x, M) {
  const [inn, out] = M.shape;
  const y = new Float64Array(out);
  for (let i = 0; i < inn; i++) for (let o = 0; o < out; o++) y[o] += x[i] * M.data[i * out + o];
  return y;
}

const map = (x, f) => Float64Array.from(x, f);
const sigmoid = (z) => 1 / (1 + Math.exp(-z));

/** LayerNorm over the whole vector (biased variance), eps 1e-5. */
function layerNorm(x, w, b, eps = 1e-5) {
  const n = x.length;
  let mean = 0;
  for (const v of x) mean += v;
  mean /= n;
  let vari = 0;
  for (const v of x) vari += (v - mean) ** 2;
  vari /= n;
  const inv = 1 / Math.sqrt(vari + eps);
  return map(x, (v, i) => (v - mean) * inv * w.data[i] + b.data[i]);
}

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/**
 * Wraps a tensor map as a model, deriving every dimension from tensor shapes
 * (docs/computation.md#notation).
 * Returns {L, C, H, N, F, V, t(name)} where t() returns {shape, data} or throws.
 */
export function loadModel(tensors) {
  const t = (name) => {
    const x = tensors.get(name);
    if (!x) throw new Error(`missing tensor ${name}`);
    return x;
  };
  const [V, C] = t('emb.weight').shape;
  let L = 0;
  for (const name of tensors.keys()) {
    const m = /^blocks\.(\d+)\./.exec(name);
    if (m) L = Math.max(L, Number(m[1]) + 1);
  }
  const [H, N] = t('blocks.0.att.r_k').shape;
  const F = t('blocks.0.ffn.key.weight').shape[0];
  if (H * N !== C) throw new Error(`r_k shape ${H}x${N} does not match C=${C}`);
  return { L, C, H, N, F, V, t };
}

/** Zero state: per layer att_x_prev (C), S (H*N*N as [h][p][q]), ffn_x_prev (C). */
export function zeroState(model) {
  const { L, C, H, N } = model;
  return Array.from({ length: L }, () => ({
    attX: new Float64Array(C),
    S: new Float64Array(H * N * N),
    ffnX: new Float64Array(C),
  }));
}

/**
 * Time mix of layer i. x: LN1 output (C). Mutates st; returns [out (C), v_first]. With
 * `rec` (a trace record, see traceStep) fills layer i's per-head fields.
 */
function timeMix(model, i, st, xa_, vFirst, rec = null) {
  const { C, H, N } = model;
  const p = (n) => model.t(`blocks.${i}.att.${n}`);
  // token shift: d = att_x_prev - xa_, xr = xa_ + d * x_r, ...
  const d = map(xa_, (v, j) => st.attX[j] - v);
  st.attX = Float64Array.from(xa_);
  const mix = (n) => map(xa_, (v, j) => v + d[j] * p(n).data[j]);
  const xr = mix('x_r'), xw = mix('x_w'), xk = mix('x_k'), xv = mix('x_v'), xa = mix('x_a'), xg = mix('x_g');

  const r = linear(p('receptance.weight'), xr); // (C)
  let k = linear(p('key.weight'), xk); // (C)
  let v = linear(p('value.weight'), xv); // (C)
  // decay w in (exp(-0.606531), 1): exp(-0.606531 * sigmoid(w0 + tanh(xw @ w1) @ w2))
  const wl = matmulRight(map(matmulRight(xw, p('w1')), Math.tanh), p('w2'));
  const w = map(wl, (z, j) => Math.exp(-0.606531 * sigmoid(p('w0').data[j] + z)));
  // in-context learning rate a = sigmoid(a0 + (xa @ a1) @ a2)
  const al = matmulRight(matmulRight(xa, p('a1')), p('a2'));
  const a = map(al, (z, j) => sigmoid(p('a0').data[j] + z));
  // gate g = sigmoid(xg @ g1) @ g2
  const g = matmulRight(map(matmulRight(xg, p('g1')), sigmoid), p('g2'));

  // kk = per-head L2 normalise(k * k_k), norm clamped at 1e-12 (F.normalize)
  const kk = map(k, (z, j) => z * p('k_k').data[j]);
  for (let h = 0; h < H; h++) {
    let ss = 0;
    for (let q = 0; q < N; q++) ss += kk[h * N + q] ** 2;
    const norm = Math.max(Math.sqrt(ss), 1e-12);
    for (let q = 0; q < N; q++) kk[h * N + q] /= norm;
  }
  k = map(k, (z, j) => z * (1 + (a[j] - 1) * p('k_a').data[j]));

  // value residual: layer 0 stores v_first, later layers mix towards it
  let gate = null;
  if (i === 0) vFirst = v;
  else {
    const vl = matmulRight(matmulRight(xv, p('v1')), p('v2'));
    gate = map(vl, (z, j) => sigmoid(p('v0').data[j] + z));
    v = map(v, (z, j) => z + (vFirst[j] - z) * gate[j]);
  }

  // WKV state update, per head h, value row pp, key column q (sa uses the OLD S)
  const S = st.S;
  const y = new Float64Array(C);
  for (let h = 0; h < H; h++) {
    const o = h * N;
    for (let pp = 0; pp < N; pp++) {
      const row = (h * N + pp) * N; // S[h][pp][*]
      let sa = 0;
      for (let q = 0; q < N; q++) sa += S[row + q] * -kk[o + q];
      for (let q = 0; q < N; q++) {
        S[row + q] = S[row + q] * w[o + q] + sa * (kk[o + q] * a[o + q]) + v[o + pp] * k[o + q];
      }
      let acc = 0; // y uses the NEW S
      for (let q = 0; q < N; q++) acc += S[row + q] * r[o + q];
      y[o + pp] = acc;
    }
  }
  if (rec) traceHeads(model, i, rec, { S, w, a, k, v, gate });

  // GroupNorm with H groups of N values, eps 64e-5, affine ln_x
  const lnw = p('ln_x.weight').data, lnb = p('ln_x.bias').data;
  for (let h = 0; h < H; h++) {
    const o = h * N;
    let mean = 0;
    for (let q = 0; q < N; q++) mean += y[o + q];
    mean /= N;
    let vari = 0;
    for (let q = 0; q < N; q++) vari += (y[o + q] - mean) ** 2;
    vari /= N;
    const inv = 1 / Math.sqrt(vari + 64e-5);
    for (let q = 0; q < N; q++) y[o + q] = (y[o + q] - mean) * inv * lnw[o + q] + lnb[o + q];
  }
  // bonus: y[h][p] += (sum_q r*k*r_k over head h) * v[h][p]; r_k is (H, N) row-major = C
  const rk = p('r_k').data;
  for (let h = 0; h < H; h++) {
    const o = h * N;
    let s = 0;
    for (let q = 0; q < N; q++) s += r[o + q] * k[o + q] * rk[o + q];
    for (let pp = 0; pp < N; pp++) y[o + pp] += s * v[o + pp];
  }
  return [linear(p('output.weight'), map(y, (z, j) => z * g[j])), vFirst];
}

// ---------------------------------------------------------------------------
// The trace (docs/inspect.md): per token, per layer and head, what the state did
// ---------------------------------------------------------------------------

/** The per-head fields of a trace record, in order (src/model/trace.h, TraceField). */
export const TRACE_FIELDS = ['stateNorm', 'decayMean', 'decayStd', 'halfLife', 'rate', 'update', 'valueMix'];

/** Floats in one token's trace record: (L, H, fields) then the residual norms (L). */
export const traceRecordSize = ({ L, H }) => L * H * TRACE_FIELDS.length + L;

const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const norm = (xs) => Math.sqrt(xs.reduce((s, x) => s + x * x, 0));

/** Layer i's per-head fields, from the head's S after the update and its w, a, k, v, gate. */
function traceHeads({ H, N }, i, rec, { S, w, a, k, v, gate }) {
  for (let h = 0; h < H; h++) {
    const ch = (x) => Array.from(x.subarray(h * N, (h + 1) * N));
    const ws = ch(w);
    const wMean = mean(ws);
    const sNorm = norm(Array.from(S.subarray(h * N * N, (h + 1) * N * N)));
    const f = (i * H + h) * TRACE_FIELDS.length;
    rec[f] = sNorm;
    rec[f + 1] = wMean;
    rec[f + 2] = Math.sqrt(mean(ws.map((x) => (x - wMean) ** 2)));
    rec[f + 3] = wMean < 1 ? Math.log(0.5) / Math.log(wMean) : Infinity;
    rec[f + 4] = mean(ch(a));
    // the written term v kᵀ has Frobenius norm ‖v‖·‖k‖
    rec[f + 5] = sNorm > 0 ? (norm(ch(v)) * norm(ch(k))) / sNorm : 0;
    rec[f + 6] = gate ? mean(ch(gate)) : NaN;
  }
}

/** Channel mix of layer i. xf: LN2 output (C). Mutates st; returns out (C). */
function channelMix(model, i, st, xf) {
  const p = (n) => model.t(`blocks.${i}.ffn.${n}`);
  const kx = map(xf, (v, j) => v + (st.ffnX[j] - v) * p('x_k').data[j]);
  st.ffnX = Float64Array.from(xf);
  const hidden = map(linear(p('key.weight'), kx), (z) => Math.max(z, 0) ** 2); // (F)
  return linear(p('value.weight'), hidden); // (C)
}

/**
 * Feeds one token; mutates `state`; returns the logits (Float64Array of V). With `trace`
 * (a Float64Array of traceRecordSize(model)), fills it with the token's trace record.
 */
export function step(model, state, token, trace = null) {
  const { C, L } = model;
  if (!(token >= 0 && token < model.V)) throw new Error(`token ${token} out of range`);
  const t = model.t;
  const emb = t('emb.weight').data.subarray(token * C, (token + 1) * C);
  let x = layerNorm(emb, t('blocks.0.ln0.weight'), t('blocks.0.ln0.bias'));
  let vFirst = null;
  for (let i = 0; i < L; i++) {
    const st = state[i];
    const xa_ = layerNorm(x, t(`blocks.${i}.ln1.weight`), t(`blocks.${i}.ln1.bias`));
    let att;
    [att, vFirst] = timeMix(model, i, st, xa_, vFirst, trace);
    x = map(x, (v, j) => v + att[j]);
    const xf = layerNorm(x, t(`blocks.${i}.ln2.weight`), t(`blocks.${i}.ln2.bias`));
    const ffn = channelMix(model, i, st, xf);
    x = map(x, (v, j) => v + ffn[j]);
    if (trace) trace[L * model.H * TRACE_FIELDS.length + i] = norm(x);
  }
  return linear(t('head.weight'), layerNorm(x, t('ln_out.weight'), t('ln_out.bias')));
}

/** Flattens a state as the golden .state.f32 files do: per layer attX, S, ffnX. */
export function stateToFloat32(model, state) {
  const { C, H, N } = model;
  const per = 2 * C + H * N * N;
  const out = new Float32Array(model.L * per);
  state.forEach((st, i) => {
    out.set(st.attX, i * per);
    out.set(st.S, i * per + C);
    out.set(st.ffnX, i * per + C + H * N * N);
  });
  return out;
}

/**
 * Runs `tokens` from the zero state.
 * Returns {logits: Float32Array(T*V), state: Float32Array, argmax: number[]}.
 */
export function runSequence(model, tokens) {
  const state = zeroState(model);
  const logits = new Float32Array(tokens.length * model.V);
  const argmax = [];
  tokens.forEach((tok, n) => {
    const row = Float32Array.from(step(model, state, tok));
    logits.set(row, n * model.V);
    let best = 0;
    for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
    argmax.push(best);
  });
  return { logits, state: stateToFloat32(model, state), argmax };
}
