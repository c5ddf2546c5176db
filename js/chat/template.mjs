// The chat formats RWKV models are trained on (docs/chat.md): OpenAI-shaped `messages`
// to a prompt string, the stop strings of a turn, and a streaming splitter that returns
// the thoughts of the thinking modes apart from the answer. Data-driven: a format is an
// entry of FORMATS, not code.
import { InvalidArgumentError } from '../errors.mjs';

/**
 * The formats. Fields:
 * - roles: the name written before each role's turns;
 * - separator: between turns (the "chat round separator" the models are trained on);
 * - stop: the stop strings that end the assistant's turn;
 * - thinking: the modes, each {assistant: text after "Assistant:", userSuffix: text
 *   appended to the last user message, inThought: whether the generated text starts
 *   inside the thoughts}; `off` is the default;
 * - thoughts: the tags around the thoughts in the generated text;
 * - intro: turns put first when the conversation has no system message (optional).
 */
export const FORMATS = Object.freeze({
  // RWKV-7 G1 (BlinkDL/rwkv7-g1 model card): System/User/Assistant, blank lines inside a
  // message folded, thinking prompted by "<think" after "Assistant:"; from the 2025-09-22
  // models on also by " think" / " think a bit" / " think a lot" after the user's message.
  g1: {
    roles: { system: 'System', user: 'User', assistant: 'Assistant' },
    separator: '\n\n',
    stop: ['\n\n'],
    thinking: {
      off: { assistant: '', inThought: false },
      on: { assistant: ' <think', inThought: true },
      suffix: { assistant: ' <think', userSuffix: ' think', inThought: true },
      short: { assistant: ' <think', userSuffix: ' think a bit', inThought: true },
      long: { assistant: ' <think', userSuffix: ' think a lot', inThought: true },
      skip: { assistant: ' <think>\n</think', inThought: false },
    },
    thoughts: { open: '<think>', close: '</think>' },
  },
  // RWKV World models before G1 (v5-v7 World, ChatRWKV's API_DEMO_CHAT.py): the same
  // turns, no thinking, and the greeting exchange the demo starts every chat with.
  world: {
    roles: { system: 'System', user: 'User', assistant: 'Assistant' },
    separator: '\n\n',
    stop: ['\n\n'],
    thinking: { off: { assistant: '', inThought: false } },
    thoughts: { open: '<think>', close: '</think>' },
    intro: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Hi. I am your assistant and I will provide expert full response in full details. Please feel free to ask any question and I will always answer it.' },
    ],
  },
});

/**
 * A message's text as the models are trained on it: CR LF and CR made LF, blank lines
 * (and lines of spaces between newlines) folded into one newline, since a blank line
 * ends a turn, and spaces trimmed at both ends.
 */
export function normalizeText(text) {
  return text.replace(/\r\n?/g, '\n').replace(/\n[ \t]*(?:\n[ \t]*)+/g, '\n').trim();
}

/** The text of an OpenAI message content: a string or an array of text parts. */
function contentText(content, where) {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) throw new InvalidArgumentError(`${where}.content must be a string or an array of text parts`);
  return content.map((part, i) => {
    if (part?.type !== 'text' || typeof part.text !== 'string')
      throw new InvalidArgumentError(`${where}.content[${i}]: only text parts ({type: 'text', text}) are supported, not '${part?.type}'`);
    return part.text;
  }).join('\n');
}

const thinkingNames = (format) => Object.keys(format.thinking).join(', ');

/** The thinking mode: false/undefined -> off, true -> on, else a mode name of the format. */
function thinkingMode(format, formatName, thinking) {
  const name = thinking === undefined || thinking === null || thinking === false ? 'off' : thinking === true ? 'on' : thinking;
  const mode = format.thinking[name];
  if (!mode) throw new InvalidArgumentError(`thinking '${name}' is not a mode of the ${formatName} format (${thinkingNames(format)})`);
  return [name, mode];
}

/**
 * Builds the prompt for `messages` (OpenAI's shape: {role: 'system' | 'developer' |
 * 'user' | 'assistant', content: string | [{type: 'text', text}]}). Options: format
 * (a name of FORMATS, default 'g1'), thinking (false, true, or a mode name: 'short',
 * 'long', 'skip', ...), intro (false leaves out the format's intro turns), completeTag
 * (true: where the prompt ends inside a tag, " <think" or "</think", the prompt gets
 * the rest of it, ">", instead of leaving it to the model; for generation under a
 * grammar, which would not allow the model to write it). A final
 * assistant message is continued: the prompt ends with its text, and the model goes on.
 * Returns {prompt, stop, thinking (the mode's name), thoughts: the options of a
 * ThoughtSplitter for the generated text}. Throws InvalidArgumentError naming the
 * message at fault.
 */
