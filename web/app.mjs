// The demo page: chat and completion with an RWKV-7 model running in a Web Worker
// (js/rwkv.mjs). No framework, no build step.
import {
  load, clearCache, checkValue, planShapes, isKeptOnDevice, defaultGenerateOptions, GENERATE_OPTIONS, PRESETS,
  AbortError, BusyError, InvalidArgumentError, LoadError, ModelFormatError, OutOfMemoryError, VocabError, WorkerCrashedError,
} from '../js/rwkv.mjs';
import { requestFields } from '../js/chat/completions.mjs';
import { G1_MODELS, WORLD_VOCAB_URL, shapeDims } from '../js/catalog.mjs';
import { renderModelMenu } from './model-menu.mjs';
import * as store from './store.mjs';
import { createInspector } from './inspector.mjs';

const DEFAULT_MODEL_URL = G1_MODELS[0].url;
const DEFAULT_VOCAB_URL = WORLD_VOCAB_URL;

// The sampling controls and their limits come from the options schema (js/options.mjs):
// a number field (and a slider where the schema has one) for each numeric option with
// page hints, the stop strings, and "never end at token 0" (bannedTokens [0]).
const NUMBER_OPTIONS = GENERATE_OPTIONS.filter((o) => (o.type === 'number' || o.type === 'integer') && o.ui);
const SAMPLING_KEYS = [...NUMBER_OPTIONS.map((o) => o.name), 'stop', 'banEndOfText'];
const schemaDefaults = Object.fromEntries(NUMBER_OPTIONS.map((o) => [o.name, defaultGenerateOptions[o.name] ?? null]));
const modeDefaults = (preset) => ({
  ...schemaDefaults, stop: [], ...Object.fromEntries(Object.entries(preset).filter(([k]) => SAMPLING_KEYS.includes(k))),
  banEndOfText: (preset.bannedTokens ?? []).includes(0),
});
const MODE_DEFAULTS = { chat: modeDefaults(PRESETS.chat), completion: modeDefaults(PRESETS.completion) };

const $ = (id) => document.getElementById(id);
const ui = Object.fromEntries([
  'drawer-toggle', 'drawer-close', 'sidebar', 'scrim', 'model-status', 'model-dot', 'runtime-info', 'memory-info', 'speed-info',
  'chip-speed', 'update-banner', 'update-reload', 'load-form', 'model-url', 'model-url-row', 'model-browse', 'model-file',
  'model-file-chip', 'model-file-name', 'model-file-clear', 'model-default', 'model-catalog', 'vocab-url', 'vocab-url-row', 'vocab-browse',
  'vocab-file', 'vocab-file-chip', 'vocab-file-name', 'vocab-file-clear', 'vocab-none', 'quant', 'load-button', 'load-cancel',
  'load-progress-box', 'load-progress', 'load-progress-fill', 'load-progress-text', 'load-error', 'model-offline',
  'chat-list', 'chat-list-empty', 'new-chat-side', 'sampling-mode', 'sampling-defaults', 'sampling-form', 'stop',
  'clear-downloads', 'tab-chat', 'tab-completion', 'panel-chat', 'panel-completion', 'new-chat', 'transcript-wrap',
  'welcome', 'welcome-text', 'welcome-open', 'suggestions', 'chat-notice', 'transcript', 'composer', 'composer-input',
  'send-button', 'stop-button', 'completion-input', 'complete-button', 'complete-stop', 'complete-use', 'completion-output',
  'stats', 'drop-overlay', 'chat-options', 'system-prompt', 'thinking', 'json-mode',
].map((id) => [id.replace(/-([a-z])/g, (_, c) => c.toUpperCase()), $(id)]));

// ---------------------------------------------------------------- state

const prefs = store.loadPrefs();
prefs.settings ??= {};
for (const mode of ['chat', 'completion']) prefs.settings[mode] = { ...MODE_DEFAULTS[mode], ...prefs.settings[mode] };
prefs.modelUrl ??= DEFAULT_MODEL_URL;
prefs.vocabUrl ??= DEFAULT_VOCAB_URL;
prefs.mode ??= 'chat';
if (!prefs.quant) prefs.quant = 'auto';
prefs.chatOptions = { system: '', thinking: false, json: false, ...prefs.chatOptions };

const app = {
  model: null,
  modelKey: null,
  completionSession: null,
  busy: null,           // null | 'loading' | 'generating'
  abort: null,          // AbortController of the load or generation in progress
  modelFile: null,      // File chosen for the model (not remembered across reloads)
  vocabFile: null,
  chat: null,           // the open chat {id, title, messages, modelKey, ...}; id null until saved
  memoryTimer: 0,
  plans: null,          // {[catalog id]: planShapes() plan} of the published models
};

const inspector = createInspector({ model: () => app.model, session: () => (prefs.mode === 'completion' ? app.completionSession : app.chatSession) });

function savePrefs() { store.savePrefs(prefs); }

function setAppState() {
  document.documentElement.dataset.app = app.busy ?? (app.model ? 'ready' : 'empty');
}

// ---------------------------------------------------------------- formatting

