// JSON Schema to a grammar of docs/grammar.md, for OpenAI's `response_format`
// ({type: 'json_object'} and {type: 'json_schema', json_schema: {schema}}): the core
// masks every token the grammar does not allow, so the text generated is a JSON document
// that validates against the schema. What is supported, and how: docs/grammar.md.
// Pure JS, no worker or wasm needed.
import { InvalidArgumentError } from '../errors.mjs';

// ------------------------------------------------------------------------- grammar pieces

/** A JSON string as a grammar literal (the JSON escapes become grammar escapes). */
function literal(text) {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** The literal of a JSON value, written as JSON.stringify writes it. */
const jsonLiteral = (value) => literal(JSON.stringify(value));

// One character inside a JSON string: any but '"', '\' and controls, or an escape. No
// \u escape of a surrogate (each element is then exactly one code point, as JSON Schema
// counts lengths, and no string holds a lone surrogate).
const CHAR = '[^"\\\\\\x00-\\x1f] | "\\\\" ( ["\\\\/bfnrt] | "u" ( [0-9a-cA-CefEF] hex hex hex | [dD] [0-7] hex hex ) )';

const WHITESPACE = {
  // Nothing, one space, or a newline and an indentation of at most 20 spaces or tabs
  // (never a blank line, which chat formats use as the end of a turn).
  flexible: '( " " | "\\n" [ \\t]{0,20} )?',
  compact: '""',
};

// Formats of strings the grammar can generate exactly (ajv-formats' full mode agrees).
const day31 = '( "0" [1-9] | [12] [0-9] | "3" [01] )', day30 = '( "0" [1-9] | [12] [0-9] | "30" )',
  day28 = '( "0" [1-9] | "1" [0-9] | "2" [0-8] )';
const FORMATS = {
  date: `[0-9]{4} "-" ( ( "0" [13578] | "1" [02] ) "-" ${day31} | ( "0" [469] | "11" ) "-" ${day30} | "02-" ${day28} )`,
  time: '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
  uuid: 'hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12}',
  email: '[a-zA-Z0-9_+-]{1,24} ( "." [a-zA-Z0-9_+-]{1,24} ){0,3} "@" [a-zA-Z0-9] ( [a-zA-Z0-9-]{0,20} [a-zA-Z0-9] )? ( "." [a-zA-Z0-9] ( [a-zA-Z0-9-]{0,20} [a-zA-Z0-9] )? ){1,3}',
  ipv4: 'octet "." octet "." octet "." octet',
};
FORMATS['date-time'] = `${FORMATS.date} "T" ${FORMATS.time}`;

// Keywords that change nothing about which documents are valid.
const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', 'example', '$schema', '$id', '$comment',
  'deprecated', 'readOnly', 'writeOnly', 'contentEncoding', 'contentMediaType', '$defs', 'definitions', 'strict']);
// Keywords we know and cannot express (a clear error, never a wrong document).
const UNSUPPORTED = ['pattern', 'patternProperties', 'propertyNames', 'dependentRequired', 'dependentSchemas',
  'dependencies', 'if', 'then', 'else', 'not', 'contains', 'minContains', 'maxContains', 'multipleOf',
  'unevaluatedProperties', 'unevaluatedItems', '$dynamicRef', '$recursiveRef', '$anchor', '$dynamicAnchor'];
// Keywords handled below.
const SUPPORTED = new Set(['type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'items',
  'prefixItems', 'minItems', 'maxItems', 'uniqueItems', 'minLength', 'maxLength', 'format', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum', '$ref', 'anyOf', 'oneOf', 'allOf', 'minProperties', 'maxProperties',
  'nullable', ...UNSUPPORTED]);

const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];
const MAX_DIGITS = 15;  // digits of an unbounded integer part (and of a fraction)

// ------------------------------------------------------------------------- integer ranges

const nines = (n) => '9'.repeat(n);
const digitClass = (lo, hi) => (lo === hi ? `"${lo}"` : lo === '0' && hi === '9' ? '[0-9]' : `[${lo}-${hi}]`);

