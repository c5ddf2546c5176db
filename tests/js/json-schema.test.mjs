// JSON Schema -> grammar (js/chat/json-schema.mjs), driven through the wasm core
// directly (instantiateCore + core.Generator with the `grammar` option, and core.Grammar for
// acceptance): the fixture models, whose unconstrained output is noise, generate with
// many schemas and seeds, and every document parses and validates with ajv; hand-written
// documents are accepted exactly when ajv says they are valid; unsupported keywords fail
// with the keyword and its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { instantiateCore } from '../../js/host.mjs';
import { InvalidArgumentError } from '../../js/errors.mjs';
import { jsonObjectGrammar, responseFormatGrammar, schemaToGrammar } from '../../js/chat/json-schema.mjs';
import { fixtureDir, skipNoFixtures } from './helpers.mjs';

const Ajv2020 = Ajv2020Module.default ?? Ajv2020Module;
const addFormats = addFormatsModule.default ?? addFormatsModule;
const ajv = addFormats(new Ajv2020({ strict: false }));
const { core } = await instantiateCore({ threads: 1 });
const bytes = new core.Tokenizer();  // byte-level: token b is the byte b (0 is end of text)

/** A core call's result, or its error record ({rwkvError, message}) thrown. */
function checked(result) {
  if (result !== null && typeof result === 'object' && typeof result.rwkvError === 'string') throw new Error(result.message);
  return result;
}

/** A model file of the fixtures, streamed into a core Loader window by window (as js/engine.mjs does). */
function modelFromFile(file) {
  const data = readFileSync(file);
  const loader = new core.Loader(false);
  const startWhenPlanned = () => { if (loader.planned() && !loader.started()) loader.start(-1); };
  try {
    for (let at = 0; at < data.length;) {
      startWhenPlanned();
      const n = Math.min(data.length - at, loader.windowSize());
      core.HEAPU8.set(data.subarray(at, at + n), loader.window());
      loader.commit(n);
      at += n;
    }
    startWhenPlanned();
    return loader.finish();
  } finally {
    loader.delete();
  }
}

/** Whether `grammar` accepts `text`, fed byte by byte through core.Grammar. */
function accepts(grammar, text) {
  const g = new core.Grammar();
  try {
    checked(g.start(bytes, grammar, 256));
    for (const b of new TextEncoder().encode(text)) {
      if (!g.allowed()[b]) return false;
      g.accept(b);
    }
    return g.canEnd();
  } finally {
    g.delete();
  }
}

const SCHEMAS = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 }, age: { type: 'integer', minimum: 0, maximum: 120 },
      email: { type: 'string', format: 'email' }, tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
    },
    required: ['name', 'age'],
  },
  nested: {
    type: 'object',
    properties: {
      address: { type: 'object', properties: { street: { type: 'string', maxLength: 10 }, city: { type: 'string', minLength: 1, maxLength: 8 } }, required: ['city'] },
      at: { type: 'array', prefixItems: [{ type: 'number', minimum: -90, maximum: 90 }, { type: 'number', minimum: -180, maximum: 180 }], items: false, minItems: 2 },
    },
    required: ['address', 'at'],
  },
  literals: {
    type: 'object',
    properties: { kind: { const: 'point' }, on: { type: 'boolean' }, nothing: { type: 'null' }, level: { enum: ['low', 'mid', 'high', 3, null] } },
    required: ['kind', 'on', 'level'],
  },
  shapes: {
    oneOf: [
      { type: 'object', properties: { type: { const: 'circle' }, r: { type: 'number', minimum: 0, maximum: 100 } }, required: ['type', 'r'] },
      { type: 'object', properties: { type: { const: 'square' }, side: { type: 'integer', exclusiveMinimum: 0, maximum: 1000 } }, required: ['type', 'side'] },
    ],
  },
  tree: {
    $defs: {
      node: { type: 'object', properties: { name: { type: 'string', maxLength: 6 }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['name'] },
    },
    $ref: '#/$defs/node',
  },
  strings: { type: 'array', items: { type: 'string', minLength: 2, maxLength: 5 }, minItems: 1, maxItems: 4 },
  numbers: {
    type: 'object',
    properties: {
      i: { type: 'integer' }, n: { type: 'number' }, neg: { type: 'integer', minimum: -50, maximum: -3 },
      frac: { type: 'number', exclusiveMinimum: -1, exclusiveMaximum: 1 }, big: { type: 'integer', minimum: 1000, exclusiveMaximum: 123457 },
    },
    required: ['i', 'n', 'neg', 'frac', 'big'],
  },
  extra: {
    type: 'object', properties: { id: { type: 'integer', minimum: 1 }, idx: { type: 'boolean' } },
    required: ['id'], additionalProperties: { type: 'string', maxLength: 3 },
  },
  formats: {
    type: 'object',
    properties: {
      d: { type: 'string', format: 'date' }, t: { type: 'string', format: 'time' }, dt: { type: 'string', format: 'date-time' },
      u: { type: 'string', format: 'uuid' }, ip: { type: 'string', format: 'ipv4' },
    },
    required: ['d', 't', 'dt', 'u', 'ip'],
  },
  allOf: {
    allOf: [
      { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['a'] },
      { properties: { b: { type: 'boolean' } }, required: ['b'] },
    ],
  },
  nullable: { type: 'object', properties: { v: { type: ['string', 'null'], maxLength: 3 }, w: { type: 'number', maximum: 0 } }, required: ['v', 'w'] },
  anything: { type: 'object', properties: { x: {}, y: true }, required: ['x'] },
};

