// Case 2: one task at a time (ping-pong): round-trip latency, p50 and p99.
'use strict';
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { Piscina } = require('piscina');
const { EventLoop } = require('../..');
const { quick, rounds, median, percentile, pingPong, report } = require('../lib');

const COUNT = quick ? 500 : 5_000;

async function measure(roundTrip) {
  const p50s = [];
  const p99s = [];
  await rounds(async (warmUp) => {
    const sorted = await pingPong(roundTrip, COUNT);
    if (warmUp) return;
    p50s.push(percentile(sorted, 50));
    p99s.push(percentile(sorted, 99));
  });
  return { p50: { median: median(p50s), min: Math.min(...p50s), max: Math.max(...p50s) }, p99: { median: median(p99s), min: Math.min(...p99s), max: Math.max(...p99s) } };
}

async function measureLoop(options) {
  const loop = new EventLoop(options);
  const result = await measure(() => loop.sleep(0));
  await loop.shutdown();
  return result;
}

async function main() {
  const results = {};
  results.native = await measureLoop({ backend: 'native' });
  results.nativeSpin = await measureLoop({ backend: 'native', spin: 50 });
  results.worker = await measureLoop({ backend: 'worker' });

  const pool = new Piscina({ filename: path.join(__dirname, '..', 'peers', 'noop.js'), maxThreads: 1, minThreads: 1, atomics: 'async' });
  results.piscina = await measure(() => pool.run(null));
  await pool.destroy();

  const echo = new Worker(path.join(__dirname, '..', 'peers', 'echo-worker.js'));
  let reply;
  echo.on('message', () => reply());
  results.workerThreadsEcho = await measure(
    () =>
      new Promise((resolve) => {
        reply = resolve;
        echo.postMessage(0);
      }),
  );
  await echo.terminate();
  report({ case: 'latency', count: COUNT, results });
}

main();
