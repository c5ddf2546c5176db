// The chat formats (js/chat/template.mjs, docs/chat.md): exact prompts for the G1 and
// World formats, every thinking mode, the normalisation of message text, bad messages,
// and the thought splitter fed the same text in random pieces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../js/errors.mjs';
import { chatPrompt, normalizeText, ThoughtSplitter } from '../../js/chat/template.mjs';

const conversation = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Hi!' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'What is RWKV?' },
];

test('G1: turns separated by a blank line, the prompt ends with "Assistant:"', () => {
  const r = chatPrompt(conversation);
  assert.equal(r.prompt, 'System: You are terse.\n\nUser: Hi!\n\nAssistant: Hello.\n\nUser: What is RWKV?\n\nAssistant:');
  assert.deepEqual(r.stop, ['\n\n']);
  assert.equal(r.thinking, 'off');
  assert.deepEqual(r.thoughts, { open: '<think>', close: '</think>', inThought: false, pending: '', detect: true });
});

test('G1 thinking modes', () => {
  const ask = [{ role: 'user', content: 'Why?' }];
  const expect = {
    on: ['User: Why?\n\nAssistant: <think', true],
    suffix: ['User: Why? think\n\nAssistant: <think', true],
    short: ['User: Why? think a bit\n\nAssistant: <think', true],
    long: ['User: Why? think a lot\n\nAssistant: <think', true],
    skip: ['User: Why?\n\nAssistant: <think>\n</think', false],
    off: ['User: Why?\n\nAssistant:', false],
  };
  for (const [mode, [prompt, inThought]] of Object.entries(expect)) {
    const r = chatPrompt(ask, { thinking: mode });
    assert.equal(r.prompt, prompt, mode);
    assert.equal(r.thinking, mode);
    assert.equal(r.thoughts.inThought, inThought, mode);
    assert.equal(r.thoughts.pending, mode === 'off' ? '' : '>', mode);
  }
  assert.equal(chatPrompt(ask, { thinking: true }).prompt, expect.on[0]);
  const closed = chatPrompt(ask, { thinking: 'skip', completeTag: true });
  assert.equal(closed.prompt, 'User: Why?\n\nAssistant: <think>\n</think>');
  assert.equal(closed.thoughts.pending, '');
  assert.equal(chatPrompt(ask, { thinking: false }).prompt, expect.off[0]);
  // The suffix goes to the last user message, even with a system message after it.
  assert.equal(chatPrompt([...ask, { role: 'system', content: 'Be brief.' }], { thinking: 'short' }).prompt,
    'User: Why? think a bit\n\nSystem: Be brief.\n\nAssistant: <think');
});

test('message text is normalised as the models were trained', () => {
  assert.equal(normalizeText('  a\r\nb\rc\n\n\nd\n \t \ne  '), 'a\nb\nc\nd\ne');
  assert.equal(normalizeText('keep  inner   spaces\n    and indentation'), 'keep  inner   spaces\n    and indentation');
  const r = chatPrompt([
    { role: 'developer', content: 'Rules:\n\n1. none' },
    { role: 'user', content: [{ type: 'text', text: 'part one' }, { type: 'text', text: '\n\npart two' }] },
    { role: 'assistant', content: '<think>\nhmm\n</think>\n\nThe answer.' },
    { role: 'user', content: '' },
  ]);
  assert.equal(r.prompt, 'System: Rules:\n1. none\n\nUser: part one\npart two\n\nAssistant: The answer.\n\nUser:\n\nAssistant:');
});

test('a final assistant message is continued', () => {
  const r = chatPrompt([{ role: 'user', content: 'Count.' }, { role: 'assistant', content: 'One, two,' }], { thinking: 'long' });
  assert.equal(r.prompt, 'User: Count.\n\nAssistant: One, two,');
  assert.equal(r.thinking, 'off');
  assert.equal(r.thoughts.detect, false);
});