test('every schema compiles to a grammar the core accepts', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    for (const whitespace of ['flexible', 'compact']) {
      const g = new core.Grammar();
      try {
        checked(g.start(bytes, schemaToGrammar(schema, { whitespace }), 256));
      } catch (err) {
        assert.fail(`${name} (${whitespace}): ${err.message}\n${schemaToGrammar(schema, { whitespace })}`);
      } finally {
        g.delete();
      }
    }
  }
});

test('documents are accepted exactly when ajv finds them valid', () => {
  const cases = {
    person: [['{"name": "Ann", "age": 30}', true], ['{"name":"Ann","age":30,"email":"a.b@c.org","tags":["a","c"]}', true],
      ['{"name": "Ann"}', false], ['{"name": "Ann", "age": 121}', false], ['{"name": "Ann", "age": -1}', false],
      ['{"name": "A very long name", "age": 3}', false], ['{"name": "Ann", "age": 3, "tags": ["d"]}', false],
      ['{"name": "Ann", "age": 3, "email": "nope"}', false], ['{"name": "\\u00e9\\n\\"", "age": 0}', true]],
    nested: [['{"address": {"city": "Paris"}, "at": [48.85, 2.35]}', true], ['{"address": {"city": ""}, "at": [1, 2]}', false],
      ['{"address": {"city": "X"}, "at": [91, 0]}', false], ['{"address": {"city": "X"}, "at": [-90, -180]}', true],
      ['{"address": {"city": "X"}, "at": [1, 2, 3]}', false], ['{"address": {"city": "X"}, "at": [90.5, 0]}', false]],
    literals: [['{"kind": "point", "on": true, "level": null}', true], ['{"kind": "point", "on": false, "nothing": null, "level": 3}', true],
      ['{"kind": "line", "on": true, "level": 3}', false], ['{"kind": "point", "on": 1, "level": 3}', false]],
    shapes: [['{"type": "circle", "r": 2.5}', true], ['{"type": "square", "side": 0}', false], ['{"type": "square", "side": 1000}', true],
      ['{"type": "circle", "r": 100.0}', true], ['{"type": "circle", "r": 100.5}', false]],
    tree: [['{"name": "a", "kids": [{"name": "b"}, {"name": "c", "kids": []}]}', true], ['{"kids": []}', false]],
    strings: [['["ab", "\\"x"]', true], ['[]', false], ['["a"]', false], ['["abcdef"]', false]],
    numbers: [['{"i": -7, "n": 1.5e-3, "neg": -3, "frac": -0.999999, "big": 123456}', true],
      ['{"i": 1, "n": 1, "neg": -2, "frac": 0, "big": 1000}', false], ['{"i": 1, "n": 1, "neg": -50, "frac": 1, "big": 1000}', false],
      ['{"i": 1, "n": 1, "neg": -50, "frac": 0.5, "big": 123457}', false], ['{"i": 1.5, "n": 1, "neg": -50, "frac": 0.5, "big": 5000}', false]],
    extra: [['{"id": 1, "foo": "ab"}', true], ['{"id": 1, "idx": true, "x": "abc", "y": ""}', true], ['{"id": 1, "foo": 2}', false],
      ['{"id": 0}', false], ['{"id": 1, "idx": "abc"}', false]],
    formats: [['{"d": "2024-02-28", "t": "23:59:59Z", "dt": "1999-12-31T00:00:00.5+01:00", "u": "123e4567-e89b-12d3-a456-426614174000", "ip": "192.168.0.255"}', true],
      ['{"d": "2024-02-30", "t": "23:59:59Z", "dt": "1999-12-31T00:00:00Z", "u": "123e4567-e89b-12d3-a456-426614174000", "ip": "1.2.3.4"}', false],
      ['{"d": "2024-01-01", "t": "24:00:00Z", "dt": "1999-12-31T00:00:00Z", "u": "123e4567-e89b-12d3-a456-426614174000", "ip": "1.2.3.4"}', false],
      ['{"d": "2024-01-01", "t": "12:00:00Z", "dt": "1999-12-31T00:00:00Z", "u": "123e4567-e89b-12d3-a456-426614174000", "ip": "1.2.3.256"}', false]],
    allOf: [['{"a": 3, "b": false}', true], ['{"a": 3}', false], ['{"a": 10, "b": true}', false]],
    nullable: [['{"v": null, "w": -0.5}', true], ['{"v": "abc", "w": 0}', true], ['{"v": "abcd", "w": 0}', false], ['{"v": 1, "w": 0}', false],
      ['{"v": null, "w": 0.1}', false]],
    anything: [['{"x": {"deep": [1, {"a": null}]}, "y": "s"}', true], ['{"y": 1}', false]],
  };
  for (const [name, docs] of Object.entries(cases)) {
    const grammar = schemaToGrammar(SCHEMAS[name]);
    const validate = ajv.compile(SCHEMAS[name]);
    for (const [doc, valid] of docs) {
      assert.equal(validate(JSON.parse(doc)), valid, `${name}: ajv on ${doc}`);
      assert.equal(accepts(grammar, doc), valid, `${name}: grammar on ${doc}`);
      assert.equal(accepts(grammar, ` ${doc}`), valid, `${name}: grammar on a leading space and ${doc}`);
    }
  }
});

