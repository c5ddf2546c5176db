// Shared by the node --test suites: paths to reference data and fixtures, float files.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const referenceDir = process.env.RWKV_REFERENCE_DIR || path.join(root, '../shared/reference');
export const fixtureDir = process.env.RWKV_FIXTURE_DIR || path.join(root, 'build/fixtures');
export const haveReference = existsSync(path.join(referenceDir, 'golden'));
export const haveFixtures = existsSync(path.join(fixtureDir, 'fix-L3-C64-H2.pth'));
export const skipNoReference = haveReference ? false : `${referenceDir} is missing (shared reference data not on this machine)`;
export const skipNoFixtures = haveFixtures ? false : `fixtures missing in ${fixtureDir} (run: node scripts/make-fixtures.mjs)`;

export function readF32(file) {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export function maxAbsDiff(a, b) {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export function argmaxRows(x, V) {
  const out = [];
  for (let t = 0; t < x.length / V; t++) {
    let best = 0;
    for (let i = 1; i < V; i++) if (x[t * V + i] > x[t * V + best]) best = i;
    out.push(best);
  }
  return out;
}
