// "Inside the model": the panel beside the chat that shows RWKV-7's state as it
// generates (docs/inspect.md). While the panel is open, generations ask for the trace
// (the `trace` option) and every traced piece comes here; the views are drawn at most
// once per animation frame, and only while the panel is open:
//   - a heatmap of each head's state norm over the last WINDOW tokens, each token's text
//     under its column; pointing at a cell shows that token's learning rate and update;
//   - each head's decay half-life at the last token, by layer, on a log scale;
//   - the selected head's N x N state (session.inspect), redrawn as tokens stream.
// Uses only the public library, like any page would.
import { heatmap, traceReader, traceRecordSize } from '../js/rwkv.mjs';

const WINDOW = 300;      // tokens the heatmap keeps
const COLUMN = 8;        // px per token in the heatmap
const LABELS = 64;       // px under the heatmap for the tokens' text
const STORE_KEY = 'rwkv-web.inspector-open';

const $ = (id) => document.getElementById(id);

/** The text of a token as a column label: control characters made visible, cut short. */
function label(text) {
  const shown = text.replace(/\n/g, '⏎').replace(/\t/g, '⇥').replace(/ /g, '·').replace(/[\x00-\x1f]/g, '�');
  return shown.length > 9 ? `${shown.slice(0, 8)}…` : shown;
}

/** A blue-white-orange color for v in [-1, 1]. */
function diverging(v) {
  const x = Math.max(-1, Math.min(1, v));
  const to = x >= 0 ? [234, 88, 12] : [37, 99, 235];
  const f = Math.sqrt(Math.abs(x));
  return [255 + (to[0] - 255) * f, 255 + (to[1] - 255) * f, 255 + (to[2] - 255) * f];
}

const fmt = (v, digits = 2) => (Number.isFinite(v) ? (Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(digits + 1)) : '∞');

/**
 * The panel. `model()` and `session()` give the loaded model and the session that is
 * generating (or last generated). Returns {tracing, take(piece)}: `tracing` says whether
 * generations should ask for the trace now; take() gives a generation's piece (a string,
 * or a traced piece) to the panel and returns its text.
 */
