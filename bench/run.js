#!/usr/bin/env node
// The benchmark: every case in its own process (so garbage and memory of one
// case do not colour the next), each figure a median over rounds with its
// range, every comparison a ratio from the same run. Prints one table and
// writes docs/benchmarks.md with an SVG chart. The prose after the tables (how
// each case is measured, what was done for the goals) is bench/notes.md.
//   npm run bench            the full run (a few minutes on 2 cores)
//   npm run bench -- --quick each case briefly: proves the benchmark works
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { renderChart } = require('./chart');

const quick = process.argv.includes('--quick');
const CASES = ['throughput', 'latency', 'startup', 'fairness', 'cpu', 'blocking'];

function runCase(name) {
  process.stderr.write(`bench: ${name}...\n`);
  const child = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'cases', `${name}.js`), ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 16 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`bench case ${name} failed with ${child.status ?? child.signal}`);
  return JSON.parse(child.stdout.trim().split('\n').pop());
}

const fmt = {
  rate: (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)} M/s` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k/s` : `${v.toFixed(0)} /s`),
  us: (v) => `${v.toFixed(v < 10 ? 1 : 0)} µs`,
  ms: (v) => `${v.toFixed(v < 1 ? 3 : v < 10 ? 2 : 1)} ms`,
  mb: (v) => `${v.toFixed(v < 1 ? 3 : 1)} MB`,
  ratio: (v) => `${v >= 10 ? v.toFixed(0) : v.toFixed(2)}×`,
};

/** "median (min–max)". */
function cell(s, unit) {
  return `${fmt[unit](s.median)} (${fmt[unit](s.min)}–${fmt[unit](s.max)})`;
}

