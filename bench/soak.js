#!/usr/bin/env node
// Soak: ten million tasks (default) with random cancels and timeouts, kept
// 10,000 in flight. Checks that every Future settles, that resident memory is
// flat after warm-up, and that the thread count is back to its baseline.
// Not part of CI (it runs for minutes): node --expose-gc bench/soak.js [tasks] [backend]
'use strict';
const fs = require('node:fs');
const { EventLoop } = require('..');

const TOTAL = Number(process.argv[2] ?? 10_000_000);
const BACKEND = process.argv[3] ?? 'native';
const WINDOW = 10_000;
const threads = () => fs.readdirSync('/proc/self/task').length;
const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);

async function main() {
  const baselineThreads = threads();
  const loop = new EventLoop({ backend: BACKEND, name: 'soak' });
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  let submitted = 0;
  let settled = 0;
  const samples = [];
  const started = Date.now();

  await new Promise((resolve) => {
    const onDone = () => {
      settled++;
      if (settled % 500_000 === 0) {
        global.gc?.();
        const rss = process.memoryUsage().rss;
        samples.push(rss);
        console.log(`${settled} settled, rss ${mb(rss)} MB, ${Math.round(settled / ((Date.now() - started) / 1000))} tasks/s`);
      }
      if (settled === TOTAL) resolve();
      else if (submitted < TOTAL) submit();
    };
    const submit = () => {
      submitted++;
      const r = random();
      const future = r < 0.1 ? loop.sleep(50, undefined, { timeout: Math.floor(random() * 3) }) : loop.sleep(r < 0.2 ? 1 : 0);
      future.addDoneCallback(onDone);
      if (r > 0.95) future.cancel();
    };
    for (let i = 0; i < WINDOW; i++) submit();
  });

  const stats = loop.stats();
  await loop.shutdown();
  const afterWarmUp = samples.slice(Math.min(2, samples.length - 1));
  const growth = afterWarmUp.length > 1 ? afterWarmUp[afterWarmUp.length - 1] - afterWarmUp[0] : 0;
  const result = {
    settled,
    stats,
    rssGrowthAfterWarmUpMB: Number(mb(growth)),
    threadsBefore: baselineThreads,
    threadsAfter: threads(),
  };
  console.log(JSON.stringify(result));
  const ok = settled === TOTAL && stats.pending === 0 && result.threadsAfter <= baselineThreads && growth < 32 * 2 ** 20;
  console.log(ok ? 'soak: ok' : 'soak: FAILED');
  process.exitCode = ok ? 0 : 1;
}

main();