/** Decimal strings of one length n from a to b (a <= b, no sign), as a grammar expression. */
function sameLength(a, b) {
  if (a.length === 0) return '';
  if (a === b) return `"${a}"`;
  const rest = a.length - 1;
  if (a[0] === b[0]) return `"${a[0]}" ${sameLength(a.slice(1), b.slice(1))}`;
  const any = rest ? ` [0-9]{${rest}}` : '';
  const parts = [];
  let from = a[0], to = b[0];
  if (rest && a.slice(1) !== '0'.repeat(rest)) {  // a[0] then at least a's tail
    parts.push(`"${a[0]}" ( ${sameLength(a.slice(1), nines(rest))} )`);
    from = String(Number(a[0]) + 1);
  }
  const bFull = !rest || b.slice(1) === nines(rest);
  if (!bFull) to = String(Number(b[0]) - 1);
  if (from <= to) parts.push(`${digitClass(from, to)}${any}`);
  if (!bFull) parts.push(`"${b[0]}" ( ${sameLength('0'.repeat(rest), b.slice(1))} )`);
  return parts.length === 1 ? parts[0] : `( ${parts.join(' | ')} )`;
}

/** Non-negative integers in [lo, hi] (hi may be Infinity: at most MAX_DIGITS digits), without leading zeros. */
function uintRange(lo, hi) {
  const loLen = String(lo).length;
  const parts = [];
  if (hi === Infinity) {
    parts.push(sameLength(String(lo), nines(loLen)));
    if (loLen < MAX_DIGITS) parts.push(`[1-9] [0-9]{${loLen},${MAX_DIGITS - 1}}`);
  } else {
    for (let len = loLen; len <= String(hi).length; ++len) {
      const first = len === 1 ? 0 : 10 ** (len - 1), last = 10 ** len - 1;
      const a = Math.max(lo, first), b = Math.min(hi, last);
      if (a <= b) parts.push(a === first && b === last && len > 1 ? `[1-9] [0-9]{${len - 1}}` : sameLength(String(a), String(b)));
    }
  }
  return parts.length === 1 ? parts[0] : `( ${parts.join(' | ')} )`;
}

/** Integers in [lo, hi] (either may be infinite). */
function intRange(lo, hi) {
  if (lo > hi) return null;
  const parts = [];
  if (hi >= 0) parts.push(uintRange(Math.max(lo, 0), hi));
  if (lo < 0) parts.push(`"-" ${uintRange(Math.max(1, -Math.min(hi, -1)), -lo)}`);
  return parts.length === 1 ? parts[0] : `( ${parts.join(' | ')} )`;
}

// ------------------------------------------------------------------------- the compiler

class Compiler {
  constructor(root, { whitespace = 'flexible' } = {}) {
    if (!(whitespace in WHITESPACE)) throw new InvalidArgumentError(`whitespace must be one of ${Object.keys(WHITESPACE).join(', ')}, not '${whitespace}'`);
    this.root = root;
    this.ws = whitespace;
    this.rules = new Map();   // name -> body
    this.refs = new Map();    // '$ref' value -> rule name
    this.shared = new Set();  // names of the fixed rules used
  }

  fail(path, message) { throw new InvalidArgumentError(`json_schema: ${message} at ${path}`); }

  /** A fixed helper rule (ws, string, value...), added when first used. */
  use(name) {
    if (this.shared.has(name)) return name;
    this.shared.add(name);
    const bodies = {
      ws: WHITESPACE[this.ws],
      hex: '[0-9a-fA-F]',
      char: CHAR,
      string: '"\\"" char* "\\""',
      number: `"-"? ( "0" | [1-9] [0-9]{0,${MAX_DIGITS - 1}} ) ( "." [0-9]{1,${MAX_DIGITS}} )? ( [eE] [-+]? [0-9]{1,2} )?`,
      integer: `"0" | "-"? [1-9] [0-9]{0,${MAX_DIGITS - 1}}`,
      boolean: '"true" | "false"',
      octet: '"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9]',
      value: 'object | array | string | number | boolean | "null"',
      object: '"{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* ws )? "}"',
      array: '"[" ws ( value ( ws "," ws value )* ws )? "]"',
    };
    const deps = { string: ['char'], char: ['hex'], value: ['object', 'array', 'string', 'number', 'boolean'],
      object: ['ws', 'string', 'value'], array: ['ws', 'value'] };
    this.rules.set(name, bodies[name]);
    for (const d of deps[name] ?? []) this.use(d);
    return name;
  }