function main() {
  const results = Object.fromEntries(CASES.map((name) => [name, runCase(name).results]));
  const { throughput: t, latency: l, startup: s, fairness: f, cpu: c, blocking: b } = results;

  const rows = [];
  const goals = [];
  const row = (what, value, note = '') => rows.push([what, value, note]);
  // `measured` is a ratio unless `unit` names another formatter.
  const goal = (what, measured, wanted, ok, unit = 'ratio') => goals.push([what, fmt[unit](measured), wanted, ok ? 'met' : '**not met**']);

  row('1. tiny tasks, native', cell(t.native, 'rate'));
  row('1. tiny tasks, worker backend', cell(t.worker, 'rate'));
  row('1. tiny tasks, same-thread Promise floor', cell(t.floor, 'rate'));
  row('1. tiny tasks, piscina defaults', cell(t.piscinaDefault, 'rate'));
  row('1. tiny tasks, piscina best', cell(t.piscinaBest, 'rate'), '1 thread, concurrentTasksPerWorker 256, atomics async');
  goal('tiny tasks: native / floor', t.native.median / t.floor.median, '>= 0.5', t.native.median >= 0.5 * t.floor.median);
  goal('tiny tasks: native / worker backend', t.native.median / t.worker.median, '>= 1', t.native.median >= t.worker.median);
  goal('tiny tasks: native / piscina best', t.native.median / t.piscinaBest.median, '>= 50', t.native.median >= 50 * t.piscinaBest.median);

  for (const [key, name] of [
    ['native', 'native'],
    ['nativeSpin', 'native, spin 50 µs'],
    ['worker', 'worker backend'],
    ['piscina', 'piscina (1 thread, atomics async)'],
    ['workerThreadsEcho', 'worker_threads echo'],
  ]) {
    row(`2. round trip p50 / p99, ${name}`, `${cell(l[key].p50, 'us')} / ${cell(l[key].p99, 'us')}`);
  }
  goal('latency p50: native / worker backend', l.native.p50.median / l.worker.p50.median, '<= 0.8', l.native.p50.median <= 0.8 * l.worker.p50.median);
  goal('latency p50 with spin 50 µs', l.nativeSpin.p50.median, '< 5 µs', l.nativeSpin.p50.median < 5, 'us');

  row('3. start to first result, native', cell(s.startMs.native, 'ms'));
  row('3. start to first result, worker backend', cell(s.startMs.worker, 'ms'));
  row('3. start to first reply, new Worker()', cell(s.startMs.newWorker, 'ms'));
  const idle = (kind) => `${s.idleCounts[kind]} idle, RSS difference / ${s.idleCounts[kind]}`;
  row('3. resident memory per idle loop, native', fmt.mb(s.idleMemoryMB.native), idle('native'));
  row('3. resident memory per idle loop, worker backend', fmt.mb(s.idleMemoryMB.worker), idle('worker'));
  row('3. resident memory per idle new Worker()', fmt.mb(s.idleMemoryMB.newWorker), idle('newWorker'));
  goal('start: worker backend / native', s.startMs.worker.median / s.startMs.native.median, '>= 50', s.startMs.worker.median >= 50 * s.startMs.native.median);
  const memRatio = s.idleMemoryMB.worker / Math.max(s.idleMemoryMB.native, 1e-3);
  goal('idle memory: worker backend / native', memRatio, '>= 50', memRatio >= 50);

  for (const backend of ['native', 'worker']) {
    row(
      `4. 100k in flight, ${backend}: loop delay p99 / max, throughput`,
      `${cell(f[backend].delayP99Ms, 'ms')} / ${cell(f[backend].delayMaxMs, 'ms')}, ${cell(f[backend].tasksPerSecond, 'rate')}`,
    );
  }
  goal('fairness: native loop delay p99', f.native.delayP99Ms.median, '< 20 ms', f.native.delayP99Ms.median < 20, 'ms');
  goal('fairness: native throughput meanwhile', f.native.tasksPerSecond.median, '>= 0.5 M/s', f.native.tasksPerSecond.median >= 0.5e6, 'rate');

  for (const algo of ['sha256', 'gzip']) {
    const label = algo === 'sha256' ? 'SHA-256' : 'gzip';
    for (const backend of ['native', 'worker']) {
      row(`5. ${label} 64 KiB, ${backend}, one loop`, cell(c[backend][`${algo}Loop`], 'rate'));
      row(`5. ${label} 64 KiB, ${backend}, group of 2`, cell(c[backend][`${algo}Group2`], 'rate'));
    }
    row(`5. ${label} 64 KiB, Node's threadpool`, cell(c.node[`${algo}Threadpool`], 'rate'), algo === 'sha256' ? 'crypto.subtle.digest' : 'zlib.gzip');
    row(`5. ${label} 64 KiB, synchronous on the main thread`, cell(c.node[`${algo}Sync`], 'rate'));
    const loopVsSync = c.native[`${algo}Loop`].median / c.node[`${algo}Sync`].median;
    const groupVsPool = c.native[`${algo}Group2`].median / c.node[`${algo}Threadpool`].median;
    goal(`${label}: native one loop / synchronous`, loopVsSync, '>= 0.9', loopVsSync >= 0.9);
    goal(`${label}: native group of 2 / threadpool`, groupVsPool, '>= 1.1', groupVsPool >= 1.1);
  }

  for (const backend of ['native', 'worker']) {
    row(`6. p50 round trip, ${backend}: result() / await`, `${cell(b[backend].resultP50, 'us')} / ${cell(b[backend].awaitP50, 'us')}`);
  }

  const table = ['| case | median (min–max) | note |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
  const goalTable = ['| goal | measured | wanted | |', '| --- | --- | --- | --- |', ...goals.map((g) => `| ${g.join(' | ')} |`)].join('\n');
  console.log(`${table}\n\n${goalTable}`);

  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
  const docs = path.join(__dirname, '..', 'docs');
  if (quick) {
    console.log('\n(--quick: figures from short runs; docs/benchmarks.md left as it is)');
    return;
  }
  fs.writeFileSync(path.join(docs, 'benchmarks.svg'), renderChart(t));
  fs.writeFileSync(
    path.join(docs, 'benchmarks.md'),
    `# Benchmarks

Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${machine}.
Each case runs in its own process; each figure is the median of several rounds after a warm-up,
with the lowest and highest round in brackets. Ratios compare figures from the same run; in the
tiny-task and CPU cases, whose goals compare workloads of one case, those workloads take turns
round by round, so a change in the host's speed during the run reaches all of them alike. These shared 2-core
machines are noisy: expect ±30 % between runs, and compare ratios, not absolute numbers.

![Tiny-task throughput](benchmarks.svg)

${table}

## Goals

${goalTable}

${fs.readFileSync(path.join(__dirname, 'notes.md'), 'utf8')}`,
  );
  console.log('\nwrote docs/benchmarks.md and docs/benchmarks.svg');
}

main();
