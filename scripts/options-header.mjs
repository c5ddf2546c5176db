#!/usr/bin/env node
// Writes the C++ view of the options schema (js/options.mjs) as a header, so that the
// core's defaults, validation and the bindings' reading of an options object derive from
// the one table. Run by the build (cmake/options.cmake), never by hand; the output lives
// in the build folder, not in git.
//   node scripts/options-header.mjs OUT.h
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GENERATE_OPTIONS, rangeText } from '../js/options.mjs';

const out = process.argv[2];
if (!out) {
  console.error('usage: node scripts/options-header.mjs OUT.h');
  process.exit(2);
}

const cstr = (s) => JSON.stringify(s ?? '');
const num = (v) => (v === Infinity ? 'INFINITY' : v === -Infinity ? '-INFINITY' : Number.isInteger(v) ? `${v}.0` : String(v));
const split = (o) => o.core.split('.');

const structs = { sampler: 'SamplerOptions', generate: 'GenerateOptions' };
const rows = {};  // `${struct}_${kind}` -> lines
for (const st of Object.keys(structs)) for (const kind of ['NUMERIC', 'LISTS', 'MAPS', 'STRINGS', 'BOOLS']) rows[`${st}_${kind}`] = [];
const defaults = [];
for (const o of GENERATE_OPTIONS) {
  if (!o.core) continue;
  const [struct, field] = split(o);
  if (!structs[struct]) throw new Error(`option ${o.name}: unknown core struct '${struct}'`);
  const names = `${field}, ${cstr(o.name)}, ${cstr(o.openai && o.openai !== o.name ? o.openai : '')}`;
  if (o.type === 'number' || o.type === 'integer') {
    rows[`${struct}_NUMERIC`].push(`  X(${names}, ${num(o.min)}, ${num(o.max)}, ${cstr(rangeText(o))})`);
    if (o.default !== undefined) defaults.push(`constexpr double ${struct}_${field} = ${num(o.default)};`);
  } else if (o.type === 'string[]' || o.type === 'integer[]') {
    rows[`${struct}_LISTS`].push(`  X(${names})`);
  } else if (o.type === 'map') {
    rows[`${struct}_MAPS`].push(`  X(${names})`);
  } else if (o.type === 'string') {
    rows[`${struct}_STRINGS`].push(`  X(${names})`);
  } else if (o.type === 'boolean') {
    rows[`${struct}_BOOLS`].push(`  X(${names})`);
    defaults.push(`constexpr bool ${struct}_${field} = ${o.default === true};`);
  } else {
    throw new Error(`option ${o.name}: no C++ form for type ${o.type}`);
  }
}

const macros = Object.entries(rows).map(([key, lines]) => {
  const args = key.endsWith('NUMERIC') ? 'field, name, openai name or "", min, max, range in words' : 'field, name, openai name or ""';
  return `// X(${args})\n#define RWKV_${key.toUpperCase()}(X)${lines.length ? ` \\\n${lines.join(' \\\n')}` : ''}\n`;
});
const text = `#pragma once
// Generated from js/options.mjs by scripts/options-header.mjs: do not edit.
// The generation options the core reads from JS (by their library and OpenAI names), with
// their defaults and valid ranges, per struct: SAMPLER = SamplerOptions, GENERATE =
// GenerateOptions; NUMERIC = numbers, LISTS = arrays, MAPS = token id -> number,
// STRINGS = strings, BOOLS = true or false.
#include <cmath>

${macros.join('\n')}
namespace rwkv::option_defaults {
${defaults.join('\n')}
}  // namespace rwkv::option_defaults
`;
mkdirSync(path.dirname(out), { recursive: true });
let old = null;
try { old = readFileSync(out, 'utf8'); } catch {}
if (old !== text) writeFileSync(out, text);  // untouched when unchanged: no rebuild