function mb(bytes) {
  const v = bytes / 2 ** 20;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
function bytesText(bytes) {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GB`;
  if (bytes >= 2 ** 20) return `${mb(bytes)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}
function durationText(s) {
  if (!Number.isFinite(s)) return '…';
  if (s < 1) return 'under a second';
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}
function rateText(tps) {
  return tps >= 100 ? tps.toFixed(0) : tps.toFixed(1);
}
const STOP_REASONS = { stop: 'stop string', max_tokens: 'max tokens reached', aborted: 'stopped', end_of_text: 'end of text', stop_token: 'stop token' };

function escapeStops(list) {
  return list.map((s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')).join('\n');
}
function parseStops(text) {
  return text.split('\n').filter((l) => l.length > 0)
    .map((l) => l.replace(/\\(n|r|t|\\)/g, (_, c) => ({ n: '\n', r: '\r', t: '\t', '\\': '\\' })[c]));
}

// ---------------------------------------------------------------- errors

/** {title, message, hint} for an error of the library or the page. */
function explain(err) {
  const message = err?.message ?? String(err);
  if (err instanceof OutOfMemoryError) {
    return { title: 'The model does not fit in memory', message,
      hint: 'WebAssembly can address at most 4 GB, and the browser may allow less. Weights in memory “Automatic” or 4-bit take least (the menu of published models shows each one’s size); else try a smaller model, close other tabs, or use fewer chats at once.' };
  }
  if (err instanceof ModelFormatError) {
    return { title: 'This is not a usable RWKV-7 model file', message,
      hint: 'The page reads RWKV-7 (x070) models: official .pth or .safetensors checkpoints, RWKV-7 GGUF files (llama.cpp), or .rwkv files (node js/cli.mjs convert). A partial download or another architecture gives this error.' };
  }
  if (err instanceof VocabError) {
    return { title: 'The vocabulary does not fit this model', message,
      hint: 'RWKV-7 World models use rwkv_vocab_v20230424.txt. Byte-level models (256 tokens) need none: tick “None”.' };
  }
  if (err instanceof LoadError) {
    return { title: 'The download failed', message,
      hint: navigator.onLine === false ? 'You are offline, and this file is not saved on this device yet.'
        : 'Check the address. Another site must allow the download (CORS).' };
  }
  if (err instanceof WorkerCrashedError) {
    return { title: 'The model’s worker stopped', message, hint: 'It is restarted on the next request. If it happens again, the device may be short of memory.' };
  }
  if (err instanceof InvalidArgumentError) return { title: 'A setting is not valid', message, hint: '' };
  if (err instanceof BusyError) return { title: 'Still busy', message, hint: 'Wait for the reply, or stop it first.' };
  if (err instanceof AbortError || err?.name === 'AbortError') return { title: 'Cancelled', message: '', hint: '' };
  return { title: 'Something went wrong', message, hint: '' };
}

const NO_VOCAB = {
  title: 'This model needs its vocabulary',
  message: `It has more than 256 tokens, so it is not byte-level: without the vocabulary it cannot read or write text.`,
  hint: 'RWKV-7 World models use rwkv_vocab_v20230424.txt. Untick “None” and load it again with the vocabulary.',
};

function renderAlert(el, err, override = {}) {
  const { title, message, hint } = { ...explain(err), ...override };
  const strong = document.createElement('strong');
  strong.textContent = title;
  const parts = [strong];
  if (message) {
    const p = document.createElement('p');
    p.textContent = message;
    parts.push(p);
  }
  if (hint) {
    const p = document.createElement('p');
    p.className = 'alert-hint';
    p.textContent = hint;
    parts.push(p);
  }
  el.replaceChildren(...parts);
  el.hidden = false;
}

// ---------------------------------------------------------------- runtime facts

const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]);
const runtime = {
  simd: typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE),
  isolated: globalThis.crossOriginIsolated === true,
  cores: navigator.hardwareConcurrency || 1,
};

// Threads a model gets here: the library's default (min(cores, 4)) where the page is
// cross-origin isolated, else one. Once a model is loaded, its own runtime is shown.
const expectedThreads = () =>
  runtime.isolated && typeof SharedArrayBuffer === 'function' ? Math.max(1, Math.min(runtime.cores, 4)) : 1;

/** The runtime chip: what the loaded model runs on (model.runtime), or what a model would. */
function showRuntime(model = app.model) {
  const loaded = model?.runtime;
  const threads = loaded?.threads ?? expectedThreads();
  const simd = loaded ? /simd/i.test(loaded.simd) : runtime.simd;
  const iso = runtime.isolated ? 'cross-origin isolated' : 'not isolated';
  ui.runtimeInfo.textContent = `${simd ? 'WASM SIMD' : 'WASM (no SIMD)'} · ${threads} thread${threads === 1 ? '' : 's'} · ${iso}`;
  ui.runtimeInfo.parentElement.title = [
    simd ? 'WebAssembly with 128-bit SIMD.' : 'This browser lacks WebAssembly SIMD, which the runtime needs.',
    `${loaded ? 'The model runs' : 'A model will run'} on ${threads} thread${threads === 1 ? '' : 's'}.`,
    runtime.isolated ? `Cross-origin isolated: threads are possible (${runtime.cores} cores; up to 4 are used).`
      : 'Not cross-origin isolated (no COOP/COEP headers): threads are not possible here.',
  ].join(' ');
}

// ---------------------------------------------------------------- model sources

function setFileChip(which, file) {
  const row = which === 'model' ? ui.modelUrlRow : ui.vocabUrlRow;
  const chip = which === 'model' ? ui.modelFileChip : ui.vocabFileChip;
  const name = which === 'model' ? ui.modelFileName : ui.vocabFileName;
  if (which === 'model') app.modelFile = file; else app.vocabFile = file;
  row.hidden = !!file;
  chip.hidden = !file;
  name.textContent = file ? `${file.name} · ${bytesText(file.size)}` : '';
  if (which === 'vocab' && file) {
    ui.vocabNone.checked = false;
    syncVocabNone();
  }
}

function useFile(file) {
  if (!file) return;
  if (/\.(txt|vocab)$/i.test(file.name)) {
    setFileChip('vocab', file);
    prefs.lastVocabFile = file.name;
  } else {
    setFileChip('model', file);
    showModelMenu();
    prefs.lastModelFile = file.name;
    // A .rwkv or GGUF file usually carries its vocabulary: use it rather than download one.
    if (/\.(rwkv|gguf)$/i.test(file.name) && !app.vocabFile) {
      ui.vocabNone.checked = true;
      syncVocabNone();
    }
  }
  savePrefs();
  ui.loadError.hidden = true;
}

function syncVocabNone() {
  const none = ui.vocabNone.checked;
  ui.vocabUrl.disabled = none;
  ui.vocabBrowse.disabled = none;
  ui.vocabFileChip.classList.toggle('disabled', none);
}

function modelSource() {
  if (app.modelFile) return app.modelFile;
  const url = ui.modelUrl.value.trim();
  return url || null;
}
function vocabSource() {
  if (ui.vocabNone.checked) return undefined;
  if (app.vocabFile) return app.vocabFile;
  return ui.vocabUrl.value.trim() || undefined;
}
function absolute(url) {
  try {
    return new URL(url, location.href).href;
  } catch {
    return null;
  }
}

/** The menu of published models, marking the one in the model field. */
function showModelMenu() {
  renderModelMenu(ui.modelCatalog, {
    plans: app.plans, bytesPerSecond: prefs.decodeBytesPerSecond ?? null,
    selected: app.modelFile ? null : absolute(ui.modelUrl.value.trim()),
    onChoose(entry) {
      setFileChip('model', null);
      ui.modelUrl.value = entry.url;
      if (!app.vocabFile) ui.vocabUrl.value = WORLD_VOCAB_URL;
      ui.vocabNone.checked = false;
      syncVocabNone();
      ui.loadError.hidden = true;
      showModelMenu();
      showOfflineNote();
    },
  });
}

/** What each published model takes in memory here, from the core (no model needed). */
async function planPublishedModels() {
  showModelMenu();
  try {
    const plans = await planShapes(G1_MODELS.map((m) => shapeDims(m.shape)));
    app.plans = Object.fromEntries(G1_MODELS.map((m, i) => [m.id, plans[i]]));
  } catch (err) {
    console.warn('the published models could not be planned:', err);
  }
  showModelMenu();
}

// The model at the URL is kept on this device as it would be loaded now (the same quant):
// the converted model with its vocabulary, so no download is needed.
async function showOfflineNote() {
  const src = modelSource();
  const abs = typeof src === 'string' ? absolute(src) : null;
  const ok = !!abs && /^https?:/.test(abs) && await isKeptOnDevice(abs, { quant: prefs.quant }).catch(() => false);
  ui.modelOffline.hidden = !ok;
  return ok;
}

// ---------------------------------------------------------------- loading

function setProgress(fraction, text, { indeterminate = false } = {}) {
  ui.loadProgressBox.hidden = false;
  ui.loadProgressBox.classList.toggle('indeterminate', indeterminate);
  const f = Math.max(0, Math.min(1, fraction || 0));
  ui.loadProgressFill.style.width = `${(f * 100).toFixed(1)}%`;
  ui.loadProgress.value = f;
  ui.loadProgressText.textContent = text;
}

function modelChipText(model) {
  const c = model.config;
  return `${model.name ?? 'model'} · ${c.nLayer}×${c.nEmbd}`;
}

async function disposeModel() {
  clearInterval(app.memoryTimer);
  const m = app.model;
  app.model = null;
  app.modelKey = null;
  app.completionSession = null;
  if (m) showRuntime(null);
  await m?.dispose().catch(() => {});
}

async function loadModel() {
  if (app.busy) return;
  const source = modelSource();
  ui.loadError.hidden = true;
  if (!source) {
    renderAlert(ui.loadError, new InvalidArgumentError('Enter the model’s address, or choose a file.'));
    ui.modelUrl.focus();
    return;
  }
  const vocab = vocabSource();
  if (typeof source === 'string') prefs.modelUrl = source;
  if (!app.vocabFile) prefs.vocabUrl = ui.vocabUrl.value.trim();
  prefs.vocabNone = ui.vocabNone.checked;
  prefs.quant = ui.quant.value;
  prefs.modelKind = app.modelFile ? 'file' : 'url';
  savePrefs();

  app.busy = 'loading';
  app.abort = new AbortController();
  updateControls();
  await disposeModel();
  ui.modelDot.className = 'dot loading';
  ui.modelStatus.textContent = 'Loading…';
  ui.modelOffline.hidden = true;
  setProgress(0, 'Starting…', { indeterminate: true });
  let ready = false;
  const started = performance.now();
  try {
    const model = await load(source, {
      vocab,
      quant: ui.quant.value,
      signal: app.abort.signal,
      onProgress: ({ loaded, total, fraction, bytesPerSecond, secondsLeft, cached }) => {
        if (fraction >= 1) {
          setProgress(1, `${mb(total)} MB ${cached ? 'read from this device' : 'downloaded'} · preparing the model…`, { indeterminate: false });
        } else if (cached) {
          setProgress(fraction, `Reading from this device: ${mb(loaded)} / ${mb(total)} MB`);
        } else {
          setProgress(fraction, `${mb(loaded)} / ${mb(total)} MB · ${mb(bytesPerSecond)} MB/s · ${durationText(secondsLeft)} left`);
        }
      },
    });
    app.model = model;
    showRuntime(model);
    const c = model.config;
    app.modelKey = `${model.name}|${c.nLayer}x${c.nEmbd}x${c.nHead}|V${c.vocabSize}|${c.dtype}`;
    ready = true;
    const secs = (performance.now() - started) / 1000;
    setProgress(1, `Ready in ${secs < 10 ? secs.toFixed(1) : secs.toFixed(0)} s: ${model.name} · ${c.nLayer} layers · ${c.nEmbd} wide · `
      + `${c.vocabSize} tokens · ${bytesText(c.memoryBytes ?? 0)} of ${String(c.dtype ?? '').toLowerCase()} weights`);
    ui.modelDot.className = 'dot ready';
    ui.modelStatus.textContent = modelChipText(model);
    ui.modelStatus.parentElement.title = `${model.name}: ${c.nLayer} layers, ${c.nEmbd} wide, ${c.nHead} heads, `
      + `vocabulary of ${c.vocabSize}${model.hasVocab ? '' : ' (no vocabulary loaded)'}, ${c.dtype} weights`;
    if (!model.hasVocab) renderAlert(ui.loadError, new VocabError(''), NO_VOCAB);
    showChatNotice();
    startMemoryPolling();
    closeDrawer();
    noteWhenCached(model);
  } catch (err) {
    if (!ready) await disposeModel();
    ui.modelDot.className = 'dot error';
    ui.modelStatus.textContent = err?.name === 'AbortError' ? 'No model loaded' : 'Loading failed';
    ui.loadProgressBox.hidden = true;
    if (err?.name !== 'AbortError') renderAlert(ui.loadError, err);
  } finally {
    app.busy = null;
    app.abort = null;
    updateControls();
  }
}

/** The library stores URL downloads once they are complete; says so when that is done. */
async function noteWhenCached(model) {
  if (typeof modelSource() !== 'string') return;
  for (const wait of [0, 300, 1000, 3000, 6000]) {
    await new Promise((r) => setTimeout(r, wait));
    if (app.model !== model || await showOfflineNote()) return;
  }
}

function startMemoryPolling() {
  clearInterval(app.memoryTimer);
  showMemory();
  app.memoryTimer = setInterval(() => {
    if (document.visibilityState === 'visible') showMemory();
  }, 3000);
}

async function showMemory() {
  const model = app.model;
  if (!model) {
    ui.memoryInfo.textContent = '–';
    return;
  }
  try {
    const m = await model.memory();
    const used = m.heapUsedBytes ?? m.wasmHeapBytes;
    ui.memoryInfo.textContent = bytesText(used);
    ui.memoryInfo.parentElement.title = `The model's worker: ${bytesText(used)} in use of a ${bytesText(m.wasmHeapBytes)} WebAssembly heap; `
      + `${m.models} model, ${m.sessions} session${m.sessions === 1 ? '' : 's'}.`;
  } catch {
    /* the worker is busy restarting: next time */
  }
}

// ---------------------------------------------------------------- chats

function blankChat() {
  return { id: null, title: 'New chat', messages: [], modelKey: null, modelName: null, createdAt: Date.now(), updatedAt: Date.now() };
}

function chatCompatible() {
  return !app.chat.modelKey || !app.modelKey || app.chat.modelKey === app.modelKey;
}

/**
 * Says when the open chat was held with another model. (The chat layer keeps the states of
 * conversations by their text, in IndexedDB: nothing to restore here.)
 */
function showChatNotice() {
  ui.chatNotice.hidden = chatCompatible();
  if (!ui.chatNotice.hidden)
    ui.chatNotice.textContent = `This chat was held with another model (${app.chat.modelName ?? 'unknown'}). Load that model to continue it, or start a new chat.`;
}

function messageElement(msg) {
  const el = document.createElement('article');
  el.className = `msg ${msg.role}${msg.error ? ' error' : ''}`;
  el.setAttribute('aria-label', msg.role === 'user' ? 'You' : 'RWKV');
  const avatar = document.createElement('div');
  avatar.className = 'avatar';
  avatar.setAttribute('aria-hidden', 'true');
  avatar.innerHTML = msg.role === 'user'
    ? '<svg viewBox="0 0 24 24" width="16" height="16"><circle cx="12" cy="8" r="4" fill="currentColor"/><path d="M4 21a8 8 0 0 1 16 0" fill="currentColor"/></svg>'
    : '<img src="icon.svg" alt="" width="30" height="30">';
  const body = document.createElement('div');
  body.className = 'body';
  const bubble = document.createElement('div');
  bubble.className = 'bubble';
  bubble.textContent = displayText(msg);
  body.append(bubble);
  if (msg.role === 'assistant') {
    // The thoughts of a thinking reply, folded away under the answer.
    const thoughts = document.createElement('details');
    thoughts.className = 'thoughts';
    thoughts.innerHTML = '<summary>Thoughts</summary><div class="thought-text"></div>';
    thoughts.querySelector('.thought-text').textContent = msg.thought ?? '';
    thoughts.hidden = !msg.thought;
    body.append(thoughts);
    const meta = document.createElement('div');
    meta.className = 'meta';
    fillMeta(meta, msg);
    body.append(meta);
  }
  el.append(avatar, body);
  return el;
}

function displayText(msg) {
  return msg.role === 'assistant' ? msg.text.replace(/^ /, '').replace(/\n+$/, '') : msg.text;
}

function fillMeta(meta, msg) {
  const parts = [];
  if (msg.meta) parts.push(`${msg.meta.tokens} tokens · ${rateText(msg.meta.tokensPerSecond)} tokens/s`);
  meta.replaceChildren();
  if (parts.length) meta.append(parts.join(''));
  if (msg.stopped) {
    const s = document.createElement('span');
    s.className = 'stopped';
    s.textContent = parts.length ? ' · stopped' : 'stopped';
    meta.append(s);
  }
  meta.hidden = meta.childNodes.length === 0;
}

function renderTranscript() {
  ui.transcript.replaceChildren(...app.chat.messages.map(messageElement));
  ui.welcome.hidden = app.chat.messages.length > 0;
  ui.transcriptWrap.scrollTop = ui.transcriptWrap.scrollHeight;
}

async function refreshChatList() {
  let chats = [];
  try {
    chats = await store.listChats();
  } catch (err) {
    console.warn('chats cannot be read:', err);
  }
  ui.chatList.replaceChildren(...chats.map((c) => {
    const li = document.createElement('li');
    if (c.id === app.chat?.id) li.classList.add('active');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'chat-open';
    open.dataset.chatId = c.id;
    if (c.id === app.chat?.id) open.setAttribute('aria-current', 'true');
    const title = document.createElement('span');
    title.textContent = c.title;
    const meta = document.createElement('span');
    meta.className = 'chat-meta';
    const turns = c.messages.filter((m) => m.role === 'user').length;
    meta.textContent = `${turns} turn${turns === 1 ? '' : 's'} · ${new Date(c.updatedAt).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' })}`;
    open.append(title, meta);
    open.addEventListener('click', () => openChat(c.id));
    const del = document.createElement('button');
    del.type = 'button';
    del.className = 'icon-button small';
    del.innerHTML = '<svg aria-hidden="true" viewBox="0 0 24 24" width="15" height="15"><path d="M5 7h14M10 7V5h4v2M7 7l1 12h8l1-12" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/></svg>';
    del.setAttribute('aria-label', `Delete chat “${c.title}”`);
    del.addEventListener('click', () => removeChat(c.id));
    li.append(open, del);
    return li;
  }));
  ui.chatListEmpty.hidden = chats.length > 0;
}

async function openChat(id) {
  if (app.busy === 'generating') return;
  const chat = await store.getChat(id);
  if (!chat) return;
  app.chat = chat;
  prefs.activeChatId = id;
  savePrefs();
  renderTranscript();
  showChatNotice();
  refreshChatList();
  showMode('chat');
  closeDrawer();
  ui.composerInput.focus();
}

async function newChat() {
  if (app.busy === 'generating') return;
  app.chat = blankChat();
  prefs.activeChatId = null;
  savePrefs();
  renderTranscript();
  ui.chatNotice.hidden = true;
  ui.stats.textContent = '';
  refreshChatList();
  showMode('chat');
  ui.composerInput.focus();
}

async function removeChat(id) {
  if (app.busy === 'generating' && app.chat?.id === id) return;
  await store.deleteChat(id);
  if (app.chat?.id === id) await newChat();
  else refreshChatList();
}

// ---------------------------------------------------------------- generation

/** Batches streamed text into one DOM update per frame. */
function streamer(onFlush) {
  let pending = '';
  let frame = 0;
  const flush = () => {
    frame = 0;
    if (!pending) return;
    const text = pending;
    pending = '';
    onFlush(text);
  };
  return {
    push(piece) {
      pending += piece;
      if (!frame) frame = requestAnimationFrame(flush);
    },
    end() {
      if (frame) cancelAnimationFrame(frame);
      flush();
    },
  };
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 120;
}

function generationOptions(mode) {
  const s = prefs.settings[mode];
  const opts = {};
  for (const k of SAMPLING_KEYS) if (s[k] !== null && s[k] !== undefined && k !== 'banEndOfText') opts[k] = s[k];
  if (s.banEndOfText) opts.bannedTokens = [0];
  if (inspector.tracing) opts.trace = true;
  return opts;
}

function liveSpeed() {
  let pieces = 0, first = 0, timer = 0;
  ui.chipSpeed.classList.add('live');
  ui.speedInfo.textContent = '… tok/s';
  const show = () => {
    const secs = (performance.now() - first) / 1000;
    if (pieces > 1 && secs > 0) ui.speedInfo.textContent = `${rateText((pieces - 1) / secs)} tok/s`;
  };
  return {
    piece() {
      pieces++;
      if (pieces === 1) {
        first = performance.now();
        timer = setInterval(show, 250);
      }
    },
    done(result) {
      clearInterval(timer);
      ui.chipSpeed.classList.remove('live');
      // Decoding reads every weight once a token: the rate in bytes per second predicts
      // the other models' speed in the menu.
      const bytes = app.model?.config.memoryBytes;
      if (result?.tokens > 8 && result.tokensPerSecond > 0 && bytes) {
        prefs.decodeBytesPerSecond = result.tokensPerSecond * bytes;
        savePrefs();
        showModelMenu();
      }
      if (result?.tokens > 1) ui.speedInfo.textContent = `${rateText(result.tokensPerSecond)} tok/s`;
      else if (pieces > 1) show();
    },
  };
}

function statsText(r) {
  const parts = [`${r.tokens} token${r.tokens === 1 ? '' : 's'}`, `${rateText(r.tokensPerSecond)} tokens/s`];
  if (r.promptTokens !== undefined)
    parts.push(`prompt ${r.promptTokens} token${r.promptTokens === 1 ? '' : 's'}${r.cachedTokens ? ` (${r.cachedTokens} cached)` : ''} in ${r.prefillMs.toFixed(0)} ms`);
  if (STOP_REASONS[r.stopReason] && r.stopReason !== 'stop') parts.push(STOP_REASONS[r.stopReason]);
  return parts.join(' · ');
}

/** After a failed call: a crashed worker is restarted (with the next call) and the completion session made anew. */
function recoverSession(err) {
  if (err instanceof WorkerCrashedError) app.completionSession = null;
}

function needModel() {
  if (app.model) return true;
  ui.stats.textContent = app.busy === 'loading' ? 'The model is still loading…' : 'Load a model first (Model & settings).';
  if (!app.busy) openDrawer();
  return false;
}


/**
 * Runs start() (which returns a library Generation), pushing its pieces to `out` and
 * counting them in `speed`; an abort is not a failure. Returns {result, failure}.
 */
async function streamGeneration(start, out, speed) {
  let result = null, failure = null;
  try {
    const gen = await start();
    try {
      for await (const piece of gen) {
        const text = inspector.take(piece);  // a traced piece feeds the inspector panel
        if (!text) continue;
        out.push(text);
        speed.piece();
      }
    } catch (err) {
      if (err?.name !== 'AbortError') throw err;
    }
    result = await gen.result;
  } catch (err) {
    failure = err;
  }
  out.end();
  return { result, failure };
}

/** A model is loaded and has a vocabulary; otherwise says what is missing. */
function modelCanGenerate() {
  if (!needModel()) return false;
  if (app.model.hasVocab) return true;
  renderAlert(ui.loadError, new VocabError(''), NO_VOCAB);
  ui.stats.textContent = NO_VOCAB.title;
  openDrawer();
  return false;
}

async function sendMessage(text) {
  if (app.busy) return;
  const clean = text.replace(/\r/g, '').replace(/\n{2,}/g, '\n').trim();  // a blank line would end the turn
  if (!clean) return;
  if (!modelCanGenerate()) return;
  if (!chatCompatible()) {
    ui.chatNotice.hidden = false;
    return;
  }
  const chat = app.chat;
  ui.composerInput.value = '';
  autoGrow();
  const userMsg = { role: 'user', text: clean };
  const reply = { role: 'assistant', text: '', thought: '' };
  const { system, thinking, json } = prefs.chatOptions;
  // The request: the conversation as OpenAI messages, the settings under their OpenAI names.
  const messages = [
    ...(system.trim() ? [{ role: 'system', content: system }] : []),
    ...chat.messages.map((m) => ({ role: m.role, content: m.text })),
    { role: 'user', content: clean },
  ];
  chat.messages.push(userMsg, reply);
  if (!chat.id) {
    chat.id = store.newChatId();
    chat.title = clean.length > 48 ? `${clean.slice(0, 47)}…` : clean;
    chat.createdAt = Date.now();
  }
  chat.modelKey = app.modelKey;
  chat.modelName = app.model.name;
  ui.welcome.hidden = true;
  ui.chatNotice.hidden = true;
  const userEl = messageElement(userMsg);
  const replyEl = messageElement(reply);
  replyEl.classList.add('streaming');
  const bubble = replyEl.querySelector('.bubble');
  const thoughts = replyEl.querySelector('.thoughts');
  ui.transcript.setAttribute('aria-busy', 'true');
  ui.transcript.append(userEl, replyEl);
  ui.transcriptWrap.scrollTop = ui.transcriptWrap.scrollHeight;

  app.busy = 'generating';
  app.abort = new AbortController();
  updateControls();
  ui.stats.textContent = 'Generating…';
  const speed = liveSpeed();
  const show = (update) => (t) => {
    const stick = nearBottom(ui.transcriptWrap);
    update(t);
    bubble.textContent = displayText(reply);
    thoughts.querySelector('.thought-text').textContent = reply.thought;
    thoughts.hidden = !reply.thought;
    if (stick) ui.transcriptWrap.scrollTop = ui.transcriptWrap.scrollHeight;
  };
  const answerOut = streamer(show((t) => { reply.text += t; }));
  const thoughtOut = streamer(show((t) => { reply.thought += t; }));
  const started = performance.now();
  let first = 0, pieces = 0, usage = null, finish = null, failure = null, aborted = false;
  try {
    const stream = await app.model.chat.completions.create({
      ...requestFields(generationOptions('chat')), messages, stream: true, signal: app.abort.signal,
      thinking: thinking && !json, ...(json ? { response_format: { type: 'json_object' } } : {}),
    });
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      const c = chunk.choices[0];
      if (!c) continue;
      finish = c.finish_reason ?? finish;
      if (!c.delta.content && !c.delta.reasoning_content) continue;
      first ||= performance.now();
      pieces++;
      speed.piece();
      if (c.delta.content) answerOut.push(c.delta.content);
      if (c.delta.reasoning_content) thoughtOut.push(c.delta.reasoning_content);
    }
  } catch (err) {
    if (err?.name === 'AbortError') aborted = true;
    else failure = err;
  }
  answerOut.end();
  thoughtOut.end();
  const ended = performance.now();
  // An aborted reply has no usage: its pieces (one per token but where UTF-8 is split) count.
  const tokens = usage?.completion_tokens ?? pieces;
  const result = failure ? null : {
    tokens, tokensPerSecond: tokens > 1 && ended > first ? (tokens - 1) / ((ended - first) / 1000) : 0,
    promptTokens: usage?.prompt_tokens, cachedTokens: usage?.prompt_tokens_details.cached_tokens,
    prefillMs: (first || ended) - started, stopReason: aborted ? 'aborted' : finish === 'length' ? 'max_tokens' : 'stop',
  };
  speed.done(result);
  replyEl.classList.remove('streaming');
  ui.transcript.setAttribute('aria-busy', 'false');

  if (failure) {
    // Take the turn back and put the message back in the box.
    chat.messages.splice(chat.messages.length - 2, 2);
    userEl.remove();
    replyEl.remove();
    if (!chat.messages.length) ui.welcome.hidden = false;
    ui.composerInput.value = clean;
    autoGrow();
    const { title, message } = explain(failure);
    ui.stats.textContent = `${title}${message ? `: ${message}` : ''}`;
    recoverSession(failure);
  } else {
    reply.stopped = aborted;
    if (!reply.thought) delete reply.thought;
    reply.meta = { tokens: result.tokens, tokensPerSecond: result.tokensPerSecond, stopReason: result.stopReason };
    fillMeta(replyEl.querySelector('.meta'), reply);
    bubble.textContent = displayText(reply);
    chat.updatedAt = Date.now();
    ui.stats.textContent = statsText(result);
    try {
      await store.saveChat(chat, null);  // no state of its own: the chat layer keeps states by prefix
      prefs.activeChatId = chat.id;
      savePrefs();
    } catch (err) {
      console.warn('the chat could not be saved:', err);
      ui.stats.textContent += ' · not saved on this device';
    }
    refreshChatList();
  }
  app.busy = null;
  app.abort = null;
  updateControls();
  showMemory();
  if (!matchMedia('(max-width: 860px)').matches || document.activeElement === document.body) ui.composerInput.focus();
}

