// Case 6: result(timeout), the blocking round trip, against await.
'use strict';
const { performance } = require('node:perf_hooks');
const { EventLoop } = require('../..');
const { quick, rounds, median, percentile, pingPong, report } = require('../lib');

const COUNT = quick ? 500 : 5_000;

function blockingLatencies(loop) {
  const latencies = new Float64Array(COUNT);
  for (let i = 0; i < COUNT; i++) {
    const t0 = performance.now();
    loop.sleep(0).result(10_000);
    latencies[i] = (performance.now() - t0) * 1000;
  }
  return Array.from(latencies).sort((a, b) => a - b);
}

async function measure(backend) {
  const loop = new EventLoop({ backend });
  const out = { result: [], await: [] };
  await rounds(async (warmUp) => {
    const blocking = blockingLatencies(loop);
    const awaited = await pingPong(() => loop.sleep(0), COUNT);
    if (warmUp) return;
    out.result.push(percentile(blocking, 50));
    out.await.push(percentile(awaited, 50));
  });
  await loop.shutdown();
  return { resultP50: { median: median(out.result), min: Math.min(...out.result), max: Math.max(...out.result) }, awaitP50: { median: median(out.await), min: Math.min(...out.await), max: Math.max(...out.await) } };
}

async function main() {
  report({ case: 'blocking', count: COUNT, results: { native: await measure('native'), worker: await measure('worker') } });
}

main();
