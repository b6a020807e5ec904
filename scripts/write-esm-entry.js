// Writes dist/index.mjs and dist/index.d.mts: the ESM entry re-exports the
// CommonJS build, so `import` and `require` share one copy of the library
// (one default loop per thread, one Future class for instanceof). It loads
// that build with require, not `import`: Deno imports a .js file as ESM
// unless it finds package.json's "type", which it looks for only around the
// main script.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const names = Object.keys(require(path.join(dist, 'index.js'))).filter((name) => name !== '__esModule').sort();

fs.writeFileSync(
  path.join(dist, 'index.mjs'),
  `import { createRequire } from 'node:module';\n\nconst sideloop = createRequire(import.meta.url)('./index.js');\n\nexport const {\n${names.map((n) => `  ${n},`).join('\n')}\n} = sideloop;\n`,
);
fs.writeFileSync(path.join(dist, 'index.d.mts'), "export * from './index.js';\n");