async function complete() {
  if (app.busy) return;
  const prompt = ui.completionInput.value;
  if (!prompt) {
    ui.completionInput.focus();
    return;
  }
  if (!modelCanGenerate()) return;
  app.busy = 'generating';
  app.abort = new AbortController();
  updateControls();
  ui.stats.textContent = 'Generating…';
  const promptEl = document.createElement('span');
  promptEl.className = 'prompt-part';
  promptEl.textContent = prompt;
  const genEl = document.createElement('span');
  genEl.className = 'gen-part';
  ui.completionOutput.replaceChildren(promptEl, genEl);
  ui.completionOutput.classList.add('streaming');
  ui.completionOutput.setAttribute('aria-busy', 'true');
  ui.completeUse.disabled = true;
  const speed = liveSpeed();
  let text = '';
  const out = streamer((t) => {
    text += t;
    genEl.textContent = text;
  });
  const { result, failure } = await streamGeneration(async () => {
    app.completionSession ??= await app.model.createSession();
    await app.completionSession.reset();
    return app.completionSession.generate(prompt, { ...generationOptions('completion'), signal: app.abort.signal });
  }, out, speed);
  speed.done(result);
  ui.completionOutput.classList.remove('streaming');
  ui.completionOutput.setAttribute('aria-busy', 'false');
  if (failure) {
    const { title, message } = explain(failure);
    ui.stats.textContent = `${title}${message ? `: ${message}` : ''}`;
    await recoverSession(failure);
  } else {
    ui.stats.textContent = statsText(result);
    ui.completeUse.disabled = !text;
  }
  app.busy = null;
  app.abort = null;
  updateControls();
  showMemory();
}

