// Case 4: while 100,000 tasks are kept in flight, the main thread's
// event-loop delay (p99, max) and the throughput at the same time.
'use strict';
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { EventLoop } = require('../..');
const { quick, rounds, summary, windowed, report } = require('../lib');

const WINDOW = 100_000;
const TOTAL = quick ? 200_000 : 1_000_000;

async function measure(backend) {
  const loop = new EventLoop({ backend });
  const p99 = [];
  const max = [];
  const rate = [];
  await rounds(async (warmUp) => {
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    histogram.enable();
    const tasksPerSecond = await windowed(() => loop.sleep(0), TOTAL, WINDOW);
    histogram.disable();
    if (warmUp) return;
    p99.push(histogram.percentile(99) / 1e6);
    max.push(histogram.max / 1e6);
    rate.push(tasksPerSecond);
  }, quick ? 1 : 3);
  await loop.shutdown();
  return { delayP99Ms: summary(p99), delayMaxMs: summary(max), tasksPerSecond: summary(rate) };
}

async function main() {
  report({ case: 'fairness', window: WINDOW, total: TOTAL, results: { native: await measure('native'), worker: await measure('worker') } });
}

main();