test('integer and number ranges accept exactly the values inside', () => {
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const bounds = [[0, 0], [-5, 5], [7, 7], [-120, -1], [99, 1001], [-1000, 250], [0, 99999], [13, 987654]];
  for (let k = 0; k < 8; ++k) {
    const lo = Math.floor((rand() - 0.5) * 20000), hi = lo + Math.floor(rand() * 3000);
    bounds.push([lo, hi]);
  }
  for (const [lo, hi] of bounds) {
    const grammar = schemaToGrammar({ type: 'integer', minimum: lo, maximum: hi }, { whitespace: 'compact' });
    const probes = new Set([lo, hi, lo - 1, hi + 1, 0, -1, 1, 10, -10, 100, 1000, 10000, -10000]);
    for (let i = 0; i < 40; ++i) probes.add(lo + Math.floor((rand() - 0.25) * (hi - lo + 40)));
    for (const v of probes) assert.equal(accepts(grammar, String(v)), v >= lo && v <= hi, `[${lo}, ${hi}] on ${v}`);
  }
  // Numbers with whole bounds, exclusive or not.
  const num = schemaToGrammar({ type: 'number', exclusiveMinimum: -2, maximum: 3 }, { whitespace: 'compact' });
  for (const [text, ok] of [['-2', false], ['-1.999999', true], ['-2.0', false], ['-0', true], ['0.5', true], ['3', true],
    ['3.000', true], ['3.001', false], ['2.999999', true], ['4', false], ['1e2', false]])
    assert.equal(accepts(num, text), ok, `(-2, 3] on ${text}`);
  // Unbounded integers refuse leading zeros and fractions.
  const int = schemaToGrammar({ type: 'integer' }, { whitespace: 'compact' });
  for (const [text, ok] of [['0', true], ['-12', true], ['007', false], ['1.0', false], ['-0', false]])
    assert.equal(accepts(int, text), ok, `integer on ${text}`);
});