function stopGeneration() {
  if (app.busy === 'generating') app.abort?.abort();
}

// ---------------------------------------------------------------- controls

function updateControls() {
  const generating = app.busy === 'generating';
  const loading = app.busy === 'loading';
  ui.sendButton.hidden = generating;
  ui.stopButton.hidden = !generating;
  ui.sendButton.disabled = loading;
  ui.completeButton.hidden = generating;
  ui.completeStop.hidden = !generating;
  ui.completeButton.disabled = loading;
  ui.loadButton.disabled = !!app.busy;
  ui.loadButton.textContent = loading ? 'Loading…' : app.model ? 'Load another model' : 'Load model';
  ui.loadCancel.hidden = !loading;
  ui.newChat.disabled = generating;
  ui.newChatSide.disabled = generating;
  for (const b of ui.chatList.querySelectorAll('button')) b.disabled = generating;
  ui.welcomeText.textContent = app.model
    ? 'An RNN language model: its memory of the conversation has a fixed size, so long chats stay just as fast. Say hello.'
    : loading ? 'Loading the model…'
      : 'An RNN language model: its memory of the conversation has a fixed size, so long chats stay just as fast. Load a model to begin.';
  ui.welcomeOpen.hidden = !!app.model || loading;
  setAppState();
}

function showMode(mode) {
  prefs.mode = mode;
  savePrefs();
  const chat = mode === 'chat';
  ui.tabChat.setAttribute('aria-selected', String(chat));
  ui.tabCompletion.setAttribute('aria-selected', String(!chat));
  ui.tabChat.tabIndex = chat ? 0 : -1;
  ui.tabCompletion.tabIndex = chat ? -1 : 0;
  ui.panelChat.hidden = !chat;
  ui.panelCompletion.hidden = chat;
  ui.newChat.hidden = !chat;
  ui.samplingMode.textContent = mode;
  fillSampling();
}

