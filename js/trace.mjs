// The trace of generate({trace: true}) (docs/inspect.md): per token fed, one record of
// Float32 values laid out as the core writes them (src/model/trace.h):
//   (L, H, TRACE_FIELDS.length)  per layer and head, the fields below in order
//   (L)                          per layer, the norm of the residual stream after it
// Pure data and small helpers, no I/O.

/** The per-head fields of a record, in order. */
export const TRACE_FIELDS = Object.freeze([
  'stateNorm',  // ‖S‖ (Frobenius) of the head's N × N state after the token
  'decayMean',  // mean decay w of the head's channels
  'decayStd',   // their standard deviation
  'halfLife',   // ln 0.5 / ln(mean w): tokens until the mean decay halves what is stored
  'rate',       // mean in-context learning rate a
  'update',     // ‖v kᵀ‖ / ‖S‖: the size of what the token wrote, against the state
  'valueMix',   // mean value-residual gate toward layer 0's v (NaN in layer 0)
]);

const FIELD = Object.fromEntries(TRACE_FIELDS.map((f, i) => [f, i]));

/** Floats per token record for a model config ({nLayer, nHead}). */
export function traceRecordSize({ nLayer, nHead }) {
  return nLayer * nHead * TRACE_FIELDS.length + nLayer;
}

/**
 * Reads records (a Float32Array of whole records, e.g. a traced piece's `trace`):
 * field(t, layer, head, name) and residual(t, layer) of token t among them.
 */
export function traceReader(records, config) {
  const size = traceRecordSize(config);
  const F = TRACE_FIELDS.length, H = config.nHead, L = config.nLayer;
  return {
    tokens: records.length / size,
    field: (t, layer, head, name) => records[t * size + (layer * H + head) * F + FIELD[name]],
    residual: (t, layer) => records[t * size + L * H * F + layer],
  };
}

// A dark-to-bright color scale (a few stops of viridis), for heatmaps.
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** The color of v in [0, 1] as [r, g, b]; NaN is mid grey. */
export function heatColor(v) {
  if (Number.isNaN(v)) return [128, 128, 128];
  const x = Math.min(Math.max(v, 0), 1) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2), f = x - i;
  return STOPS[i].map((c, k) => Math.round(c + (STOPS[i + 1][k] - c) * f));
}

// heatColor at 256 steps, then NaN's grey: what heatmap() paints with.
const HEAT_LUT = Uint8Array.from([...Array.from({ length: 256 }, (_, i) => heatColor(i / 255)), heatColor(NaN)].flat());
const NAN_COLOR = 256 * 3;

/**
 * The heatmap of one per-head field over tokens: a column per token record, a row per
 * layer and head (layer 0 head 0 on top, then layer 0 head 1, ...), each row scaled to its
 * own largest value over these tokens (so a row shows when its head fills and forgets).
 * Returns {width, height, rgba} with one RGBA pixel per cell.
 */
export function heatmap(records, config, field = 'stateNorm') {
  const { nLayer: L, nHead: H } = config;
  const size = traceRecordSize(config), F = TRACE_FIELDS.length, f = FIELD[field];
  const width = records.length / size, height = L * H;
  const rgba = new Uint8ClampedArray(width * height * 4);
  const max = new Float64Array(height);  // each row's largest, token by token (records are contiguous)
  for (let t = 0; t < width; t++)
    for (let row = 0, at = t * size + f; row < height; row++, at += F) if (records[at] > max[row]) max[row] = records[at];
  for (let t = 0; t < width; t++) {
    for (let row = 0, at = t * size + f; row < height; row++, at += F) {
      const v = max[row] > 0 ? records[at] / max[row] : 0;
      const c = Number.isNaN(v) ? NAN_COLOR : Math.round(Math.min(Math.max(v, 0), 1) * 255) * 3;
      const px = (row * width + t) * 4;
      rgba[px] = HEAT_LUT[c];
      rgba[px + 1] = HEAT_LUT[c + 1];
      rgba[px + 2] = HEAT_LUT[c + 2];
      rgba[px + 3] = 255;
    }
  }
  return { width, height, rgba };
}