  /** A new rule for `body`, named after `hint` (made unique). */
  define(hint, body) {
    let name = hint.replace(/[^A-Za-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase() || 'item';
    if (this.rules.has(name) || this.shared.has(name) || ['root', 'ws', 'hex', 'char', 'string', 'number', 'integer',
      'boolean', 'octet', 'value', 'object', 'array'].includes(name)) {
      let k = 2;
      while (this.rules.has(`${name}-${k}`)) ++k;
      name = `${name}-${k}`;
    }
    this.rules.set(name, body);
    return name;
  }

  hint(path) {
    const parts = path.split('/').slice(1).filter((p) => !['properties', 'items', '$defs', 'definitions', 'anyOf', 'oneOf', 'allOf', 'prefixItems'].includes(p));
    return parts.slice(-2).join('-') || 'item';
  }

  /** The schema a '#/...' reference points to. */
  resolve(ref, path) {
    if (typeof ref !== 'string' || !ref.startsWith('#')) this.fail(path, `$ref '${ref}' is not supported (only references into this schema, '#/...')`);
    let node = this.root;
    for (const raw of ref.slice(1).split('/').slice(1)) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      node = node !== null && typeof node === 'object' ? node[key] : undefined;
      if (node === undefined) this.fail(path, `$ref '${ref}' points to nothing`);
    }
    return node;
  }

  /** A grammar expression for the values `schema` allows, at `path` (for messages). */
  visit(schema, path) {
    if (schema === true || (schema && typeof schema === 'object' && !Array.isArray(schema) && Object.keys(schema).every((k) => ANNOTATIONS.has(k))))
      return this.use('value');
    if (schema === false) this.fail(path, 'the schema false allows no value');
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) this.fail(path, 'a schema must be an object or a boolean');
    for (const k of UNSUPPORTED) if (k in schema) this.fail(path, `'${k}' is not supported`);
    const constraining = Object.keys(schema).filter((k) => SUPPORTED.has(k));

    if ('$ref' in schema) {
      const others = constraining.filter((k) => k !== '$ref');
      if (others.length) this.fail(path, `keywords next to $ref are not supported (${others.join(', ')})`);
      const ref = schema.$ref;
      if (!this.refs.has(ref)) {
        const name = this.define(ref === '#' ? 'root-ref' : this.hint(ref), '');
        this.refs.set(ref, name);
        this.rules.set(name, this.visit(this.resolve(ref, path), ref));
      }
      return this.refs.get(ref);
    }
    if ('allOf' in schema) return this.visit(this.mergeAll(schema, path), path);
    for (const key of ['anyOf', 'oneOf']) {
      if (!(key in schema)) continue;
      const list = schema[key];
      if (!Array.isArray(list) || !list.length) this.fail(path, `${key} must be a non-empty array`);
      const others = constraining.filter((k) => k !== key);
      if (others.length) this.fail(path, `keywords next to ${key} are not supported (${others.join(', ')}): move them into each alternative`);
      // oneOf is generated as anyOf: alternatives that overlap could give a document
      // matching two of them (docs/grammar.md).
      return `( ${list.map((s, i) => this.visit(s, `${path}/${key}/${i}`)).join(' | ')} )`;
    }
    if ('const' in schema) return jsonLiteral(schema.const);
    if ('enum' in schema) {
      if (!Array.isArray(schema.enum) || !schema.enum.length) this.fail(path, 'enum must be a non-empty array');
      const types = this.types(schema, path);
      const kept = schema.enum.filter((v) => !types || types.some((t) => typeOf(v, t)));
      if (!kept.length) this.fail(path, 'no enum value has the schema\'s type');
      return kept.length === 1 ? jsonLiteral(kept[0]) : `( ${kept.map(jsonLiteral).join(' | ')} )`;
    }
    let types = this.types(schema, path);
    if (!types) {  // no type: what the other keywords are about, else any value
      const about = { object: ['properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
        array: ['items', 'prefixItems', 'minItems', 'maxItems'], string: ['minLength', 'maxLength', 'format'],
        number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'] };
      types = Object.keys(about).filter((t) => about[t].some((k) => k in schema));
      if (!types.length) return this.use('value');
      if (types.length > 1) this.fail(path, `keywords of several types (${types.join(', ')}) without a type`);
    }
    const alternatives = types.map((t) => this.typed(t, schema, path));
    return alternatives.length === 1 ? alternatives[0] : `( ${alternatives.join(' | ')} )`;
  }

  /** The schema's `type` as a list (null when absent); OpenAPI's nullable adds 'null'. */
  types(schema, path) {
    if (!('type' in schema)) return null;
    const list = Array.isArray(schema.type) ? [...schema.type] : [schema.type];
    for (const t of list) if (!TYPES.includes(t)) this.fail(path, `unknown type '${t}' (use ${TYPES.join(', ')})`);
    if (schema.nullable === true && !list.includes('null')) list.push('null');
    if (list.includes('integer') && list.includes('number')) list.splice(list.indexOf('integer'), 1);
    return list;
  }

  /** allOf merged into one schema: its members' keywords, which must not disagree. */
  mergeAll(schema, path) {
    const { allOf, ...rest } = schema;
    if (!Array.isArray(allOf) || !allOf.length) this.fail(path, 'allOf must be a non-empty array');
    const merged = { ...rest };
    allOf.forEach((member, i) => {
      const at = `${path}/allOf/${i}`;
      let s = member;
      while (s && typeof s === 'object' && '$ref' in s) s = this.resolve(s.$ref, at);
      if (s === true) return;
      if (!s || typeof s !== 'object' || Array.isArray(s)) this.fail(at, 'allOf members must be objects');
      for (const [k, v] of Object.entries(s)) {
        if (ANNOTATIONS.has(k)) continue;
        if (k === 'properties') merged.properties = { ...merged.properties, ...v };
        else if (k === 'required') merged.required = [...new Set([...(merged.required ?? []), ...v])];
        else if (k in merged && JSON.stringify(merged[k]) !== JSON.stringify(v)) this.fail(at, `allOf members disagree on '${k}'`);
        else merged[k] = v;
      }
    });
    return merged;
  }

  typed(type, schema, path) {
    switch (type) {
      case 'null': return '"null"';
      case 'boolean': return this.use('boolean');
      case 'string': return this.string(schema, path);
      case 'integer': return this.integer(schema, path);
      case 'number': return this.number(schema, path);
      case 'array': return this.array(schema, path);
      case 'object': return this.object(schema, path);
    }
    return this.fail(path, `unknown type '${type}'`);
  }

  count(schema, key, path) {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (!Number.isInteger(v) || v < 0) this.fail(path, `${key} must be a non-negative integer`);
    return v;
  }

  string(schema, path) {
    const min = this.count(schema, 'minLength', path) ?? 0, max = this.count(schema, 'maxLength', path);
    if (max !== undefined && max < min) this.fail(path, 'maxLength is below minLength');
    if ('format' in schema) {
      const body = FORMATS[schema.format];
      if (!body) this.fail(path, `format '${schema.format}' is not supported (supported: ${Object.keys(FORMATS).join(', ')})`);
      if ('minLength' in schema || 'maxLength' in schema) this.fail(path, 'minLength/maxLength together with format are not supported');
      this.use('hex');
      if (schema.format === 'ipv4') this.use('octet');
      return this.define(`${this.hint(path)}-${schema.format}`, `"\\"" ${body} "\\""`);
    }
    if (min === 0 && max === undefined) return this.use('string');
    this.use('char');
    return `"\\"" char{${min},${max ?? ''}} "\\""`;
  }

  /** The bounds of a number schema as [lo, loExclusive, hi, hiExclusive]. */
  bounds(schema, path) {
    let lo = -Infinity, loEx = false, hi = Infinity, hiEx = false;
    const num = (k) => {
      const v = schema[k];
      if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(path, `${k} must be a finite number`);
      if (Math.abs(v) > 1e15) this.fail(path, `${k} ${v} is beyond the supported range ±1e15`);
      return v;
    };
    if ('minimum' in schema) lo = num('minimum');
    if ('exclusiveMinimum' in schema) {
      const v = num('exclusiveMinimum');
      if (v >= lo) [lo, loEx] = [v, true];
    }
    if ('maximum' in schema) hi = num('maximum');
    if ('exclusiveMaximum' in schema) {
      const v = num('exclusiveMaximum');
      if (v <= hi) [hi, hiEx] = [v, true];
    }
    return [lo, loEx, hi, hiEx];
  }

  integer(schema, path) {
    let [lo, loEx, hi, hiEx] = this.bounds(schema, path);
    if (lo === -Infinity && hi === Infinity) return this.use('integer');
    lo = loEx ? Math.floor(lo) + 1 : Math.ceil(lo);
    hi = hiEx ? Math.ceil(hi) - 1 : Math.floor(hi);
    const body = intRange(lo, hi);
    if (body === null) this.fail(path, 'no integer lies within minimum/maximum');
    return this.define(`${this.hint(path)}-int`, body);
  }

  number(schema, path) {
    const [lo, loEx, hi, hiEx] = this.bounds(schema, path);
    if (lo === -Infinity && hi === Infinity) return this.use('number');
    for (const v of [lo, hi])
      if (Number.isFinite(v) && !Number.isInteger(v)) this.fail(path, `only whole-number bounds are supported for type number (not ${v}); use type integer or whole bounds`);
    if (Math.max(Math.abs(Number.isFinite(lo) ? lo : 0), Math.abs(Number.isFinite(hi) ? hi : 0)) > 1e9)
      this.fail(path, 'number bounds beyond ±1e9 are not supported (use type integer)');
    // value = sign (I + f), f the fraction: the non-negative side covers [max(lo, 0), hi],
    // the negative side magnitudes [max(-hi, 0), -lo] with the exclusivity swapped.
    const parts = [];
    if (hi > 0 || (hi === 0 && !hiEx)) parts.push(realRange(Math.max(lo, 0), lo >= 0 && loEx, hi, hiEx));
    if (lo < 0) parts.push(`"-" ${realRange(Math.max(-hi, 0), hi <= 0 && hiEx, -lo, loEx)}`);
    const body = parts.filter(Boolean);
    if (!body.length) this.fail(path, 'no number lies within minimum/maximum');
    return this.define(`${this.hint(path)}-num`, body.length === 1 ? body[0] : `${body.join(' | ')}`);
  }

  array(schema, path) {
    const prefix = schema.prefixItems ?? [];
    if (!Array.isArray(prefix)) this.fail(path, 'prefixItems must be an array');
    if (schema.uniqueItems === true && (schema.maxItems ?? Infinity) > 1) this.fail(path, "'uniqueItems' is not supported");
    const min = this.count(schema, 'minItems', path) ?? 0;
    let max = this.count(schema, 'maxItems', path) ?? Infinity;
    if (schema.items === false) max = Math.min(max, prefix.length);
    if (max < min) this.fail(path, 'maxItems is below minItems (or items: false leaves too few)');
    const itemOf = (i) => (i < prefix.length ? this.visit(prefix[i], `${path}/prefixItems/${i}`)
      : this.visit(schema.items ?? true, `${path}/items`));
    const ws = this.use('ws');
    // Element expressions in order, each optional after the min-th.
    const sep = `${ws} "," ${ws}`;
    const fixed = [];
    for (let i = 0; i < Math.min(prefix.length, max); ++i) fixed.push(itemOf(i));
    const restItem = max > prefix.length ? itemOf(prefix.length) : null;
    // tail(i): the elements from i on, each preceded by a comma, the first min - i required.
    const tail = (i) => {
      if (i < fixed.length) {
        const rest = tail(i + 1);
        const one = `${sep} ${fixed[i]}${rest ? ` ${rest}` : ''}`;
        return i < min ? one : `( ${one} )?`;
      }
      if (!restItem || max <= i) return '';
      const need = Math.max(0, min - i), room = max === Infinity ? '' : max - i;
      return `( ${sep} ${restItem} ){${need},${room}}`;
    };
    const first = fixed.length ? fixed[0] : restItem;
    if (!first || max === 0) return `"[" ${ws} "]"`;
    const rest = tail(1);
    const items = `${first}${rest ? ` ${rest}` : ''} ${ws}`;
    return this.define(`${this.hint(path)}-array`, min > 0 ? `"[" ${ws} ${items} "]"` : `"[" ${ws} ( ${items} )? "]"`);
  }

  object(schema, path) {
    const props = schema.properties ?? {};
    if (props === null || typeof props !== 'object' || Array.isArray(props)) this.fail(path, 'properties must be an object');
    const required = schema.required ?? [];
    if (!Array.isArray(required)) this.fail(path, 'required must be an array');
    const extra = schema.additionalProperties ?? false;  // absent: only the declared properties (docs/grammar.md)
    const names = Object.keys(props);
    for (const r of required) {
      if (names.includes(r)) continue;
      if (extra === false) this.fail(path, `required property '${r}' is not in properties and additionalProperties is false`);
      names.push(r);
    }
    const minP = this.count(schema, 'minProperties', path) ?? 0, maxP = this.count(schema, 'maxProperties', path);
    if (minP > required.length) this.fail(path, `'minProperties' above the number of required properties is not supported`);
    if (maxP !== undefined && (maxP < names.length || extra !== false)) this.fail(path, `'maxProperties' below the number of possible properties is not supported`);
    const ws = this.use('ws');
    const sep = `${ws} "," ${ws}`;
    const members = names.map((n) => ({
      text: `${jsonLiteral(n)} ${ws} ":" ${ws} ${this.visit(n in props ? props[n] : true, `${path}/properties/${n}`)}`,
      required: required.includes(n),
    }));
    let extraMember = null;
    if (extra !== false) {
      const value = this.visit(extra, `${path}/additionalProperties`);
      extraMember = `${this.define(`${this.hint(path)}-key`, keyExcept(names))} ${ws} ":" ${ws} ${value}`;
    }
    // after(i): members i.. when one has been written already (each after a comma);
    // from(i): members i.. when none has been written yet.
    const after = (i) => {
      const parts = [];
      for (let k = i; k < members.length; ++k) {
        const one = `${sep} ${members[k].text}`;
        parts.push(members[k].required ? one : `( ${one} )?`);
      }
      if (extraMember) parts.push(`( ${sep} ${extraMember} )*`);
      return parts.join(' ');
    };
    const from = (i) => {
      if (i === members.length) return extraMember ? `( ${extraMember} ${after(i)} )?` : '';
      const rest = after(i + 1);
      const here = `${members[i].text}${rest ? ` ${rest}` : ''}`;
      if (members[i].required) return here;
      const skip = from(i + 1);
      return skip ? `( ${here} | ${skip} )` : `( ${here} )?`;
    };
    const body = from(0);
    return this.define(`${this.hint(path)}-object`, body ? `"{" ${ws} ${body} ${ws} "}"` : `"{" ${ws} "}"`);
  }

  grammar(top) {
    const lines = [`root ::= ${top}`];
    for (const [name, body] of this.rules) lines.push(`${name} ::= ${body}`);
    return `${lines.join('\n')}\n`;
  }
}

function typeOf(v, t) {
  switch (t) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'string': return typeof v === 'string';
    case 'integer': return Number.isInteger(v);
    case 'number': return typeof v === 'number';
    case 'array': return Array.isArray(v);
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
  }
  return false;
}

/**
 * Non-negative reals sign-less I(.F)? in the interval from a to b (a >= 0 whole, b whole
 * or Infinity; exclusive ends as flagged): whole parts with any fraction inside, the
 * ends with a fraction of zeros (inclusive b) or a non-zero one (exclusive a). Null when
 * the interval is empty. At most 9 whole digits and 6 fraction digits, so that the
 * double the text parses to stays inside the bounds.
 */
function realRange(a, aEx, b, bEx) {
  const anyFrac = '( "." [0-9]{1,6} )?', zeroFrac = '( "." "0"{1,6} )?', nonzeroFrac = '"." [0-9]{0,5} [1-9] [0-9]{0,5}';
  const cap = 999999999;
  const parts = [];
  const lo = aEx ? a + 1 : a, hi = b === Infinity ? cap : b - 1;
  if (lo <= hi) parts.push(`${uintRange(lo, hi)} ${anyFrac}`);
  if (aEx && a < b) parts.push(`"${a}" ${nonzeroFrac}`);
  if (!bEx && b !== Infinity && (b > a || (b === a && !aEx))) parts.push(`"${b}" ${zeroFrac}`);
  if (!parts.length) return null;
  return parts.length === 1 ? parts[0] : `( ${parts.join(' | ')} )`;
}

/**
 * A JSON string (as a key) whose text is none of `names`, written without escapes: the
 * declared names' characters are followed along their trie; leaving it at any point is
 * allowed, ending exactly on a declared name is not.
 */
function keyExcept(names) {
  const plain = '[^"\\\\\\x00-\\x1f]';
  const isPlain = (ch) => ch !== '"' && ch !== '\\' && ch.codePointAt(0) >= 0x20;
  const classChar = (ch) => (']\\-^'.includes(ch) ? `\\${ch}` : ch);
  const trie = new Map();  // prefix -> {children: Map(char -> prefix), end: bool}
  const node = (p) => { if (!trie.has(p)) trie.set(p, { children: new Map(), end: false }); return trie.get(p); };
  node('');
  for (const n of names) {
    let p = '';
    for (const ch of n) {
      node(p).children.set(ch, p + ch);
      p += ch;
      node(p);
    }
    node(p).end = true;
  }
  const walk = (p) => {
    const { end } = trie.get(p);
    // Characters a key without escapes cannot hold cannot lead to a declared name.
    const children = [...trie.get(p).children].filter(([ch]) => isPlain(ch));
    const alts = [];
    if (!end) alts.push('"\\""');  // the key may end here
    if (children.length) {
      const away = `[^"\\\\\\x00-\\x1f${children.map(([ch]) => classChar(ch)).join('')}]`;
      alts.push(`${away} ${plain}* "\\""`);
      for (const [ch, next] of children) alts.push(`${literal(ch)} ${walk(next)}`);
    } else {
      alts.push(`${plain}+ "\\""`);
    }
    return alts.length === 1 ? alts[0] : `( ${alts.join(' | ')} )`;
  };
  return `"\\"" ${walk('')}`;
}

/**
 * The grammar (docs/grammar.md) of the JSON documents `schema` allows. Options:
 * whitespace 'flexible' (default: between tokens nothing, a space, or a newline and up to
 * 20 spaces or tabs) or 'compact' (none). The document may begin with one space (chat
 * answers begin with one after "Assistant:"). Throws InvalidArgumentError naming the
 * keyword and its path for what cannot be expressed.
 */
export function schemaToGrammar(schema, options = {}) {
  const c = new Compiler(schema, options);
  const top = c.visit(schema, '#');
  return c.grammar(`" "? ${top}`);
}

/** The grammar of any JSON object (response_format json_object). */
export function jsonObjectGrammar(options = {}) {
  const c = new Compiler({}, options);
  return c.grammar(`" "? ${c.use('object')}`);
}

/**
 * The grammar for an OpenAI `response_format`, or null for none / {type: 'text'}.
 * Throws InvalidArgumentError for a malformed one.
 */
export function responseFormatGrammar(responseFormat, options = {}) {
  if (responseFormat === undefined || responseFormat === null) return null;
  if (typeof responseFormat !== 'object') throw new InvalidArgumentError('response_format must be an object');
  switch (responseFormat.type) {
    case 'text': return null;
    case 'json_object': return jsonObjectGrammar(options);
    case 'json_schema': {
      const schema = responseFormat.json_schema?.schema;
      if (schema === undefined || schema === null || typeof schema !== 'object' && typeof schema !== 'boolean')
        throw new InvalidArgumentError('response_format.json_schema.schema must be a JSON Schema (an object)');
      return schemaToGrammar(schema, options);
    }
  }
  throw new InvalidArgumentError(`response_format.type must be 'text', 'json_object' or 'json_schema', not '${responseFormat.type}'`);
}