function fillSampling() {
  const s = prefs.settings[prefs.mode];
  for (const k of SAMPLING_KEYS) {
    const input = $(k);
    if (k === 'stop') input.value = escapeStops(s.stop ?? []);
    else if (input.type === 'checkbox') input.checked = !!s[k];
    else input.value = s[k] ?? '';
    input.removeAttribute('aria-invalid');
    const range = $(`${k}-range`);
    if (range) range.value = s[k] ?? 0;
  }
}

// One field per numeric option of the schema, into #sampling-fields: a slider-field (a
// range input beside the number input) or, for `slider: false`, plain fields in pairs.
function buildSamplingFields() {
  const html = [];
  const attr = (o, lo, hi) => `${Number.isFinite(lo) ? ` min="${lo}"` : ''}${Number.isFinite(hi) ? ` max="${hi}"` : ''} step="${o.ui.step}"` +
    ` inputmode="${o.type === 'integer' ? 'numeric' : 'decimal'}"`;
  const numberInput = (o) => `<input type="number" id="${o.name}" name="${o.name}"${attr(o, o.min, o.max)}` +
    `${o.default === undefined ? ' placeholder="unset"' : ''} title="${o.help}">`;
  const plain = [];
  for (const o of NUMBER_OPTIONS) {
    if (o.ui.slider === false) {
      plain.push(`<div class="field"><label for="${o.name}">${o.label}</label>${numberInput(o)}</div>`);
      continue;
    }
    html.push(`<div class="slider-field"><label for="${o.name}">${o.label}</label>` +
      `<input type="range" id="${o.name}-range"${attr(o, o.ui.min, o.ui.max)} aria-hidden="true" tabindex="-1" data-for="${o.name}">` +
      `${numberInput(o)}</div>`);
  }
  for (let i = 0; i < plain.length; i += 2) html.push(`<div class="pair">${plain.slice(i, i + 2).join('')}</div>`);
  $('sampling-fields').innerHTML = html.join('');
}

