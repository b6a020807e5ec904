// A native extension of sideloop, in one function: the CRC-32 of a byte
// array (as zlib.crc32 computes it), worked out on a sideloop loop's thread.
//
//   const { EventLoop } = require('sideloop');
//   const { crc32 } = require('./examples/native-extension');
//   const sum = await crc32(new EventLoop(), Buffer.from('hello'));
//
// It returns sideloop's Future, so cancel(), result(), `signal` and `timeout`
// work as for the built-in tasks. options: `expected` (the Future fails with
// code ERR_CHECKSUM_MISMATCH when the data's CRC-32 differs), `chunkSize`
// (bytes per turn of the loop, default 512 KiB), `signal`, `timeout`.
'use strict';
const path = require('node:path');

// Built with `node-gyp rebuild` in this folder.
const addon = require(path.join(__dirname, 'build', 'Release', 'crc32.node'));

exports.crc32 = (loop, data, options) => addon.crc32(loop, data, options);

// Tasks whose memory the addon has not yet been told to free.
exports.liveTasks = () => addon.liveTasks();
