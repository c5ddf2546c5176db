// What the page remembers: preferences in localStorage, chats in IndexedDB.
// A chat is {id, title, modelKey, modelName, messages: [{role, text, stopped?, meta?}],
// separator, createdAt, updatedAt}; its RNN state (saveState() bytes) lives in a second
// store under the same id, written in the same transaction as the transcript, so the two
// always match.

const PREFS_KEY = 'rwkv-web-demo:prefs';

export function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_KEY)) ?? {};
  } catch {
    return {};
  }
}

export function savePrefs(prefs) {
  try {
    localStorage.setItem(PREFS_KEY, JSON.stringify(prefs));
  } catch {
    /* private mode or full: preferences are a convenience */
  }
}

const DB_NAME = 'rwkv-web-demo';
const DB_VERSION = 1;
let dbPromise = null;

function db() {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const d = req.result;
      if (!d.objectStoreNames.contains('chats')) d.createObjectStore('chats', { keyPath: 'id' });
      if (!d.objectStoreNames.contains('states')) d.createObjectStore('states');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('the chat database is blocked by another tab'));
  });
  return dbPromise;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** All chats (without their states), newest first. */
export async function listChats() {
  const tx = (await db()).transaction('chats', 'readonly');
  const all = await request(tx.objectStore('chats').getAll());
  return all.sort((a, b) => b.updatedAt - a.updatedAt);
}

export async function getChat(id) {
  const tx = (await db()).transaction('chats', 'readonly');
  return (await request(tx.objectStore('chats').get(id))) ?? null;
}

/** The saved state bytes of a chat, or null. */
export async function getState(id) {
  const tx = (await db()).transaction('states', 'readonly');
  const v = await request(tx.objectStore('states').get(id));
  return v ? new Uint8Array(v) : null;
}

/** Stores the transcript and, unless `state` is undefined, the state (null deletes it). */
export async function saveChat(chat, state) {
  const tx = (await db()).transaction(['chats', 'states'], 'readwrite');
  tx.objectStore('chats').put(chat);
  if (state === null) tx.objectStore('states').delete(chat.id);
  else if (state !== undefined) tx.objectStore('states').put(state, chat.id);
  await done(tx);
}

export async function deleteChat(id) {
  const tx = (await db()).transaction(['chats', 'states'], 'readwrite');
  tx.objectStore('chats').delete(id);
  tx.objectStore('states').delete(id);
  await done(tx);
}

export function newChatId() {
  return `chat-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
