// A plain worker_threads echo: the simplest cross-thread round trip.
'use strict';
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (message) => parentPort.postMessage(message));
