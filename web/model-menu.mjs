// The page's menu of published models (js/catalog.mjs): one button per model with its
// download size, the memory its weights take in each precision (the core's plan for its
// shape), which precision `quant: 'auto'` picks within this tab's memory budget (or that
// none fits), and the decode speed to expect here: decoding reads every weight once per
// token, so this device's measured bytes per second over the bytes a token reads.
import { G1_MODELS } from '../js/catalog.mjs';

// The weight types of a plan (rwkv.mjs planShapes) and their names on the page.
const PRECISIONS = [['BF16', 'bf16'], ['Q8_0', 'int8'], ['Q4_0', '4-bit']];

function gb(bytes) {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${Math.round(bytes / 2 ** 20)} MB`;
}

/**
 * Fills `list` (a <ul>) with the published models.
 * plans: {[id]: a plan of planShapes in rwkv.mjs ({bytes: {BF16, Q8_0, Q4_0, ...}, auto})}, or
 *   null while there is none yet; bytesPerSecond: this device's decode rate in
 *   weight bytes per second (null until a generation was timed); selected: the URL in the
 *   model field; onChoose(entry) when a model is picked.
 */
export function renderModelMenu(list, { plans, bytesPerSecond, selected, onChoose }) {
  list.replaceChildren(...G1_MODELS.map((entry) => {
    const plan = plans?.[entry.id];
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'catalog-item';
    button.dataset.model = entry.id;
    button.setAttribute('aria-pressed', String(entry.url === selected));
    const head = document.createElement('span');
    head.className = 'catalog-head';
    const name = document.createElement('strong');
    name.textContent = entry.name;
    const size = document.createElement('span');
    size.className = 'catalog-size';
    size.textContent = `${gb(entry.bytes)} download`;
    head.append(name, size);
    const memory = document.createElement('span');
    memory.className = 'catalog-memory';
    if (plan) {
      memory.append('In memory: ');
      PRECISIONS.forEach(([key, label], i) => {
        const part = document.createElement('span');
        part.textContent = `${label} ${gb(plan.bytes[key])}`;
        if (plan.auto === key) {
          part.className = 'fits';
          part.title = 'The precision loaded with “Automatic”: the best that fits this tab’s memory';
        }
        memory.append(...(i ? [' · ', part] : [part]));
      });
    } else {
      memory.textContent = 'In memory: …';
    }
    const note = document.createElement('span');
    note.className = 'catalog-note';
    if (plan && !plan.auto) {
      note.classList.add('too-large');
      note.textContent = 'Too large for this tab, even as 4-bit';
    } else if (plan && bytesPerSecond) {
      const rate = bytesPerSecond / plan.bytes[plan.auto];
      const label = PRECISIONS.find(([key]) => key === plan.auto)[1];
      note.textContent = `About ${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)} tokens/s here as ${label} (from this device’s last reply)`;
    } else {
      note.textContent = plan ? 'Speed: shown after a first reply on this device' : '';
    }
    button.append(head, memory, note);
    button.addEventListener('click', () => onChoose(entry));
    item.append(button);
    return item;
  }));
}
