// The package as users get it: `npm pack` of this tree (the wasm built before the tests)
// installed into an empty folder. Shared by the tests of the examples (Node and browser).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root } from './helpers.mjs';

const run = promisify(execFile);

/** Packs the repository and installs the tarball into a new folder: {app, pkg, tarball}. */
export async function installPacked() {
  const packDir = await mkdtemp(path.join(tmpdir(), 'rwkv-pack-'));
  // The scripts are skipped: prepack would build, which the test run did already.
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: root });
  const [tgz] = (await readdir(packDir)).filter((f) => f.endsWith('.tgz'));
  const app = await mkdtemp(path.join(tmpdir(), 'rwkv-app-'));
  await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', path.join(packDir, tgz)], { cwd: app });
  return { app, pkg: path.join(app, 'node_modules/rwkv-web'), tarball: path.join(packDir, tgz) };
}
