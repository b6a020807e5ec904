#!/usr/bin/env node
// The package's install step. It never fails the install:
// 1. a prebuilt binary for this platform loads -> nothing to do;
// 2. otherwise, on Linux (Android too), compile from source with node-gyp
//    (npm's own, or one on PATH);
// 3. if that fails too (no compiler, no Python), say in one line that the
//    worker backend will serve, and succeed: backend 'auto' falls back at run time.
// (npm may skip it: npm 11 with --ignore-scripts or a project that denies
// it in allowScripts, npm 12 unless the project allows it. sideloop then
// still loads its prebuilt binary at run time, with no install step at all.)
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

// Bun and Deno lack Node's libuv, so the addon would crash them at its first
// call; sideloop uses its worker backend there. Loading or compiling it here
// is pointless: leave it alone (the same check as src/backends/load.ts).
const foreign = process.versions.bun ? 'Bun' : typeof globalThis.Deno === 'object' ? 'Deno' : undefined;
if (foreign) {
  console.log(`sideloop: ${foreign} runs the worker backend; the native addon is not used there`);
  process.exit(0);
}
const target = `${process.platform}-${process.arch}`;

function loads() {
  try {
    require('node-gyp-build')(root);
    return true;
  } catch {
    return false;
  }
}

if (loads()) process.exit(0);

// The native code uses Linux's thread calls (gettid, tgkill, the two-argument
// pthread_setname_np): elsewhere a compile can only fail, after a while and
// with a screenful of errors. Android's C library has them all.
if (process.platform !== 'linux' && process.platform !== 'android') {
  console.log(`sideloop: the native addon is for Linux; on ${target} sideloop uses its worker backend`);
  process.exit(0);
}

const nodeGyp = process.env.npm_config_node_gyp;
const compile = nodeGyp
  ? spawnSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: root, stdio: 'pipe' })
  : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'pipe' });

if (compile.status === 0 && loads()) {
  console.log(`sideloop: compiled the native addon for ${target}`);
} else {
  console.log(`sideloop: no prebuilt binary for ${target} and compiling failed (${failure(compile)}); sideloop will use its worker backend`);
}

/** Why node-gyp failed, in a few words: its own error line, or why it could not run. */
function failure({ error, stderr }) {
  if (error) return error.message;
  const lines = String(stderr ?? '').split('\n');
  const stack = lines.find((line) => /gyp ERR! stack \w*Error: /.test(line));
  const last = lines.filter((line) => line.trim() !== '').pop();
  const reason = (stack ?? last ?? 'no output').replace(/^gyp ERR! (stack )?/, '').trim();
  return reason.length > 200 ? `${reason.slice(0, 200)}...` : reason;
}