function readSetting(input) {
  const k = input.name;
  const s = prefs.settings[prefs.mode];
  if (k === 'stop') {
    s.stop = parseStops(input.value);
  } else if (input.type === 'checkbox') {
    s[k] = input.checked;
  } else {
    const o = NUMBER_OPTIONS.find((n) => n.name === k);
    const raw = input.value.trim();
    if (raw === '' && o.default === undefined) {
      s[k] = null;
    } else {
      const v = raw === '' ? NaN : Number(raw);
      const bad = checkValue(o, v) !== null;
      input.setAttribute('aria-invalid', String(bad));
      if (bad) return;
      s[k] = v;
      const range = $(`${k}-range`);
      if (range) range.value = v;
    }
  }
  input.removeAttribute('aria-invalid');
  savePrefs();
}

function autoGrow() {
  const t = ui.composerInput;
  t.style.height = 'auto';
  t.style.height = `${Math.min(t.scrollHeight, window.innerHeight * 0.4)}px`;
}

let drawerReturn = null;
function openDrawer() {
  if (!matchMedia('(max-width: 860px)').matches) {
    ui.modelUrl.focus();
    return;
  }
  drawerReturn = document.activeElement;
  ui.sidebar.classList.add('open');
  ui.scrim.hidden = false;
  ui.drawerToggle.setAttribute('aria-expanded', 'true');
  ui.drawerClose.focus();
}
function closeDrawer() {
  if (!ui.sidebar.classList.contains('open')) return;
  ui.sidebar.classList.remove('open');
  ui.scrim.hidden = true;
  ui.drawerToggle.setAttribute('aria-expanded', 'false');
  (drawerReturn ?? ui.drawerToggle).focus?.();
  drawerReturn = null;
}

