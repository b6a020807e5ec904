// A tour of sideloop: one loop on its own thread, Futures you can await or
// inspect, cancellation, and a clean shutdown. Run: node examples/demo.js
'use strict';
const { performance } = require('node:perf_hooks');
const { EventLoop, wait } = require('sideloop');

async function main() {
  const loop = new EventLoop({ name: 'demo' });
  console.log(`backend: ${loop.backend}, state: ${loop.state}`);

  const future = loop.sleep(50, 'hello from the loop thread');
  console.log('submitted:', future);
  console.log('awaited:  ', await future);
  console.log('blocking result():', loop.sleep(10, 42).result(1000));

  const long = loop.sleep(60_000);
  await loop.sleep(0);
  console.log('long task:', long.state, '-> cancel():', long.cancel(), '->', long.state);

  const timed = loop.sleep(60_000, undefined, { timeout: 20 });
  console.log('with a 20 ms timeout:', (await timed.catch((e) => e)).name);

  const count = 100_000;
  const start = performance.now();
  await wait(Array.from({ length: count }, () => loop.sleep(0)));
  const ms = performance.now() - start;
  console.log(`${count} sleep(0) tasks submitted at once settled in ${ms.toFixed(0)} ms on this machine`);

  console.log('stats:', loop.stats());
  await loop.shutdown();
  console.log('state after shutdown:', loop.state);
}

main();
