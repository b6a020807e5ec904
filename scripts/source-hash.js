// The hash of everything the native binary is built from: binding.gyp and
// every file under native/ and include/ (the public header is compiled in). prebuilds/SOURCE_HASH records it for the
// committed binary, and a test fails when the sources have moved on.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

function listFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      return entry.isDirectory() ? listFiles(full) : [full];
    });
}

function sourceHash() {
  const sources = ['native', 'include'].flatMap((dir) => listFiles(path.join(ROOT, dir)));
  const files = ['binding.gyp', ...sources.map((f) => path.relative(ROOT, f))]
    .map((f) => f.split(path.sep).join('/'))
    .sort();
  const hash = crypto.createHash('sha256');
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(fs.readFileSync(path.join(ROOT, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

module.exports = { sourceHash, HASH_FILE: path.join(ROOT, 'prebuilds', 'SOURCE_HASH') };

if (require.main === module) console.log(sourceHash());