function wire() {
  ui.loadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    loadModel();
  });
  ui.loadCancel.addEventListener('click', () => app.abort?.abort());
  ui.modelBrowse.addEventListener('click', () => ui.modelFile.click());
  ui.vocabBrowse.addEventListener('click', () => ui.vocabFile.click());
  ui.modelFile.addEventListener('change', () => useFile(ui.modelFile.files[0]));
  ui.vocabFile.addEventListener('change', () => useFile(ui.vocabFile.files[0]));
  ui.modelFileClear.addEventListener('click', () => {
    setFileChip('model', null);
    showModelMenu();
    ui.modelFile.value = '';
    ui.modelUrl.focus();
  });
  ui.vocabFileClear.addEventListener('click', () => {
    setFileChip('vocab', null);
    ui.vocabFile.value = '';
    ui.vocabUrl.focus();
  });
  ui.modelDefault.addEventListener('click', () => {
    setFileChip('model', null);
    setFileChip('vocab', null);
    ui.modelUrl.value = DEFAULT_MODEL_URL;
    ui.vocabUrl.value = DEFAULT_VOCAB_URL;
    ui.vocabNone.checked = false;
    syncVocabNone();
  });
  ui.vocabNone.addEventListener('change', syncVocabNone);
  for (const input of [ui.modelUrl, ui.vocabUrl]) input.addEventListener('input', () => { ui.loadError.hidden = true; });
  ui.modelUrl.addEventListener('input', showModelMenu);

  // drag and drop anywhere
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  window.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    ui.dropOverlay.hidden = false;
  });
  window.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) ui.dropOverlay.hidden = true;
  });
  window.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  window.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    ui.dropOverlay.hidden = true;
    for (const f of e.dataTransfer.files) useFile(f);
    openDrawer();
  });

  // chat
  ui.composer.addEventListener('submit', (e) => {
    e.preventDefault();
    sendMessage(ui.composerInput.value);
  });
  ui.composerInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      sendMessage(ui.composerInput.value);
    }
  });
  ui.composerInput.addEventListener('input', autoGrow);
  ui.stopButton.addEventListener('click', stopGeneration);
  ui.newChat.addEventListener('click', newChat);
  ui.newChatSide.addEventListener('click', () => {
    newChat();
    closeDrawer();
  });
  for (const b of ui.suggestions.querySelectorAll('.suggestion')) {
    b.addEventListener('click', () => {
      if (app.model) sendMessage(b.textContent);
      else {
        ui.composerInput.value = b.textContent;
        autoGrow();
        needModel();
      }
    });
  }
  ui.welcomeOpen.addEventListener('click', () => {
    openDrawer();
    ui.modelUrl.focus();
  });

  // completion
  ui.completeButton.addEventListener('click', complete);
  ui.completeStop.addEventListener('click', stopGeneration);
  ui.completionInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      complete();
    }
  });
  ui.completionInput.addEventListener('input', () => {
    prefs.completionPrompt = ui.completionInput.value;
    savePrefs();
  });
  ui.completeUse.addEventListener('click', () => {
    ui.completionInput.value = ui.completionOutput.textContent;
    prefs.completionPrompt = ui.completionInput.value;
    savePrefs();
    ui.completionInput.focus();
  });

  // tabs (arrow keys move between them)
  for (const tab of [ui.tabChat, ui.tabCompletion]) {
    tab.addEventListener('click', () => showMode(tab === ui.tabChat ? 'chat' : 'completion'));
    tab.addEventListener('keydown', (e) => {
      if (!['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
      e.preventDefault();
      const next = tab === ui.tabChat ? ui.tabCompletion : ui.tabChat;
      showMode(next === ui.tabChat ? 'chat' : 'completion');
      next.focus();
    });
  }

  // sampling
  ui.samplingForm.addEventListener('submit', (e) => e.preventDefault());
  ui.samplingForm.addEventListener('input', (e) => {
    const t = e.target;
    if (t.type === 'range') {
      const num = $(t.dataset.for);
      num.value = t.value;
      readSetting(num);
    } else if (t.name) {
      readSetting(t);
    }
  });
  ui.systemPrompt.value = prefs.chatOptions.system;
  ui.thinking.checked = prefs.chatOptions.thinking;
  ui.jsonMode.checked = prefs.chatOptions.json;
  ui.chatOptions.addEventListener('submit', (e) => e.preventDefault());
  ui.chatOptions.addEventListener('input', () => {
    prefs.chatOptions = { system: ui.systemPrompt.value, thinking: ui.thinking.checked, json: ui.jsonMode.checked };
    savePrefs();
  });
  ui.samplingDefaults.addEventListener('click', () => {
    prefs.settings[prefs.mode] = { ...MODE_DEFAULTS[prefs.mode] };
    savePrefs();
    fillSampling();
  });

  ui.clearDownloads.addEventListener('click', async () => {
    if (!confirm('Delete the models and vocabularies saved on this device? They are downloaded again when needed.')) return;
    await clearCache();
    ui.modelOffline.hidden = true;
  });

  // drawer
  ui.drawerToggle.addEventListener('click', () => (ui.sidebar.classList.contains('open') ? closeDrawer() : openDrawer()));
  ui.drawerClose.addEventListener('click', closeDrawer);
  ui.scrim.addEventListener('click', closeDrawer);

  // Escape stops a reply (or closes the drawer)
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (app.busy === 'generating') {
      e.preventDefault();
      stopGeneration();
    } else if (ui.sidebar.classList.contains('open')) {
      closeDrawer();
    }
  });

  ui.updateReload.addEventListener('click', () => applyUpdate());
}

