// Why the tiny-task goal (half the same-thread floor) is out of reach: what
// the JavaScript of a task costs with no thread at all. Not part of
// `npm run bench`; run it on its own (`node bench/bounds.js`, about a
// minute) and read the ratios to the floor, measured side by side in one run:
//
//   floor            a Promise created and resolved (the benchmark's floor)
//   lean future      a minimal Future (a promise made when then() is called),
//                    settled in batches from setImmediate
//   lean pipeline    the same, plus the shape a loop on another thread needs:
//                    a slot table (the task's id there), a Float64Array batch
//                    flushed once per microtask, a two-pass settle
//   sideloop, no thread  sideloop's own code with its addon replaced by a
//                    stand-in that completes every task from setImmediate
//   sideloop native  the real backend
'use strict';
const path = require('node:path');
const { quick, sideBySide, windowed } = require('./lib');

const WINDOW = 1024;
const TOTAL = quick ? 20_000 : 300_000;

/** Just enough of a Future: state, value, a promise made on demand. */
class LeanFuture {
  #done = false;
  #value;
  #promise;
  #resolve;
  ticket = -1;

  then(onFulfilled, onRejected) {
    if (this.#promise === undefined) {
      this.#promise = new Promise((resolve) => (this.#resolve = resolve));
      if (this.#done) this.#resolve(this.#value);
    }
    return this.#promise.then(onFulfilled, onRejected);
  }

  settle(value) {
    this.#done = true;
    this.#value = value;
    if (this.#promise !== undefined) this.#resolve(value);
  }
}

/** Submits LeanFutures; each batch settles on the next turn. */
function leanFuture() {
  let queued = [];
  const settleAll = () => {
    const batch = queued;
    queued = [];
    for (const future of batch) future.settle(undefined);
  };
  return () => {
    const future = new LeanFuture();
    if (queued.push(future) === 1) setImmediate(settleAll);
    return future;
  };
}

/** LeanFutures through a slot table, a batch and a two-pass settle, as a threaded loop needs. */
function leanPipeline() {
  const slots = [];
  const free = [];
  const batch = new Float64Array(4096 * 2);
  let batchCount = 0;
  let finished = []; // slots "the other thread" has finished
  const flush = () => {
    for (let i = 0; i < batchCount; i++) finished.push(batch[i * 2]);
    batchCount = 0;
    setImmediate(drain);
  };
  const drain = () => {
    const ids = finished;
    finished = [];
    const futures = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      futures[i] = slots[ids[i]];
      slots[ids[i]] = undefined;
      free.push(ids[i]);
    }
    for (const future of futures) future.settle(undefined);
  };
  return () => {
    const future = new LeanFuture();
    const slot = free.pop() ?? slots.length;
    future.ticket = slot;
    slots[slot] = future;
    batch[batchCount * 2] = slot;
    batch[batchCount * 2 + 1] = 0; // the task's kind
    if (++batchCount === 1) queueMicrotask(flush);
    return future;
  };
}

/** The addon's loop, on the main thread: every task it is given completes on the next turn. */
class SameThreadLoop {
  #onWake;
  #ids;
  #statuses;
  #finished = [];
  #scheduled = false;

  constructor(_name, _keepAlive, onWake, ids, statuses) {
    this.#onWake = onWake;
    this.#ids = ids;
    this.#statuses = statuses;
  }

  submit(batch, count) {
    for (let i = 0; i < count; i++) this.#finished.push(batch[i * 4]);
    this.#wakeSoon();
    return false;
  }

  drain() {
    const n = Math.min(this.#finished.length, this.#ids.length);
    for (let i = 0; i < n; i++) {
      this.#ids[i] = this.#finished[i];
      this.#statuses[i] = 0;
    }
    this.#finished.splice(0, n);
    if (this.#finished.length > 0) this.#wakeSoon();
    return n;
  }

  #wakeSoon() {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#onWake();
    });
  }

  cancel() {}
  phase() {
    return 0;
  }
  wait() {
    return false;
  }
  setBusy() {}
  running() {
    return 0;
  }
  stop() {}
}

/** A second copy of sideloop's modules whose native backend is the stand-in above. */
function sideloopWithoutThread() {
  const dist = require.resolve('..');
  const distDir = path.dirname(dist);
  const ours = Object.keys(require.cache).filter((file) => file.startsWith(distDir + path.sep));
  const saved = ours.map((file) => [file, require.cache[file]]);
  for (const file of ours) delete require.cache[file];
  try {
    const load = require(path.join(distDir, 'backends', 'load.js'));
    load.loadNativeBinding = () => ({ binding: { abiVersion: 1, nativeApi: null, NativeLoop: SameThreadLoop } });
    return require(dist).EventLoop;
  } finally {
    for (const [file, module] of saved) require.cache[file] = module;
  }
}

async function main() {
  const { EventLoop } = require('..');
  const native = new EventLoop({ backend: 'native' });
  const noThread = new (sideloopWithoutThread())({ backend: 'native' });
  const lean = leanFuture();
  const pipeline = leanPipeline();
  const results = await sideBySide(
    {
      floor: () => windowed(() => new Promise((resolve) => resolve()), TOTAL, WINDOW),
      'lean future': () => windowed(lean, TOTAL, WINDOW),
      'lean pipeline': () => windowed(pipeline, TOTAL, WINDOW),
      'sideloop, no thread': () => windowed(() => noThread.sleep(0), TOTAL, WINDOW),
      'sideloop native': () => windowed(() => native.sleep(0), TOTAL, WINDOW),
    },
    quick ? 2 : 15,
  );
  await Promise.all([native.shutdown(), noThread.shutdown()]);
  const floor = results.floor.median;
  for (const [name, { median }] of Object.entries(results)) {
    console.log(`${name.padEnd(20)} ${(median / 1e6).toFixed(2).padStart(6)} M tasks/s  ${(median / floor).toFixed(2)}× the floor`);
  }
}

main();
