// Shared helpers of the benchmark cases: timing, statistics, and the
// "windowed" driver that keeps a fixed number of tasks in flight.
'use strict';
const { performance } = require('node:perf_hooks');

const quick = process.argv.includes('--quick');

/** Runs `fn` `rounds` times (after one warm-up) and returns each round's result. */
async function rounds(fn, count = quick ? 2 : 5) {
  await fn(true);
  const results = [];
  for (let i = 0; i < count; i++) results.push(await fn(false));
  return results;
}

/**
 * Measures workloads side by side: one warm-up of each, then `count` rounds
 * in which each runs once. A change in the shared host's speed during the
 * run then reaches them all alike, which keeps their ratios fair. The order
 * rotates every round and runs backwards every other round, so no workload
 * always follows the same one (and inherits the same leftovers). No forced
 * gc between them: a full collection shrinks the young generation, which
 * slowed the workloads that allocate most by about 15 % and measured them
 * off their steady state. `workloads` maps names to `fn(warmUp)` returning a
 * number (or a promise of one); returns the summary of each name's rounds.
 */
async function sideBySide(workloads, count = quick ? 2 : 5) {
  const names = Object.keys(workloads);
  const measured = Object.fromEntries(names.map((name) => [name, []]));
  for (const name of names) await workloads[name](true);
  for (let round = 0; round < count; round++) {
    for (let i = 0; i < names.length; i++) {
      const turn = (round + i) % names.length;
      const name = names[round % 2 ? names.length - 1 - turn : turn];
      measured[name].push(await workloads[name](false));
    }
  }
  return Object.fromEntries(names.map((name) => [name, summary(measured[name])]));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** { median, min, max } of a list of numbers. */
function summary(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/**
 * Keeps `window` tasks in flight until `total` have completed; `submit()`
 * returns a thenable. Resolves with tasks per second.
 */
function windowed(submit, total, window) {
  return new Promise((resolve, reject) => {
    let started = 0;
    let done = 0;
    const t0 = performance.now();
    const onDone = () => {
      done++;
      if (done === total) resolve(total / ((performance.now() - t0) / 1000));
      else if (started < total) {
        started++;
        submit().then(onDone, reject);
      }
    };
    for (; started < Math.min(window, total); started++) submit().then(onDone, reject);
  });
}

/** Sequential round trips; returns sorted latencies in µs. */
async function pingPong(roundTrip, count) {
  const latencies = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await roundTrip();
    latencies[i] = (performance.now() - t0) * 1000;
  }
  return Array.from(latencies).sort((a, b) => a - b);
}

/** Prints the case's result for bench/run.js. */
function report(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

module.exports = { quick, rounds, sideBySide, median, percentile, summary, windowed, pingPong, report };