// ---------------------------------------------------------------- offline (service worker)

let waitingWorker = null;

function applyUpdate() {
  if (!waitingWorker) return location.reload();
  navigator.serviceWorker.addEventListener('controllerchange', () => location.reload(), { once: true });
  waitingWorker.postMessage('skipWaiting');
}

function waitForInstalled(reg, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    const done = (w) => {
      clearTimeout(timer);
      resolve(w);
    };
    const track = (w) => {
      if (!w) return;
      w.addEventListener('statechange', () => {
        if (w.state === 'installed') done(w);
        else if (w.state === 'redundant') done(null);
      });
    };
    if (reg.waiting) return done(reg.waiting);
    track(reg.installing);
    reg.addEventListener('updatefound', () => track(reg.installing));
  });
}

/**
 * Registers the service worker for the version the server announces (scripts/serve.mjs
 * serves version.json). When an older version serves this page, the new one takes over
 * and the page reloads before anything is loaded, or a banner offers the reload.
 */
async function setupOffline() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
  const controller = navigator.serviceWorker.controller;
  let info = null;
  if (navigator.onLine !== false) {
    try {
      const res = await fetch(new URL('version.json', location.href), { cache: 'no-store' });
      if (res.ok) info = await res.json();
    } catch {
      /* offline, or a static server without version.json */
    }
  }
  if (!info?.version) return;
  let reg;
  try {
    reg = await navigator.serviceWorker.register(`sw.js?v=${encodeURIComponent(info.version)}`,
      { scope: new URL('../', location.href).pathname, updateViaCache: 'none' });
  } catch (err) {
    console.warn('offline use is not available:', err.message);
    return;
  }
  const running = controller && new URL(controller.scriptURL).searchParams.get('v');
  if (!controller || running === info.version) return;
  waitingWorker = await waitForInstalled(reg, 20000);
  if (!waitingWorker) return;
  if (!app.model && !app.busy) applyUpdate();
  else ui.updateBanner.hidden = false;
}

// ---------------------------------------------------------------- start

async function start() {
  showRuntime();
  ui.modelUrl.value = prefs.modelUrl;
  ui.vocabUrl.value = prefs.vocabUrl;
  ui.vocabNone.checked = !!prefs.vocabNone;
  ui.quant.value = prefs.quant;
  syncVocabNone();
  planPublishedModels();
  if (prefs.completionPrompt !== undefined) ui.completionInput.value = prefs.completionPrompt;
  buildSamplingFields();
  wire();
  showMode(prefs.mode === 'completion' ? 'completion' : 'chat');
  app.chat = (prefs.activeChatId && await store.getChat(prefs.activeChatId).catch(() => null)) || blankChat();
  renderTranscript();
  refreshChatList();
  updateControls();
  if (!runtime.simd) {
    renderAlert(ui.loadError, new Error('This browser does not support WebAssembly SIMD, which the runtime needs. Use a current Chrome, Edge, Firefox or Safari.'));
  }
  if (prefs.modelKind === 'file' && prefs.lastModelFile) {
    setProgress(0, `Last time: ${prefs.lastModelFile} from this device. Choose it again (Browse…) to load it.`);
    ui.loadProgressFill.style.width = '0';
  }

  const offline = setupOffline().catch((err) => console.warn('service worker:', err));
  // A model loaded before from a URL is on this device: load it again right away.
  if (prefs.modelKind === 'url' && runtime.simd && await showOfflineNote()) {
    await Promise.race([offline, new Promise((r) => setTimeout(r, 3000))]);
    if (!app.model && !app.busy && !waitingWorker) loadModel();
  }
}

start();