test('unsupported keywords fail with the keyword and its path', () => {
  const cases = [
    [{ type: 'string', pattern: '^a' }, "json_schema: 'pattern' is not supported at #"],
    [{ type: 'object', properties: { a: { type: 'array', uniqueItems: true } } }, "json_schema: 'uniqueItems' is not supported at #/properties/a"],
    [{ type: 'object', properties: { a: { not: { type: 'null' } } } }, "json_schema: 'not' is not supported at #/properties/a"],
    [{ type: 'string', format: 'uri' }, "json_schema: format 'uri' is not supported (supported: date, time, uuid, email, ipv4, date-time) at #"],
    [{ type: 'number', minimum: 0.5 }, 'json_schema: only whole-number bounds are supported for type number (not 0.5); use type integer or whole bounds at #'],
    [{ $ref: 'http://example.com/s.json' }, "json_schema: $ref 'http://example.com/s.json' is not supported (only references into this schema, '#/...') at #"],
    [{ $ref: '#/$defs/missing' }, "json_schema: $ref '#/$defs/missing' points to nothing at #"],
    [{ type: 'object', required: ['a'], additionalProperties: false }, "json_schema: required property 'a' is not in properties and additionalProperties is false at #"],
    [{ type: 'integer', minimum: 5, maximum: 4 }, 'json_schema: no integer lies within minimum/maximum at #'],
    [{ type: 'strnig' }, "json_schema: unknown type 'strnig' (use object, array, string, number, integer, boolean, null) at #"],
    [{ anyOf: [{ type: 'string' }], maxLength: 3 }, 'json_schema: keywords next to anyOf are not supported (maxLength): move them into each alternative at #'],
    [{ items: [{ type: 'string' }], type: 'array', prefixItems: 3 }, 'json_schema: prefixItems must be an array at #'],
    [false, 'json_schema: the schema false allows no value at #'],
  ];
  for (const [schema, message] of cases)
    assert.throws(() => schemaToGrammar(schema), (err) => err instanceof InvalidArgumentError && err.message === message, JSON.stringify(schema));
  assert.throws(() => responseFormatGrammar({ type: 'xml' }), /response_format.type must be 'text', 'json_object' or 'json_schema', not 'xml'/);
  assert.throws(() => responseFormatGrammar({ type: 'json_schema', json_schema: {} }), /json_schema.schema must be a JSON Schema/);
  assert.equal(responseFormatGrammar({ type: 'text' }), null);
  assert.equal(responseFormatGrammar(undefined), null);
  assert.equal(responseFormatGrammar({ type: 'json_object' }), jsonObjectGrammar());
});

/** Generates with `grammar` through core.Generator: {text, reason}. */
function generate(model, tokenizer, prompt, options) {
  const state = model.newState();
  const gen = new core.Generator();
  try {
    checked(gen.start(model, state, tokenizer, checked(tokenizer.encode(prompt)), options));
    let text = '', piece;
    do {
      piece = gen.next();
      text += piece.text;
    } while (!piece.done);
    return { text: text + gen.finish(), reason: piece.reason };
  } finally {
    gen.delete();
    state.delete();
  }
}

test('the fixture models generate valid documents for every schema and seed', { skip: skipNoFixtures }, () => {
  const world = modelFromFile(path.join(fixtureDir, 'fix-L3-C64-H2.pth'));
  const worldVocab = new core.Tokenizer();
  checked(worldVocab.loadVocab(readFileSync(path.join(fixtureDir, 'fix-vocab-300.txt'), 'utf8')));
  const byteModel = modelFromFile(path.join(fixtureDir, 'fix-L2-C64-H1.fp16.pth'));
  const setups = [['World-style vocabulary', world, worldVocab], ['byte-level', byteModel, bytes]];
  const targets = [...Object.entries(SCHEMAS).map(([name, schema]) => [name, schemaToGrammar(schema), ajv.compile(schema)]),
    ['json_object', jsonObjectGrammar(), ajv.compile({ type: 'object' })]];
  let documents = 0;
  try {
    for (const [setupName, model, tokenizer] of setups)
      for (const [name, grammar, validate] of targets)
        for (let seed = 1; seed <= 6; ++seed) {
          const { text, reason } = generate(model, tokenizer, 'User: JSON please\n\nAssistant:', { grammar, seed, topP: 1, maxTokens: 6000 });
          const where = `${setupName}, ${name}, seed ${seed}: ${JSON.stringify(text).slice(0, 400)}`;
          assert.equal(reason, 'grammar', where);
          let doc;
          assert.doesNotThrow(() => { doc = JSON.parse(text); }, where);
          assert.ok(validate(doc), `${where}\n${JSON.stringify(validate.errors)}`);
          ++documents;
        }
  } finally {
    world.delete();
    byteModel.delete();
    worldVocab.delete();
  }
  assert.equal(documents, 2 * 13 * 6);
});

test('a document cut by maxTokens is reported, never returned as complete', { skip: skipNoFixtures }, () => {
  const model = modelFromFile(path.join(fixtureDir, 'fix-L2-C64-H1.fp16.pth'));
  try {
    const { text, reason } = generate(model, bytes, 'x', { grammar: schemaToGrammar(SCHEMAS.person), seed: 1, topP: 1, maxTokens: 8 });
    assert.equal(reason, 'max_tokens_incomplete');
    assert.equal(new TextEncoder().encode(text).length, 8);
    assert.throws(() => JSON.parse(text));
    const bad = new core.Generator();
    const state = model.newState();
    assert.throws(() => checked(bad.start(model, state, bytes, [1], { grammar: 'root ::= "a' })),
      /grammar: line 1, column 10: the literal is not closed on its line/);
    assert.throws(() => checked(bad.start(model, state, bytes, [1], { grammar: 42 })), /grammar must be a string/);
    bad.delete();
    state.delete();
  } finally {
    model.delete();
  }
});