export function chatPrompt(messages, options = {}) {
  const formatName = options.format ?? 'g1';
  const format = FORMATS[formatName];
  if (!format) throw new InvalidArgumentError(`unknown chat format '${formatName}' (${Object.keys(FORMATS).join(', ')})`);
  if (!Array.isArray(messages) || messages.length === 0) throw new InvalidArgumentError('messages must be a non-empty array');
  const [modeName, mode] = thinkingMode(format, formatName, options.thinking);
  const turns = messages.map((m, i) => {
    const where = `messages[${i}]`;
    if (m === null || typeof m !== 'object') throw new InvalidArgumentError(`${where} must be an object {role, content}`);
    const role = m.role === 'developer' ? 'system' : m.role;
    if (!(role in format.roles))
      throw new InvalidArgumentError(`${where}.role '${m.role}' is not supported (system, developer, user, assistant)`);
    let text = contentText(m.content, where);
    if (role === 'assistant') text = dropThoughts(text, format.thoughts);
    return { role, text: normalizeText(text) };
  });
  const continuing = turns.at(-1).role === 'assistant';
  if (mode.userSuffix && !continuing) {
    const last = turns.findLastIndex((t) => t.role === 'user');
    if (last < 0) throw new InvalidArgumentError(`thinking '${modeName}' needs a user message to append to`);
    turns[last].text += mode.userSuffix;
  }
  if (format.intro && options.intro !== false && !turns.some((t) => t.role === 'system'))
    turns.unshift(...format.intro.map((m) => ({ role: m.role, text: m.content })));
  const lines = turns.map((t) => `${format.roles[t.role]}:${t.text ? ` ${t.text}` : ''}`);
  const prompt = continuing
    ? lines.join(format.separator)
    : `${lines.join(format.separator)}${format.separator}${format.roles.assistant}:${mode.assistant}`;
  const tag = mode.inThought ? format.thoughts.open : format.thoughts.close;
  let pending = continuing ? '' : restOfTag(mode.assistant, tag);
  let written = prompt;
  if (options.completeTag && pending) [written, pending] = [prompt + pending, ''];
  return {
    prompt: written,
    stop: [...format.stop],
    thinking: continuing ? 'off' : modeName,
    thoughts: { ...format.thoughts, inThought: !continuing && mode.inThought, pending, detect: !continuing && modeName === 'off' },
  };
}

/**
 * The rest of `tag` when `text` ends with a proper beginning of it (the prompt " <think"
 * leaves ">" of "<think>" for the model to write), else ''.
 */
function restOfTag(text, tag) {
  for (let k = Math.min(tag.length - 1, text.length); k > 0; --k)
    if (text.endsWith(tag.slice(0, k))) return tag.slice(k);
  return '';
}

/** An assistant message's text without a thought block at its start. */
function dropThoughts(text, { open, close }) {
  const start = text.search(/\S/);
  if (start < 0 || !text.startsWith(open, start)) return text;
  const end = text.indexOf(close, start + open.length);
  return end < 0 ? '' : text.slice(end + close.length);
}

/**
 * Splits generated text into thoughts and answer, piece by piece: push(text) returns
 * {thought, answer} that can be shown now; finish() returns what was held back. Text
 * that might be the start of a tag is held until it is decided. Options (chatPrompt's
 * `thoughts`): open, close (the tags); inThought (the text starts inside the thoughts);
 * pending (the rest of a tag the prompt ended in, swallowed where the text begins with
 * it); detect (an answer may still open with the open tag, after leading whitespace).
 * Whitespace at the start of the thoughts and of the answer, and at the end of the
 * thoughts, is dropped.
 */
export class ThoughtSplitter {
  constructor({ open = '<think>', close = '</think>', inThought = false, pending = '', detect = false } = {}) {
    this.open = open;
    this.close = close;
    this.pending = pending;               // the rest of a tag still expected at the very start
    this.state = inThought ? 'thought' : detect ? 'detect' : 'answer';
    this.held = '';                       // undecided text
    this.started = { thought: false, answer: false };  // leading whitespace dropped until true
  }

  push(text) {
    const out = { thought: '', answer: '' };
    let s = this.held + text;
    this.held = '';
    if (this.pending) {
      const n = Math.min(this.pending.length, s.length);
      if (s.slice(0, n) === this.pending.slice(0, n)) {
        this.pending = this.pending.slice(n);
        s = s.slice(n);
      } else {
        this.pending = '';
      }
    }
    while (s) {
      if (this.state === 'detect') {
        const lead = s.length - s.trimStart().length, rest = s.slice(lead);
        if (rest.startsWith(this.open)) {
          this.state = 'thought';
          s = rest.slice(this.open.length);
        } else if (this.open.startsWith(rest)) {
          this.held = s;  // whitespace, or a prefix of the tag: undecided
          return out;
        } else {
          this.state = 'answer';
        }
      } else if (this.state === 'thought') {
        const at = s.indexOf(this.close);
        if (at >= 0) {
          this.emit(out, 'thought', s.slice(0, at).trimEnd());
          this.state = 'answer';
          s = s.slice(at + this.close.length);
          continue;
        }
        // Hold a partial closing tag and trailing whitespace.
        let keep = 0;
        for (let k = Math.min(this.close.length - 1, s.length); k > 0; --k)
          if (this.close.startsWith(s.slice(s.length - k))) { keep = k; break; }
        let cut = s.length - keep;
        while (cut > 0 && /\s/.test(s[cut - 1])) --cut;
        this.emit(out, 'thought', s.slice(0, cut));
        this.held = s.slice(cut);
        return out;
      } else {
        this.emit(out, 'answer', s);
        return out;
      }
    }
    return out;
  }

  finish() {
    const out = { thought: '', answer: '' };
    const rest = this.held;
    this.held = '';
    if (this.state === 'thought') this.emit(out, 'thought', rest.trimEnd());
    else this.emit(out, 'answer', rest);
    return out;
  }

  emit(out, kind, text) {
    if (!this.started[kind]) {
      text = text.trimStart();
      if (!text) return;
      this.started[kind] = true;
    }
    out[kind] += text;
  }
}
