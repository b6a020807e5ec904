// Case 3: start a loop and get its first result (ms); resident memory per
// idle loop (16 of them). Peer: a plain new Worker() until its first reply.
'use strict';
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { Worker } = require('node:worker_threads');
const { EventLoop } = require('../..');
const { quick, summary, report } = require('../lib');

const STARTS = quick ? 5 : 30;
// Idle threads measured per kind: a native loop's few dozen KiB need many of
// them to stand out of the heap's own ups and downs (16 gave negative figures).
const IDLE = { native: 256, worker: 16, newWorker: 16 };

async function startTimes(startOnce) {
  await startOnce(); // the first ever start pays for loading code
  const times = [];
  for (let i = 0; i < STARTS; i++) times.push(await startOnce());
  return summary(times);
}

async function loopStart(backend) {
  const t0 = performance.now();
  const loop = new EventLoop({ backend });
  await loop.sleep(0);
  const ms = performance.now() - t0;
  await loop.shutdown();
  return ms;
}

async function workerStart() {
  const t0 = performance.now();
  const worker = new Worker(path.join(__dirname, '..', 'peers', 'echo-worker.js'));
  await new Promise((resolve) => {
    worker.once('message', resolve);
    worker.postMessage(0);
  });
  const ms = performance.now() - t0;
  await worker.terminate();
  return ms;
}

function rss() {
  global.gc();
  return process.memoryUsage().rss;
}

/** MB of resident memory per idle started thread, from `count` of them. */
async function idleMemory(startOne, count) {
  const before = rss();
  const handles = [];
  for (let i = 0; i < count; i++) handles.push(await startOne());
  const per = (rss() - before) / count / (1024 * 1024);
  return { per, handles };
}

async function main() {
  const results = {
    startMs: {
      native: await startTimes(() => loopStart('native')),
      worker: await startTimes(() => loopStart('worker')),
      newWorker: await startTimes(workerStart),
    },
  };
  const memory = {};
  for (const backend of ['native', 'worker']) {
    const { per, handles } = await idleMemory(async () => {
      const loop = new EventLoop({ backend });
      await loop.sleep(0);
      return loop;
    }, IDLE[backend]);
    memory[backend] = per;
    await Promise.all(handles.map((loop) => loop.shutdown()));
  }
  const { per, handles } = await idleMemory(async () => {
    const worker = new Worker(path.join(__dirname, '..', 'peers', 'echo-worker.js'));
    await new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage(0);
    });
    return worker;
  }, IDLE.newWorker);
  memory.newWorker = per;
  await Promise.all(handles.map((worker) => worker.terminate()));
  results.idleMemoryMB = memory;
  results.idleCounts = IDLE;
  report({ case: 'startup', starts: STARTS, idle: IDLE, results });
}

main();
