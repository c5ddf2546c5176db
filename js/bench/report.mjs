// The benchmark's results as tables (pure: results in, text out; tested with made-up
// timings). A cell is one runtime at one precision and thread count; its runs are the
// rounds of the bench, each a median of several measurements; the tables show the median
// of the runs, and ratios ours / peer of those medians, both measured in the same run.

/** The runtimes, in the order the bench runs each cell (ours right before its peer). */
export const RUNTIMES = {
  'ours-native': { label: 'ours native', ours: true },
  'llama-native': { label: 'llama.cpp', ours: false },
  'ours-node': { label: 'ours Node', ours: true },
  'ours-chromium': { label: 'ours Chromium', ours: true },
  wllama: { label: 'wllama', ours: false },
};

/** Our precisions and the llama.cpp type each is compared with. */
export const PRECISIONS = {
  bf16: { quant: 'keep', gguf: 'F16' },
  int8: { quant: 'int8', gguf: 'Q8_0' },
  q4: { quant: 'q4', gguf: 'Q4_0' },
};

// The ratios printed, [ours, peer]: each of our runs against the peer that runs like it.
const RATIOS = [['ours-native', 'llama-native'], ['ours-node', 'llama-native'], ['ours-chromium', 'wllama'], ['ours-chromium', 'ours-node']];

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** a / b, or null when either is missing or not positive. */
export function ratio(a, b) {
  return a > 0 && b > 0 ? a / b : null;
}

/**
 * The medians of one cell: {decode, prefill: {length: tps}, load_s, peak_memory_mb} or
 * null when the cell has no successful run.
 */
export function cellSummary(results, runtime, precision, threads) {
  const cell = results.cells.find((c) => c.runtime === runtime && c.precision === precision && c.threads === threads);
  const runs = (cell?.runs ?? []).filter((r) => !r.error);
  if (!runs.length) return null;
  const prefill = {};
  results.prefillLengths.forEach((n, i) => { prefill[n] = median(runs.map((r) => r.prefill_tps[i])); });
  return {
    decode: median(runs.map((r) => r.decode_tps)), prefill,
    load_s: median(runs.map((r) => r.load_s)), peak_memory_mb: Math.max(...runs.map((r) => r.peak_memory_mb ?? -1)),
  };
}

/**
 * Multiply-adds per token of a prompt of n tokens: every matrix of every layer (r, k, v,
 * output, the two FFN matrices, the LoRAs; layer 0 has no value LoRA), and the head once
 * per prompt (only the last token's logits are computed). Null when the results do not
 * give the FFN and LoRA sizes.
 */
export function prefillMacsPerToken(model, n) {
  if (!model?.ffn || !model.lora) return null;
  const { n_layer: L, n_embd: C, vocab: V, ffn: F, lora } = model;
  const layers = L * (4 * C * C + 2 * C * F + 2 * C * (lora.w + lora.a + lora.g)) + (L - 1) * 2 * C * lora.v;
  return layers + (V * C) / n;
}

const fmt = (v, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));
const fmtRatio = (v) => (v === null ? '-' : `${v.toFixed(2)}x`);

function grid(head, rows) {
  const lines = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => String(l[i]).length)));
  const out = lines.map((l) => l.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
  out.splice(1, 0, widths.map((x) => '-'.repeat(x)).join('  '));
  return out.join('\n');
}

/** The thread counts measured for a precision, ascending. */
function threadCounts(results, precision) {
  return [...new Set(results.cells.filter((c) => c.precision === precision).map((c) => c.threads))].sort((a, b) => a - b);
}