test('the World format: intro turns unless there is a system message, no thinking', () => {
  const intro = 'User: hi\n\nAssistant: Hi. I am your assistant and I will provide expert full response in full details. Please feel free to ask any question and I will always answer it.\n\n';
  assert.equal(chatPrompt([{ role: 'user', content: 'x' }], { format: 'world' }).prompt, `${intro}User: x\n\nAssistant:`);
  assert.equal(chatPrompt([{ role: 'user', content: 'x' }], { format: 'world', intro: false }).prompt, 'User: x\n\nAssistant:');
  assert.equal(chatPrompt(conversation, { format: 'world' }).prompt, chatPrompt(conversation).prompt);
  assert.throws(() => chatPrompt(conversation, { format: 'world', thinking: true }),
    (e) => e instanceof InvalidArgumentError && e.message === "thinking 'on' is not a mode of the world format (off)");
});

test('bad messages and options are refused with the message at fault', () => {
  const bad = [
    [[], {}, 'messages must be a non-empty array'],
    [[{ role: 'tool', content: 'x' }], {}, "messages[0].role 'tool' is not supported (system, developer, user, assistant)"],
    [[{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }], {}, "messages[0].content[0]: only text parts ({type: 'text', text}) are supported, not 'image_url'"],
    [[{ role: 'user', content: 3 }], {}, 'messages[0].content must be a string or an array of text parts'],
    [['hi'], {}, 'messages[0] must be an object {role, content}'],
    [[{ role: 'user', content: 'x' }], { format: 'chatml' }, "unknown chat format 'chatml' (g1, world)"],
    [[{ role: 'user', content: 'x' }], { thinking: 'deep' }, "thinking 'deep' is not a mode of the g1 format (off, on, suffix, short, long, skip)"],
    [[{ role: 'system', content: 'x' }], { thinking: 'short' }, "thinking 'short' needs a user message to append to"],
  ];
  for (const [messages, options, message] of bad)
    assert.throws(() => chatPrompt(messages, options), (e) => e instanceof InvalidArgumentError && e.message === message, message);
});

/** Feeds `text` to a splitter in pieces cut at `cuts`; returns the joined output. */
function split(options, text, cuts) {
  const s = new ThoughtSplitter(options);
  const out = { thought: '', answer: '' };
  let at = 0;
  for (const c of [...cuts, text.length]) {
    const r = s.push(text.slice(at, c));
    out.thought += r.thought;
    out.answer += r.answer;
    at = c;
  }
  const r = s.finish();
  return { thought: out.thought + r.thought, answer: out.answer + r.answer };
}

test('the thought splitter gives the same result for any split of the text', () => {
  const think = chatPrompt([{ role: 'user', content: 'q' }], { thinking: 'on' }).thoughts;
  const skip = chatPrompt([{ role: 'user', content: 'q' }], { thinking: 'skip' }).thoughts;
  const off = chatPrompt([{ role: 'user', content: 'q' }]).thoughts;
  const cases = [
    [think, '>\nFirst, 2 < 3 and </thin is not a tag.\n</think>\n\nIt is 42.', 'First, 2 < 3 and </thin is not a tag.', 'It is 42.'],
    [think, '>\nunfinished thoughts  \n', 'unfinished thoughts', ''],
    [think, 'no tag rest, straight into thoughts</think>answer', 'no tag rest, straight into thoughts', 'answer'],
    [skip, '>\n\n The answer, with <think> inside.', '', 'The answer, with <think> inside.'],
    [off, ' Plain answer.', '', 'Plain answer.'],
    [off, ' <think>\nspontaneous\n</think>\nanswer', 'spontaneous', 'answer'],
    [off, ' <thinking is a word', '', '<thinking is a word'],
    [off, '   ', '', ''],
    [off, '中文 <think>', '', '中文 <think>'],
  ];
  let seed = 7;
  const rand = (n) => (seed = (seed * 48271) % 2147483647) % n;
  for (const [options, text, thought, answer] of cases) {
    const cutsList = [[], [...Array(text.length).keys()].slice(1)];
    for (let k = 0; k < 30; ++k) cutsList.push([...new Set(Array.from({ length: rand(6) }, () => rand(text.length + 1)))].sort((a, b) => a - b));
    for (const cuts of cutsList)
      assert.deepEqual(split(options, text, cuts), { thought, answer }, `${JSON.stringify(text)} cut at ${cuts}`);
  }
});