export function createInspector({ model, session }) {
  const el = {
    root: $('inspector'), toggle: $('inspector-toggle'), close: $('inspector-close'), tip: $('inspector-tip'),
    heat: $('inspector-heat'), heatScroll: $('inspector-heat-scroll'), life: $('inspector-life'), state: $('inspector-state'),
    layer: $('inspector-layer'), head: $('inspector-head'),
  };
  let owner = null;                  // the model the records are of
  let config = null, size = 0;
  let records = new Float32Array(0);  // room for 2 WINDOW records; the window is its first `count`
  let texts = [];
  let count = 0;
  let seen = 0;                      // tokens traced since the page loaded
  let pick = { layer: 0, head: 0 };
  let frame = 0, dirty = false, stateDirty = false, inspecting = false;
  let draws = 0;

  const isOpen = () => !el.root.hidden;

  function setOpen(open, remember = true) {
    el.root.hidden = !open;
    el.toggle.setAttribute('aria-expanded', String(open));
    el.toggle.classList.toggle('active', open);
    if (remember) {
      try { localStorage.setItem(STORE_KEY, open ? '1' : '0'); } catch { /* private mode */ }
    }
    if (open) {
      dirty = stateDirty = true;
      schedule();
    }
  }

  // A new model shape starts over (the records would not fit it).
  function useConfig(c) {
    if (config && c.nLayer === config.nLayer && c.nHead === config.nHead && c.headSize === config.headSize) return;
    config = { nLayer: c.nLayer, nHead: c.nHead, headSize: c.headSize };
    size = traceRecordSize(config);
    records = new Float32Array(2 * WINDOW * size);
    texts = [];
    count = 0;
    pick = { layer: Math.min(pick.layer, c.nLayer - 1), head: Math.min(pick.head, c.nHead - 1) };
    const options = (n, prefix) => Array.from({ length: n }, (_, i) => new Option(`${prefix}${i}`, String(i)));
    el.layer.replaceChildren(...options(c.nLayer, ''));
    el.head.replaceChildren(...options(c.nHead, ''));
    el.layer.value = String(pick.layer);
    el.head.value = String(pick.head);
    el.state.width = el.state.height = Math.max(1, Math.floor(192 / c.headSize)) * c.headSize;
  }

  function add(piece) {
    const n = piece.tokens.length;
    if (!n) return;
    if (model() !== owner) {  // another model: start over
      owner = model();
      config = null;
    }
    useConfig(owner.config);
    // Keep the newest WINDOW records in front of 2 WINDOW of room: shift only when full.
    if (n >= WINDOW) {
      records.set(piece.trace.subarray((n - WINDOW) * size), 0);
      texts = piece.tokenTexts.slice(n - WINDOW);
      count = WINDOW;
    } else {
      if (count + n > 2 * WINDOW) {
        const keep = WINDOW - n;
        records.copyWithin(0, (count - keep) * size, count * size);
        texts = texts.slice(count - keep);
        count = keep;
      }
      records.set(piece.trace, count * size);
      texts.push(...piece.tokenTexts);
      count += n;
    }
    seen += n;
    el.root.dataset.tokens = String(seen);
    dirty = stateDirty = true;
    schedule();
  }

  function schedule() {
    if (!frame && isOpen()) frame = requestAnimationFrame(draw);
  }

  // The window: the last min(count, WINDOW) records.
  function windowRecords() {
    const first = Math.max(0, count - WINDOW);
    return { data: records.subarray(first * size, count * size), texts: texts.slice(first) };
  }

  function draw() {
    frame = 0;
    if (!isOpen() || !config) return;
    if (dirty) {
      dirty = false;
      const { data, texts: shown } = windowRecords();
      drawHeat(data, shown);
      drawLife(data);
      draws++;
      el.root.dataset.draws = String(draws);
    }
    if (stateDirty && !inspecting) refreshState();
  }

  const css = (name) => getComputedStyle(el.root).getPropertyValue(name).trim() || '#888';

  function drawHeat(data, shown) {
    const { nLayer: L, nHead: H } = config;
    const img = heatmap(data, config, 'stateNorm');
    const rows = L * H, rowPx = Math.max(2, Math.min(14, Math.floor(220 / rows)));
    const stick = el.heatScroll.scrollLeft + el.heatScroll.clientWidth >= el.heatScroll.scrollWidth - COLUMN;
    const width = Math.max(1, img.width) * COLUMN, height = rows * rowPx + LABELS;
    if (el.heat.width !== width || el.heat.height !== height) Object.assign(el.heat, { width, height });
    const ctx = el.heat.getContext('2d');
    ctx.clearRect(0, 0, width, height);
    if (img.width) {
      const cells = new OffscreenCanvas(img.width, img.height);
      cells.getContext('2d').putImageData(new ImageData(img.rgba, img.width, img.height), 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(cells, 0, 0, img.width * COLUMN, rows * rowPx);
    }
    ctx.fillStyle = css('--surface');
    for (let i = 1; H > 1 && i < L; i++) ctx.fillRect(0, i * H * rowPx - 0.5, width, 1);  // between layers
    // The tokens' text, written upwards under their columns.
    ctx.save();
    ctx.fillStyle = css('--muted');
    ctx.font = `10px ${css('--mono')}`;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    ctx.translate(0, rows * rowPx + 3);
    ctx.rotate(-Math.PI / 2);
    for (let t = 0; t < shown.length; t++) ctx.fillText(label(shown[t]), 0, t * COLUMN + COLUMN / 2);
    ctx.restore();
    el.heat.dataset.rowPx = String(rowPx);
    if (stick) el.heatScroll.scrollLeft = el.heatScroll.scrollWidth;
  }

  function drawLife(data) {
    const { nLayer: L, nHead: H } = config;
    const r = traceReader(data, config);
    const canvas = el.life, ctx = canvas.getContext('2d');
    const width = canvas.clientWidth || canvas.width;
    if (canvas.width !== width) canvas.width = width;
    const height = canvas.height, left = 44, bottom = 18, top = 6;
    ctx.clearRect(0, 0, width, height);
    const decades = 4;  // 1 to 10^4 tokens
    const y = (v) => top + (height - top - bottom) * (1 - Math.min(Math.max(Math.log10(v), 0), decades) / decades);
    ctx.font = `10px ${css('--font')}`;
    ctx.fillStyle = css('--muted');
    ctx.strokeStyle = css('--border');
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let d = 0; d <= decades; d++) {
      ctx.beginPath();
      ctx.moveTo(left, y(10 ** d));
      ctx.lineTo(width, y(10 ** d));
      ctx.stroke();
      ctx.fillText(`${10 ** d}`, left - 4, y(10 ** d));
    }
    ctx.textAlign = 'center';
    const colW = (width - left) / L;
    for (let i = 0; i < L; i++) ctx.fillText(L > 24 && i % 4 ? '' : String(i), left + (i + 0.5) * colW, height - bottom / 2);
    if (!r.tokens) return;
    const last = r.tokens - 1;
    for (let i = 0; i < L; i++)
      for (let h = 0; h < H; h++) {
        const v = r.field(last, i, h, 'halfLife');
        const cx = left + (i + (h + 0.5) / H) * colW, cy = y(Number.isFinite(v) ? v : 10 ** decades);
        const selected = i === pick.layer && h === pick.head;
        ctx.fillStyle = selected ? css('--danger') : css('--accent');
        ctx.beginPath();
        ctx.arc(cx, cy, selected ? 4 : 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
  }

  async function refreshState() {
    const s = session();
    if (!s) return;
    stateDirty = false;
    inspecting = true;
    const where = { ...pick };
    try {
      drawState(await s.inspect(where), where);
    } catch {
      // the session went away (a new chat, a new model): nothing to show
    } finally {
      inspecting = false;
      if (stateDirty) schedule();
    }
  }

  function drawState(S, where) {
    const N = Math.round(Math.sqrt(S.length));
    let max = 0;
    for (const v of S) max = Math.max(max, Math.abs(v));
    const img = new ImageData(N, N);
    for (let j = 0; j < S.length; j++) {
      const [r, g, b] = diverging(max > 0 ? S[j] / max : 0);
      img.data[j * 4] = r;
      img.data[j * 4 + 1] = g;
      img.data[j * 4 + 2] = b;
      img.data[j * 4 + 3] = 255;
    }
    const cells = new OffscreenCanvas(N, N);
    cells.getContext('2d').putImageData(img, 0, 0);
    const ctx = el.state.getContext('2d');
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, 0, 0, el.state.width, el.state.height);
    el.state.dataset.layer = String(where.layer);
    el.state.dataset.head = String(where.head);
    el.state.title = `layer ${where.layer}, head ${where.head}: largest |value| ${fmt(max)}`;
  }

  function cellAt(event) {
    if (!config || !count) return null;
    const rect = el.heat.getBoundingClientRect();
    const x = (event.clientX - rect.left) * (el.heat.width / rect.width), yy = (event.clientY - rect.top) * (el.heat.height / rect.height);
    const rowPx = Number(el.heat.dataset.rowPx), { data, texts: shown } = windowRecords();
    const t = Math.floor(x / COLUMN), row = Math.floor(yy / rowPx);
    if (t < 0 || t >= shown.length) return null;
    const inRows = row >= 0 && row < config.nLayer * config.nHead;
    return { t, data, text: shown[t], layer: inRows ? Math.floor(row / config.nHead) : null, head: inRows ? row % config.nHead : null };
  }

  el.heat.addEventListener('mousemove', (event) => {
    const c = cellAt(event);
    if (!c) return;
    const r = traceReader(c.data, config);
    const { nLayer: L, nHead: H } = config;
    let rate = 0, update = 0;
    for (let i = 0; i < L; i++) for (let h = 0; h < H; h++) {
      rate += r.field(c.t, i, h, 'rate') / (L * H);
      update += r.field(c.t, i, h, 'update') / (L * H);
    }
    let text = `“${label(c.text)}”: learning rate ${fmt(rate)}, update ${fmt(update)} × the state (mean of all heads)`;
    if (c.layer !== null)
      text += ` · layer ${c.layer} head ${c.head}: rate ${fmt(r.field(c.t, c.layer, c.head, 'rate'))}, update ${fmt(r.field(c.t, c.layer, c.head, 'update'))}, half-life ${fmt(r.field(c.t, c.layer, c.head, 'halfLife'))}`;
    el.tip.textContent = text;
  });
  el.heat.addEventListener('click', (event) => {
    const c = cellAt(event);
    if (c?.layer !== null && c?.layer !== undefined) select(c.layer, c.head);
  });

  function select(layer, head) {
    pick = { layer, head };
    el.layer.value = String(layer);
    el.head.value = String(head);
    dirty = stateDirty = true;
    schedule();
  }
  el.layer.addEventListener('change', () => select(Number(el.layer.value), pick.head));
  el.head.addEventListener('change', () => select(pick.layer, Number(el.head.value)));
  el.toggle.addEventListener('click', () => setOpen(!isOpen()));
  el.close.addEventListener('click', () => {
    setOpen(false);
    el.toggle.focus();
  });

  // Open by default on wide screens, closed on narrow ones, unless the user chose.
  let saved = null;
  try { saved = localStorage.getItem(STORE_KEY); } catch { /* private mode */ }
  setOpen(saved === null ? matchMedia('(min-width: 1440px)').matches : saved === '1', false);

  return {
    get tracing() { return isOpen() && !!model(); },
    take(piece) {
      if (typeof piece === 'string') return piece;
      add(piece);
      return piece.text;
    },
  };
}