/** The results of runBench as text: speed per precision, decode against bandwidth, load and memory, peers missing. */
export function formatReport(results) {
  const out = [];
  const m = results.machine;
  out.push(`${results.shape} shape (L${results.model.n_layer} C${results.model.n_embd} V${results.model.vocab}), random weights; ${m.cpu}${m.features?.length ? ` (${m.features.join(' ')})` : ''}, ${m.cores} cores, ` +
    `Node ${m.node}${m.chromium ? `, Chromium ${m.chromium}` : ''}; ${results.date}; load average ${fmt(results.loadavg.start, 2)} at the start, ${fmt(results.loadavg.end, 2)} at the end`);
  out.push(`tokens/s, median of ${results.rounds} round${results.rounds > 1 ? 's' : ''}; each of our cells runs right before its peer's; ratios ours / peer.`);
  const ran = Object.keys(RUNTIMES).filter((r) => (results.runtimes ?? Object.keys(RUNTIMES)).includes(r) && !results.missing[r]);
  const ratios = RATIOS.filter(([a, b]) => ran.includes(a) && ran.includes(b));
  for (const precision of Object.keys(PRECISIONS).filter((p) => results.precisions.includes(p))) {
    const rows = [];
    for (const threads of threadCounts(results, precision)) {
      const s = Object.fromEntries(ran.map((r) => [r, cellSummary(results, r, precision, threads)]));
      const metrics = [...results.prefillLengths.map((n) => [`prefill ${n}`, (x) => x?.prefill[n]]), [`decode ${results.decodeTokens}`, (x) => x?.decode]];
      for (const [name, get] of metrics)
        rows.push([`${name}, ${threads}t`, ...ran.map((r) => fmt(get(s[r]))), ...ratios.map(([a, b]) => fmtRatio(ratio(get(s[a]), get(s[b]))))]);
    }
    out.push('', `${precision} (llama.cpp ${PRECISIONS[precision].gguf})`);
    out.push(grid(['', ...ran.map((r) => RUNTIMES[r].label), ...ratios.map(([a, b]) => `${RUNTIMES[a].label.replace('ours ', '')}/${RUNTIMES[b].label.replace('ours ', '')}`)], rows));
  }

  // Decode against the bandwidth measured in the same rounds.
  const bwRows = [];
  for (const precision of results.precisions) {
    const bytes = results.decodeWeightBytes[precision];
    for (const threads of threadCounts(results, precision)) {
      const bw = median(results.bandwidth[threads] ?? []);
      const part = (runtime) => {
        const s = cellSummary(results, runtime, precision, threads);
        if (!s?.decode || !bytes) return '-';
        const gbs = (s.decode * bytes) / 1e9;
        return bw ? `${gbs.toFixed(2)} = ${((100 * gbs) / bw).toFixed(0)}%` : gbs.toFixed(2);
      };
      bwRows.push([`${precision}, ${threads}t`, bytes ? fmt(bytes / 1e6) : '-', fmt(bw, 2), ...['ours-native', 'ours-node', 'ours-chromium'].filter((r) => ran.includes(r)).map(part)]);
    }
  }
  out.push('', 'decode: weights read per token and that rate against the machine\'s read bandwidth (GB/s, measured each round by rwkv_bench)');
  out.push(grid(['', 'MB/token', 'bandwidth', ...['ours-native', 'ours-node', 'ours-chromium'].filter((r) => ran.includes(r)).map((r) => RUNTIMES[r].label)], bwRows));

  // Prefill as a rate of multiply-adds: the compute each runtime reaches (prefill is
  // bound by its matrix kernels), the same work on both sides.
  const longest = Math.max(...results.prefillLengths);
  const macs = prefillMacsPerToken(results.model, longest);
  if (macs) {
    const macRows = [];
    for (const precision of results.precisions)
      for (const threads of threadCounts(results, precision))
        macRows.push([`${precision}, ${threads}t`, ...ran.map((r) => fmt((cellSummary(results, r, precision, threads)?.prefill[longest] ?? NaN) * macs / 1e9, 2))]);
    out.push('', `prefill ${longest}: GMAC/s (${fmt(macs / 1e6, 0)} M multiply-adds of the matrices and LoRAs per token, times tokens/s)`);
    out.push(grid(['', ...ran.map((r) => RUNTIMES[r].label)], macRows));
  }

  const loadRows = [];
  for (const precision of results.precisions)
    for (const r of ran) {
      const cells = threadCounts(results, precision).map((t) => cellSummary(results, r, precision, t)).filter(Boolean);
      if (!cells.length) continue;
      const peak = Math.max(...cells.map((c) => c.peak_memory_mb));
      loadRows.push([`${precision}, ${RUNTIMES[r].label}`, fmt(median(cells.map((c) => c.load_s)), 2), peak > 0 ? fmt(peak, 0) : '-']);
    }
  out.push('', 'load (s, ours: quantizing on load included) and peak memory (MB: RSS natively and for llama.cpp, the wasm heap for ours in wasm; wllama: not measured)');
  out.push(grid(['', 'load s', 'peak MB'], loadRows));

  const notes = [];
  if (results.bandwidthError) notes.push(`bandwidth: not measured (${results.bandwidthError})`);
  for (const [r, reason] of Object.entries(results.missing)) notes.push(`${RUNTIMES[r]?.label ?? r}: missing (${reason})`);
  for (const c of results.cells)
    for (const run of c.runs.filter((x) => x.error)) notes.push(`${RUNTIMES[c.runtime].label}, ${c.precision}, ${c.threads}t: ${run.error}`);
  if (notes.length) out.push('', ...[...new Set(notes)]);
  if (results.durationS) out.push('', `the run took ${(results.durationS / 60).toFixed(1)} min`);
  return out.join('\n');
}
