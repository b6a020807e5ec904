// sideloop inside a worker thread: each JS thread has its own default loop.
// Run: node examples/worker-thread.js
'use strict';
const { Worker, isMainThread, parentPort, threadId } = require('node:worker_threads');
const { getDefaultLoop } = require('sideloop');

if (isMainThread) {
  const worker = new Worker(__filename);
  worker.on('message', (message) => console.log('from the worker:', message));
  worker.on('exit', (code) => console.log('worker exited with', code));
} else {
  const loop = getDefaultLoop();
  loop.hash('sha1', `thread ${threadId}`).then(async (digest) => {
    const blocking = loop.sleep(5, 'and result() works here too').result(1000);
    parentPort.postMessage(`sha1 ${digest.toString('hex').slice(0, 12)}…, ${blocking}`);
    await loop.shutdown(); // or leave it: an idle loop never keeps the thread alive
  });
}
