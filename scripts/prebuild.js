// Rebuilds the committed binary (prebuilds/<platform>-<arch>/) and records
// the hash of the sources it was built from. Run it whenever native/ or
// binding.gyp changes, and commit both together.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { sourceHash, HASH_FILE } = require('./source-hash.js');

const root = path.join(__dirname, '..');
const prebuildify = require.resolve('prebuildify/bin.js');
execFileSync(process.execPath, [prebuildify, '--napi', '--strip'], { cwd: root, stdio: 'inherit' });
fs.writeFileSync(HASH_FILE, `${sourceHash()}\n`);
console.log(`prebuild: wrote ${path.relative(root, HASH_FILE)}`);
