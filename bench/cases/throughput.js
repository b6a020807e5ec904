// Case 1: tiny tasks (sleep(0)), 1,024 kept in flight: tasks per second.
'use strict';
const path = require('node:path');
const { Piscina } = require('piscina');
const { EventLoop } = require('../..');
const { quick, rounds, summary, windowed, report } = require('../lib');

const WINDOW = 1024;
const TOTAL = quick ? 20_000 : 300_000;
const PEER_TOTAL = quick ? 2_000 : 30_000; // piscina is ~100x slower: fewer tasks, same window

async function measureLoop(backend) {
  const loop = new EventLoop({ backend });
  const result = await rounds(() => windowed(() => loop.sleep(0), TOTAL, WINDOW));
  await loop.shutdown();
  return summary(result);
}

async function measurePiscina(options) {
  const pool = new Piscina({ filename: path.join(__dirname, '..', 'peers', 'noop.js'), ...options });
  const result = await rounds(() => windowed(() => pool.run(null), PEER_TOTAL, WINDOW));
  await pool.destroy();
  return summary(result);
}

async function main() {
  const results = {
    floor: summary(await rounds(() => windowed(() => new Promise((resolve) => resolve()), TOTAL, WINDOW))),
    native: await measureLoop('native'),
    worker: await measureLoop('worker'),
    piscinaDefault: await measurePiscina({}),
    // piscina's best configuration found on these machines (see the findings note)
    piscinaBest: await measurePiscina({ maxThreads: 1, minThreads: 1, concurrentTasksPerWorker: 256, atomics: 'async' }),
  };
  report({ case: 'throughput', window: WINDOW, total: TOTAL, peerTotal: PEER_TOTAL, results });
}

main();
